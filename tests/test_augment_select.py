"""augment --run best --candidates (the run with the lowest validation interval MSE) and --max-label-error
(images a scorer trained on the real training images finds mislabelled are dropped, and the file says so)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from test_downstream import pole_like

from helpers import invoke_cli
from toolkit.datasets import open_dataset


def open_dataset_rows(path: Path) -> int:
    """Rows written to the partial file an interrupted `generate` left."""
    import h5py

    from toolkit.datasets.h5 import partial_path

    with h5py.File(partial_path(path), "r") as f:
        return int(f.attrs["rows_written"])


@pytest.fixture(scope="module")
def grid_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A trained run on an 8 x 72 grid, and a copy of it whose decoder was spoiled with noise."""
    from toolkit.aeai.config import TrainConfig
    from toolkit.aeai.run import CHECKPOINT, load_checkpoint, save_checkpoint
    from toolkit.aeai.trainer import train

    root = tmp_path_factory.mktemp("select")
    data = pole_like(root / "grid.h5")
    config = TrainConfig(data=str(data), epochs=3, batch_size=32, latent=8, width=4, method="ae")
    train(config, root / "good")
    shutil.copytree(root / "good", root / "spoiled")
    state = load_checkpoint(root / "spoiled" / CHECKPOINT)
    generator = torch.Generator().manual_seed(0)
    for name, value in state["model"].items():
        if name.startswith("decoder") and value.dim() > 1:  # conv and linear weights
            value.add_(torch.randn(value.shape, generator=generator) * value.std().clamp(min=0.1))
    save_checkpoint(root / "spoiled" / CHECKPOINT, state)
    return data, root / "good", root / "spoiled"


def test_best_is_the_run_with_the_lower_validation_interval_mse(grid_runs, tmp_path: Path) -> None:
    from toolkit.evaluate.config import Ends, EvalConfig
    from toolkit.experiments.selection import select_best

    data, good, spoiled = grid_runs
    evaluation = EvalConfig(min_interval=10, max_interval=10, retrieval_interval=10, ends=Ends.validation)
    for order in ([spoiled, good], [good, spoiled]):
        chosen = select_best(order, evaluation=evaluation)
        assert chosen.run == good and chosen.scores[str(spoiled)] > chosen.scores[str(good)] == chosen.score


def test_augment_run_best_records_the_choice(grid_runs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from toolkit.evaluate.config import Ends, EvalConfig
    from toolkit.experiments import selection

    data, good, spoiled = grid_runs
    small = EvalConfig(min_interval=10, max_interval=10, retrieval_interval=10, ends=Ends.validation)
    monkeypatch.setattr(selection, "EvalConfig", lambda ends: small)
    out = tmp_path / "aug.h5"
    args = ["augment", "--run", "best", "--candidates", f"{spoiled},{good}", "--n", "20", "--out", str(out)]
    result = invoke_cli(*args, "--device", "cpu", "--max-gap", "5")
    assert result.returncode == 0, result.stderr
    settings = open_dataset(out).settings
    assert settings["selected_run"] == str(good) and settings["run"] == str(good.resolve())
    assert set(settings["candidate_scores"]) == {str(good), str(spoiled)}
    assert settings["selected_score"] == settings["candidate_scores"][str(good)]
    assert "validation interval MSE" in settings["selection"]
    refused = invoke_cli("augment", "--run", str(good), "--candidates", str(spoiled), "--out", str(tmp_path / "x.h5"))
    assert refused.returncode == 1 and "--run best" in refused.stderr


def test_max_label_error_drops_images_and_records_its_scorer(grid_runs, tmp_path: Path) -> None:
    data, good, _ = grid_runs
    out = tmp_path / "kept.h5"
    args = ["augment", "--run", str(good), "--n", "40", "--batch-size", "20", "--max-gap", "10", "--out", str(out)]
    result = invoke_cli(*args, "--max-label-error", "30", "--scorer-steps", "30", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    kept = open_dataset(out)
    assert kept.n == 40
    assert kept.settings["max_label_error"] == 30
    scorer = kept.settings["label_scorer"]
    assert scorer["kind"] == "factor regressor" and scorer["steps"] == 30 and scorer["own_error"] > 0
    # The same scorer, trained again the same way, finds every kept image within the threshold.
    from toolkit.aeai.run import load_run
    from toolkit.augment.fidelity import ScorerConfig, train_scorer

    real, split = open_dataset(data), load_run(good).split
    again = train_scorer(
        (real.read_images(split.train), real.params[split.train], real.labels[split.train]),
        None, real.periods, real.param_names, 1, ScorerConfig(steps=30),
    )  # fmt: skip
    assert again.errors(kept.read_images(), kept.params, kept.labels).max() <= 30
    strict = invoke_cli(*args[:-1], str(tmp_path / "none.h5"), "--max-label-error", "1e-6", "--scorer-steps", "5")
    assert strict.returncode == 1 and "passed the label-error threshold" in strict.stderr


def test_a_filtered_file_resumes_to_the_identical_file(grid_runs, tmp_path: Path) -> None:
    from toolkit.aeai.run import load_run
    from toolkit.augment.generate import AugmentConfig, generate

    data_path, good, _ = grid_runs
    data, loaded = open_dataset(data_path), load_run(good)
    cfg = AugmentConfig(n=50, batch_size=16, max_gap=10)
    calls = []

    def keep(images: np.ndarray, params: np.ndarray, labels: np.ndarray) -> np.ndarray:
        calls.append(1)
        if interrupt and len(calls) == 3:
            raise KeyboardInterrupt
        return np.mod(params[:, 1], 10) < 5  # a deterministic half

    def make(out: Path) -> Path:
        return generate(loaded.model, data, loaded.split.train, out, cfg, {}, torch.device("cpu"), keep=keep)

    interrupt = False
    whole = open_dataset(make(tmp_path / "whole.h5"))
    interrupt, calls[:] = True, []
    with pytest.raises(KeyboardInterrupt):
        make(tmp_path / "resumed.h5")
    assert 0 < open_dataset_rows(tmp_path / "resumed.h5") < 50  # two batches' survivors were kept
    interrupt = False
    resumed = open_dataset(make(tmp_path / "resumed.h5"))
    assert whole.n == resumed.n == 50 and (np.mod(whole.params[:, 1], 10) < 5).all()
    np.testing.assert_array_equal(whole.read_images(), resumed.read_images())
    np.testing.assert_array_equal(whole.extra["source_index"], resumed.extra["source_index"])
