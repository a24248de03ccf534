"""The paper's comparison as one resumable script: train every method on the pole set and one turntable object,
measure them, and write a results page whose every number comes from those runs (the plan: `reproduce_plan.py`).

Each run lives in runs/reproduce/<dataset>/<name>-seed<k>: a finished run is skipped, a partial one resumed,
and its evaluation is cached in the run folder, so a rerun after Ctrl-C continues where it stopped.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np

from toolkit.aeai.config import ABLATIONS
from toolkit.aeai.run import CHECKPOINT, load_run
from toolkit.augment.generate import sha256_file
from toolkit.datasets import DatasetInfo, open_dataset
from toolkit.devices import resolve_device
from toolkit.errors import UserError
from toolkit.evaluate import pictures
from toolkit.evaluate.compare import REFERENCES as REFERENCE_ROWS
from toolkit.evaluate.config import EvalConfig
from toolkit.evaluate.measures import evaluate_model
from toolkit.evaluate.plots import plot_all
from toolkit.experiments.reproduce_plan import (
    EVALUATION,
    REFERENCES,
    RENDER_COMMANDS,
    STRIP_PAIRS,
    STRIP_STEPS,
    STRIPS,
    DatasetSection,
    ReproduceConfig,
    RunRecord,
    planned_runs,
    strongest_baseline,
    train_config,
)
from toolkit.experiments.results_page import render_page
from toolkit.experiments.runs import last_metrics, read_json, train_or_resume, train_seconds
from toolkit.files import atomic_write, check_writable_dir, output_lock, write_json
from toolkit.progress import Log, Progress, ProgressFactory, no_progress


def check_datasets(cfg: ReproduceConfig) -> dict[str, DatasetInfo]:
    """Open each chosen dataset file; a missing one names the command that renders it."""
    opened = {}
    for dataset in cfg.datasets:
        path = cfg.data_path(dataset)
        if not path.is_file():
            raise UserError(f"{path}: no such dataset file; render it first with `{RENDER_COMMANDS[dataset]}`")
        opened[dataset] = open_dataset(path)
    if "turntable" in opened and cfg.object not in set(opened["turntable"].labels.tolist()):
        names = opened["turntable"].label_names
        raise UserError(f"--object {cfg.object}: {cfg.turntable} holds labels 0..{len(names) - 1} ({', '.join(names)})")
    return opened


def evaluate_run(
    run_dir: Path,
    data: DatasetInfo,
    epoch: int,
    labels: list[int] | None,
    evaluation: EvalConfig,
    device,
    progress: Progress,
) -> dict:
    """The run's evaluation on the images of `labels` (None: all), cached in the run folder per checkpoint and
    settings (one file per choice of intervals)."""
    key = {
        "checkpoint_sha256": sha256_file(run_dir / CHECKPOINT),  # a retrained run of the same epochs differs
        "epoch": epoch,
        "labels": labels,
        "settings": json.loads(json.dumps(asdict(evaluation))),
    }
    path = run_dir / EVALUATION.format(ends=evaluation.ends)
    cached = read_json(path)
    if cached is not None and cached.get("key") == key:
        return cached
    loaded = load_run(run_dir, device=str(device))
    started = time.perf_counter()
    result = evaluate_model(loaded.model, data, loaded.split, evaluation, device, labels, progress)
    report = {"key": key, "seconds": time.perf_counter() - started, "result": result}
    write_json(path, report, indent=1)
    return report


def evaluate_references(
    path: Path, run_dir: Path, data: DatasetInfo, labels: list[int] | None, evaluation: EvalConfig, device
) -> list[tuple[str, dict]]:
    """The dissolve and ground-truth rows on the split of `run_dir` (the runs of one seed share it), cached."""
    key = {"split": read_json(run_dir / "split.json"), "labels": labels, "settings": asdict(evaluation)}
    key = json.loads(json.dumps(key))
    cached = read_json(path)
    if cached is not None and cached.get("key") == key:
        return [tuple(row) for row in cached["rows"]]
    split = load_run(run_dir, device=str(device)).split
    rows = [
        (name, evaluate_model(make(), data, split, evaluation, device, labels))
        for name, (_, make) in REFERENCE_ROWS.items()
    ]
    write_json(path, {"key": key, "rows": rows}, indent=1)
    return rows


def run_dataset(
    cfg: ReproduceConfig,
    dataset: str,
    data: DatasetInfo,
    device,
    counter: Iterator[int],
    total: int,
    log: Log,
    bar: ProgressFactory,
) -> DatasetSection:
    """Train and measure every run of one dataset (seed 0 of all, then the extra seeds); draw its figures."""

    def run(name: str, seed: int) -> RunRecord:
        config = train_config(cfg, dataset, name, seed)
        run_dir = cfg.runs / dataset / f"{name}-seed{seed}"
        title = f"run {next(counter)}/{total} {dataset}/{name}-seed{seed}"
        with bar(f"{title} train", "img") as update:
            epoch = train_or_resume(config, run_dir, update)
        labels = None if config.label is None else [config.label]
        with bar(f"{title} evaluate", "frames") as update:
            validation = evaluate_run(run_dir, data, epoch, labels, cfg.validation, device, update)
            evaluation = evaluate_run(run_dir, data, epoch, labels, cfg.evaluation, device, update)
        metrics, seconds = last_metrics(run_dir), train_seconds(run_dir)
        record = RunRecord(name, seed, run_dir, evaluation, validation, metrics, seconds)
        mse = validation["result"]["summary"]["interval_mse"]
        log(f"{title}: trained to epoch {epoch}, validation interval MSE {mse:.5f}")
        return record

    records = [run(name, 0) for name in cfg.methods]
    strongest = strongest_baseline({r.name: r.validation["result"]["summary"]["interval_mse"] for r in records})
    extra = [name for name in ("aeai", strongest, *ABLATIONS) if name in cfg.methods]
    records += [run(name, seed) for name in extra for seed in range(1, cfg.seeds)]
    folder = cfg.out.with_suffix("") / dataset
    folder.mkdir(parents=True, exist_ok=True)
    first_seeds = [r for r in records if r.seed == 0]
    label = cfg.object if dataset == "turntable" else None
    labels = None if label is None else [label]
    path = cfg.runs / dataset / REFERENCES.format(seed=0)
    references = evaluate_references(path, first_seeds[0].run_dir, data, labels, cfg.evaluation, device)
    plots = plot_all([(r.name, r.evaluation["result"]) for r in first_seeds] + references, folder)
    pairs = draw_strips(first_seeds, data, folder / STRIPS, cfg.evaluation.max_interval, device)
    return DatasetSection(dataset, data, label, records, references, strongest, plots, pairs)


def draw_strips(records: list[RunRecord], data: DatasetInfo, path: Path, gap: float, device) -> np.ndarray:
    """One image: a few fixed test pairs, one row per run and the pixel cross-dissolve; returns the pairs."""
    # The runs of one seed share their split, so the first run's test pairs are test pairs of all of them.
    pairs = pictures.example_pairs(load_run(records[0].run_dir, str(device)), data, STRIP_PAIRS, gap)
    first, second = data.read_images(pairs[:, 0]), data.read_images(pairs[:, 1])
    alphas = np.linspace(0.0, 1.0, STRIP_STEPS)
    models = [(r.name, load_run(r.run_dir, str(device)).model) for r in records]
    rows = pictures.interpolation_rows(models, first, second, alphas, device, dissolve=True)
    pictures.save_image(pictures.strip_image(first, second, rows, scale=max(1, round(64 / data.image_size))), path)
    return pairs


def reproduce(cfg: ReproduceConfig, log: Log = print, bar: ProgressFactory = no_progress) -> Path:
    """Run the whole plan (continuing whatever earlier invocations left) and write the results page."""
    cfg.validate()
    opened = check_datasets(cfg)
    device = resolve_device(cfg.device)
    check_writable_dir(cfg.out)
    cfg.runs.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    counter, total = itertools.count(1), planned_runs(cfg)
    with output_lock(cfg.runs / "plan"):
        sections = [run_dataset(cfg, d, opened[d], device, counter, total, log, bar) for d in cfg.datasets]
        page = render_page(cfg, sections, device, time.perf_counter() - started)
        with atomic_write(cfg.out) as tmp:
            tmp.write_text(page)
    return cfg.out
