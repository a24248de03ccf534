"""Several trained runs measured on the same footing: the report that `toolkit evaluate` writes for one run
or many, and that `reproduce` builds its page from.

Each run is measured on its own dataset (or one given for all) with its own split. Two reference rows are
measured on the first run's images and split, so that they lie on the same footing: the pixel cross-dissolve
(the paper's figure 1, top row: what an interpolator must beat) and the ground truth itself (a perfect
interpolator: the floor each measure allows on this data).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from toolkit.aeai.run import LoadedRun, load_run
from toolkit.datasets import DatasetInfo, open_dataset
from toolkit.errors import UserError
from toolkit.evaluate.config import EvalConfig
from toolkit.evaluate.dissolve import PixelDissolve
from toolkit.evaluate.measures import GroundTruth, evaluate_model
from toolkit.progress import ProgressFactory, no_progress

DISSOLVE_NAME = "pixel cross-dissolve"
GROUND_TRUTH_NAME = "ground truth"
REFERENCES = {DISSOLVE_NAME: ("dissolve", PixelDissolve), GROUND_TRUTH_NAME: ("ground-truth", GroundTruth)}


def load_with_data(run: Path, data: Path | None, device: torch.device | str) -> tuple[LoadedRun, DatasetInfo]:
    """A run and the dataset to use it on (default: the one it was trained on), checked against each other."""
    loaded = load_run(run, device=str(device))
    dataset = open_dataset(data or loaded.data_path)
    if dataset.image_size != loaded.image_size:
        raise UserError(
            f"{dataset.path} holds {dataset.image_size}px images, the run {run} was trained on {loaded.image_size}px"
        )
    return loaded, dataset


def run_names(runs: list[Path]) -> list[str]:
    """Legend names: the run folder's name (through a `latest` link), made unique."""
    names: list[str] = []
    for run in runs:
        name = Path(run).resolve().name
        names.append(name if name not in names else f"{name} ({len(names) + 1})")
    return names


def compare_runs(
    runs: list[Path],
    data: Path | None,
    config: EvalConfig,
    device: torch.device,
    references: bool = True,
    bar: ProgressFactory = no_progress,
) -> dict:
    """Measure every run, then the reference rows (unless `references` is off); the report that `evaluate` saves
    as report.json. Each run is marked with whether it beats the dissolve's interval MSE."""
    results: list[tuple[str, dict]] = []
    measured: list[tuple[str, dict]] = []  # the reference rows
    started = time.perf_counter()
    for run, name in zip(runs, run_names(runs), strict=True):
        loaded, dataset = load_with_data(run, data, device)
        labels = None if loaded.label is None else [loaded.label]
        with bar(f"evaluate {name}", "frames") as update:
            result = evaluate_model(loaded.model, dataset, loaded.split, config, device, labels, update)
        info = {
            "run": str(Path(run).resolve()),
            "method": loaded.method,
            "epoch": loaded.epoch,
            "dataset": str(dataset.path.resolve()),
        }
        results.append((name, {**info, **result}))
        if references and not measured:
            for ref_name, (method, make) in REFERENCES.items():
                reference = evaluate_model(make(), dataset, loaded.split, config, device, labels)
                measured.append((ref_name, {"run": None, "method": method, "dataset": info["dataset"], **reference}))
    if measured:
        dissolve = measured[0][1]["summary"]["interval_mse"]
        for _, result in results:
            result["beats_dissolve"] = result["summary"]["interval_mse"] < dissolve
    results += measured
    return {
        "settings": results[0][1]["config"],
        "seconds": round(time.perf_counter() - started, 2),
        "device": str(device),
        "runs": [{"name": name, **result} for name, result in results],
    }


def named_results(report: dict) -> list[tuple[str, dict]]:
    """(name, result) per run of a report, as the plots take them."""
    return [(entry["name"], entry) for entry in report["runs"]]
