"""The downstream benchmark's parts: sparse splits, angular error, mixup labels, and a CNN that learns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import run_cli
from toolkit.datasets import DatasetSpec, H5Writer, open_dataset
from toolkit.errors import UserError
from toolkit.experiments.downstream import train_and_score
from toolkit.experiments.downstream_plan import DownstreamConfig
from toolkit.experiments.downstream_targets import DirectionTarget, angular_error_deg, light_direction, sparse_split


def pole_like(path: Path, size: int = 32) -> Path:
    """An 8 x 72 (elevation x azimuth) grid whose images encode the light: a bright dot at the shadow's tip."""
    spec = DatasetSpec(size, ["elevation_deg", "azimuth_deg"], [0, 360], ["pole"], {"source": "test"})
    writer = H5Writer(path, spec)
    for elevation in range(45, 85, 5):
        azimuth = np.arange(0, 360, 5.0)
        images = np.full((72, size, size, 3), 200, np.uint8)
        length = (size / 3) / np.tan(np.radians(elevation))
        cx = np.clip(np.rint(size / 2 - length * np.cos(np.radians(azimuth))), 0, size - 1).astype(int)
        cy = np.clip(np.rint(size / 2 - length * np.sin(np.radians(azimuth))), 0, size - 1).astype(int)
        for k in range(72):
            images[k, max(cy[k] - 2, 0) : cy[k] + 3, max(cx[k] - 2, 0) : cx[k] + 3] = 20
        params = np.stack([np.full(72, elevation), azimuth], axis=1)
        writer.append(images, params, np.zeros(72))
    return writer.close()


def test_pole_split_keeps_every_fourth_azimuth(tmp_path: Path) -> None:
    data = open_dataset(pole_like(tmp_path / "p.h5"))
    train, test = sparse_split(data, DownstreamConfig().protocol("p"))
    assert len(train) == 8 * 18 and len(test) == 8 * 54
    assert sorted(set(data.params[train, 1].tolist())) == list(range(0, 360, 20))
    assert not set(data.params[test, 1].tolist()) & set(range(0, 360, 20))


def test_angular_error_known_answers() -> None:
    d = torch.from_numpy(
        light_direction(np.array([[90.0, 0.0], [0.0, 0.0], [0.0, 90.0]]), ["elevation_deg", "azimuth_deg"])
    )
    torch.testing.assert_close(d, torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), atol=1e-6, rtol=0)
    errors = angular_error_deg(torch.stack([d[1], 3 * d[1], d[2]]), torch.stack([d[0], d[1], d[1]]))
    torch.testing.assert_close(errors, torch.tensor([90.0, 0.0, 90.0]), atol=1e-3, rtol=0)


def test_cnn_learns_the_light_direction(tmp_path: Path) -> None:
    data = open_dataset(pole_like(tmp_path / "p.h5"))
    rows = np.arange(data.n)
    x = torch.from_numpy(data.read_images(rows)).permute(0, 3, 1, 2).float() / 255
    y = torch.from_numpy(light_direction(data.params, data.param_names))
    cfg = DownstreamConfig(steps=150, batch_size=32)
    target = DirectionTarget(data.param_names)
    trained = train_and_score(target, (x, y), None, (x, y), cfg, seed=0)
    untrained = train_and_score(target, (x, y), None, (x, y), DownstreamConfig(steps=1, lr=1e-9), seed=0)
    assert trained < 0.5 * untrained, (trained, untrained)


def test_bad_config_is_refused() -> None:
    with pytest.raises(UserError, match="--arms"):
        DownstreamConfig(arms=["real", "magic"]).validate()
    with pytest.raises(UserError, match="--task"):
        DownstreamConfig(task="faces").validate()


def test_benchmark_runs_every_arm_and_continues(tmp_path: Path) -> None:
    from toolkit.experiments.downstream import run_benchmark

    data = pole_like(tmp_path / "p.h5")
    cfg = DownstreamConfig(seeds=2, steps=3, batch_size=8, n_extra=24, interp_epochs=1)
    report = run_benchmark(data, tmp_path / "work", cfg, log=lambda line: None)
    assert list(report["arms"]) == ["real", "photometric", "mixup", "ae", "aeai"]
    assert all(len(arm["scores"]) == 2 and np.isfinite(arm["scores"]).all() for arm in report["arms"].values())
    # The interpolators saw only the sparse training images.
    sparse = open_dataset(tmp_path / "work" / "sparse-train.h5")
    assert sparse.n == 144 and sorted(set(sparse.params[:, 1].tolist())) == list(range(0, 360, 20))
    extra = open_dataset(tmp_path / "work" / "extra-aeai.h5")
    assert extra.n == 24 and extra.settings["method"] == "aeai"
    mixup = open_dataset(tmp_path / "work" / "extra-mixup.h5")
    np.testing.assert_array_equal(mixup.extra["source_index"], extra.extra["source_index"])  # the same pairs
    lines = (tmp_path / "work" / "scores.jsonl").read_text().splitlines()
    again = run_benchmark(data, tmp_path / "work", cfg, log=lambda line: None)
    assert again["arms"] == report["arms"]
    assert (tmp_path / "work" / "scores.jsonl").read_text().splitlines() == lines  # nothing recomputed


def test_an_ablation_arm_trains_aeai_without_its_term(tmp_path: Path) -> None:
    import json

    from toolkit.experiments.downstream import run_benchmark

    data = pole_like(tmp_path / "p.h5")
    cfg = DownstreamConfig(arms=["aeai-no-d"], seeds=1, steps=2, batch_size=8, n_extra=16, interp_epochs=1)
    report = run_benchmark(data, tmp_path / "work", cfg, log=lambda line: None)
    assert list(report["arms"]) == ["aeai-no-d"]
    trained = json.loads((tmp_path / "work" / "interp-aeai-no-d" / "config.json").read_text())
    assert trained["method"] == "aeai" and trained["lambda_a"] == 0.0 and trained["lambda_s"] > 0
    assert open_dataset(tmp_path / "work" / "extra-aeai-no-d.h5").n == 16


def test_a_second_benchmark_in_the_same_folder_is_refused(tmp_path: Path) -> None:
    from toolkit.files import output_lock

    data, out = pole_like(tmp_path / "p.h5"), tmp_path / "work"
    out.mkdir()
    with output_lock(out / "scores.jsonl"):  # as a benchmark still running there would hold it
        result = run_cli("downstream", "--data", str(data), "--out", str(out), "--steps", "3", "--device", "cpu")
    assert result.returncode == 1
    assert "being written by another running job" in result.stderr and "Traceback" not in result.stderr
    assert not (out / "scores.jsonl").exists()
