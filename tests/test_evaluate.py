"""Interpolation measures with known answers: an oracle decoder, a pixel cross-dissolve, wrap-around, splits."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from helpers import invoke_cli, write_dataset
from toolkit.datasets import DatasetInfo, DatasetSpec, H5Writer, make_split, open_dataset
from toolkit.datasets.params import param_difference
from toolkit.errors import UserError
from toolkit.evaluate.config import Ends, EvalConfig
from toolkit.evaluate.dissolve import PixelDissolve
from toolkit.evaluate.grid import enumerate_intervals, find_grid
from toolkit.evaluate.measures import GroundTruth, acai_smoothness, evaluate_model
from toolkit.files import write_json


def blob_image(size: int, elevation: float, azimuth: float, color: tuple[float, float, float]) -> np.ndarray:
    """A soft spot whose direction follows the azimuth and distance from the centre the elevation (a shadow)."""
    radius = (95.0 - elevation) / 50.0 * (size / 2 - 2)
    cy = size / 2 + radius * np.sin(np.radians(azimuth))
    cx = size / 2 + radius * np.cos(np.radians(azimuth))
    y, x = np.mgrid[0:size, 0:size]
    spot = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * (size / 16) ** 2))
    return (255 * spot[..., None] * np.asarray(color)).round().astype(np.uint8)


def write_grid_dataset(
    path: Path,
    elevations: list[float] | None = None,
    azimuth_step: float = 10.0,
    size: int = 16,
    n_labels: int = 1,
) -> Path:
    """A pole-like grid (elevation x azimuth) or, with elevations None, a turntable (azimuth only)."""
    azimuths = np.arange(0.0, 360.0, azimuth_step)
    colors = [(1.0, 0.6, 0.2), (0.2, 0.7, 1.0), (0.6, 1.0, 0.4)]
    two = elevations is not None
    spec = DatasetSpec(
        image_size=size,
        param_names=["elevation_deg", "azimuth_deg"] if two else ["azimuth_deg"],
        periods=[0.0, 360.0] if two else [360.0],
        label_names=[f"obj{k}" for k in range(n_labels)],
        settings={"source": "test grid"},
    )
    writer = H5Writer(path, spec)
    for label in range(n_labels):
        grid = [(e, a) for e in (elevations or [60.0]) for a in azimuths]
        images = np.stack([blob_image(size, e, a, colors[label]) for e, a in grid])
        params = np.array([(e, a) if two else (a,) for e, a in grid], np.float32)
        writer.append(images, params, np.full(len(grid), label))
    return writer.close()


POLE_ELEVATIONS = [45.0, 50.0, 55.0, 60.0, 65.0, 70.0, 75.0, 80.0]


class Oracle(torch.nn.Module):
    """Latent = (parameters, label); decoding looks up the true image, so every in-between frame is exact."""

    def __init__(self, data: DatasetInfo) -> None:
        super().__init__()
        self.images = torch.from_numpy(data.read_images()).permute(0, 3, 1, 2).float() / 255  # (N, 3, H, W)
        self.params = data.params.astype(np.float64)
        self.labels = data.labels
        self.periods = np.asarray(data.periods, np.float64)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        dist = torch.cdist(x.flatten(1), self.images.flatten(1))  # (B, N)
        rows = dist.argmin(1).numpy()
        return torch.from_numpy(np.column_stack([self.params[rows], self.labels[rows]]))  # (B, P + 1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        z = z.double().numpy()
        diff = np.abs(param_difference(self.params[None], z[:, None, :-1], self.periods))  # (B, N, P)
        match = (diff < 1e-3).all(-1) & (self.labels[None] == z[:, None, -1])  # (B, N)
        assert match.sum(1).tolist() == [1] * len(z), "oracle asked for a frame between grid points"
        return self.images[match.argmax(1)]

    def interpolate(self, z_i: torch.Tensor, z_j: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        step = torch.from_numpy(param_difference(z_i[:, :-1].numpy(), z_j[:, :-1].numpy(), self.periods))
        params = z_i[:, :-1] + alpha.double()[:, None] * step  # along the short arc, as a renderer would
        periodic = torch.from_numpy(self.periods > 0)
        params = torch.where(
            periodic, torch.remainder(params, torch.from_numpy(np.where(self.periods > 0, self.periods, 1))), params
        )
        return torch.cat([params, z_i[:, -1:]], dim=1)


@pytest.fixture(scope="module")
def pole(tmp_path_factory: pytest.TempPathFactory) -> DatasetInfo:
    return open_dataset(write_grid_dataset(tmp_path_factory.mktemp("pole") / "pole.h5", POLE_ELEVATIONS))


SMALL = EvalConfig(min_interval=20, max_interval=40, retrieval_interval=30)


def test_grid_is_found_with_steps_and_wraparound(pole: DatasetInfo) -> None:
    grid = find_grid(pole)
    elevation, azimuth = grid.axes
    assert (elevation.step, elevation.n, elevation.wraps) == (5.0, 8, False)
    assert (azimuth.step, azimuth.n, azimuth.wraps) == (10.0, 36, True)
    assert grid.cells.shape == (1, 8, 36) and (grid.cells >= 0).all()


def test_wraparound_interval_from_340_to_60(tmp_path: Path) -> None:
    data = open_dataset(write_grid_dataset(tmp_path / "turntable.h5", azimuth_step=20.0, n_labels=2))
    grid = find_grid(data)
    intervals = enumerate_intervals(grid, 0, 80.0)
    assert len(intervals.group) == 2 * 18  # every start, across 360 too, for each object
    azimuths = data.params[intervals.rows, 0]  # (I, 5)
    assert [340.0, 0.0, 20.0, 40.0, 60.0] in azimuths.tolist()
    assert (data.labels[intervals.rows] == data.labels[intervals.rows[:, :1]]).all()  # never across objects
    result = evaluate_model(
        Oracle(data), data, None, EvalConfig(min_interval=40, max_interval=80, retrieval_interval=80)
    )
    assert result["summary"]["interval_mse"] == 0.0
    retrieval = result["axes"]["azimuth_deg"]["alpha_retrieval"]
    assert retrieval["median"] == [0.0, 0.25, 0.5, 0.75, 1.0] and retrieval["off_interval"] == [0.0] * 5


def test_oracle_scores_zero_mse_and_diagonal_retrieval(pole: DatasetInfo) -> None:
    result = evaluate_model(Oracle(pole), pole, None, SMALL)
    summary = result["summary"]
    assert summary["interval_mse"] == 0.0
    assert summary["alpha_iqr"] == 0.0 and summary["alpha_mean_abs_error"] == 0.0
    assert summary["parameter_distance_rms"] == pytest.approx(0.0, abs=1e-9)
    assert summary["smoothness"] == pytest.approx(0.0, abs=1e-12)
    azimuth = result["axes"]["azimuth_deg"]
    assert azimuth["largest_interval"] == 40.0 and azimuth["intervals"] == 8 * 36
    retrieval = azimuth["alpha_retrieval"]
    assert retrieval["interval"] == 30.0 and retrieval["intervals"] == 8 * 36  # retrieval at its own length
    np.testing.assert_allclose(retrieval["median"], retrieval["alpha"])
    assert summary["alpha_off_interval"] == 0.0
    np.testing.assert_allclose(azimuth["parameter_distance"]["source"], np.array(azimuth["alpha"]) * 40)
    elevation = result["axes"]["elevation_deg"]
    # Elevation spans 45..80 only: its curve stops at 35 degrees, however long --interval is.
    assert elevation["per_length"]["length"] == [20.0, 25.0, 30.0, 35.0]
    assert elevation["largest_interval"] == 35.0 and elevation["intervals"] == 36
    assert elevation["alpha"] == [k / 7 for k in range(8)]


def test_pixel_cross_dissolve_scores_worse_than_the_oracle(pole: DatasetInfo) -> None:
    oracle = evaluate_model(Oracle(pole), pole, None, SMALL)["summary"]
    dissolve = evaluate_model(PixelDissolve(), pole, None, SMALL)
    summary = dissolve["summary"]
    assert summary["interval_mse"] > oracle["interval_mse"] + 5e-4
    assert summary["alpha_mean_abs_error"] > 0.05
    assert summary["parameter_distance_rms"] > 1.0
    # A dissolve's error is zero at the ends and largest in the middle, as in the paper's figure 6.
    mean = dissolve["axes"]["azimuth_deg"]["mse"]["mean"]
    assert mean[0] == pytest.approx(0.0, abs=1e-12) and mean[-1] == pytest.approx(0.0, abs=1e-12)
    assert max(mean) == pytest.approx(mean[len(mean) // 2])
    curve = dissolve["axes"]["azimuth_deg"]["per_length"]["mse_mean"]
    assert curve == sorted(curve)  # longer intervals, worse in-between frames


def test_ends_choose_intervals_by_the_split(pole: DatasetInfo) -> None:
    split = make_split(pole.n, seed=3, test_fraction=0.5)

    def measured(ends: Ends) -> dict:
        config = EvalConfig(min_interval=20, max_interval=20, retrieval_interval=20, ends=ends)
        return evaluate_model(Oracle(pole), pole, split, config)["axes"]["azimuth_deg"]["split"]

    test = measured(Ends.test)  # between two test images, nothing seen in training in between
    assert list(test["ends"]) == ["test-test"] and list(test["in_between_ground_truth"]) == ["test"]
    validation = measured(Ends.validation)  # every image a training image: what tuning may look at
    assert list(validation["ends"]) == ["train-train"] and list(validation["in_between_ground_truth"]) == ["train"]
    everything = measured(Ends.all)
    assert set(everything["ends"]) == {"test-test", "train-test", "train-train"}
    assert sum(everything["ends"].values()) == 8 * 36
    truth = everything["in_between_ground_truth"]
    assert truth["train"]["frames"] + truth["test"]["frames"] == 8 * 36
    assert 0 < test["in_between_ground_truth"]["test"]["frames"] < truth["test"]["frames"]


def test_interval_caps_spread_over_the_grid(pole: DatasetInfo) -> None:
    config = EvalConfig(min_interval=20, max_interval=40, max_intervals=50, curve_intervals=10)
    result = evaluate_model(PixelDissolve(), pole, None, config)
    azimuth = result["axes"]["azimuth_deg"]
    assert azimuth["intervals"] == 50
    assert azimuth["per_length"]["intervals"] == [10, 10, 50]


def test_acai_smoothness_is_zero_for_even_steps_and_grows_with_a_jump() -> None:
    theta = np.array([[0.0, 10, 20, 30, 40], [0, 0, 0, 40, 40], [0, 0, 0, 0, 0]])
    score = acai_smoothness(theta)
    assert score[0] == 0.0 and score[1] == pytest.approx(0.75) and np.isnan(score[2])


def test_bad_grids_and_intervals_are_user_errors(tmp_path: Path, pole: DatasetInfo) -> None:
    random_views = open_dataset(write_dataset(tmp_path / "random.h5", n_views=8))
    random_views.params[3, 0] = 50.0  # 0, 45, 90, 50, ...: no regular step any more
    with pytest.raises(UserError, match="not on a regular grid"):
        find_grid(random_views)
    with pytest.raises(UserError, match="not a multiple"):
        evaluate_model(PixelDissolve(), pole, None, EvalConfig(min_interval=20, max_interval=42))
    with pytest.raises(UserError, match="lower --min-interval"):
        evaluate_model(
            PixelDissolve(), pole, None, EvalConfig(min_interval=200, max_interval=200, retrieval_interval=200)
        )
    with pytest.raises(UserError):
        EvalConfig(min_interval=30, max_interval=20).validate()


def test_evaluate_cli_reports_a_missing_run_in_one_line(tmp_path: Path) -> None:
    result = invoke_cli("evaluate", str(tmp_path / "no-such-run"), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "no-such-run" in result.stderr


def test_report_is_json(pole: DatasetInfo, tmp_path: Path) -> None:
    result = evaluate_model(PixelDissolve(), pole, None, SMALL)
    path = write_json(tmp_path / "report.json", {"runs": [{"name": "dissolve", **result}]}, indent=1)
    loaded = json.loads(path.read_text())
    assert loaded["runs"][0]["summary"]["interval_mse"] == pytest.approx(result["summary"]["interval_mse"])


class JumpsAway(Oracle):
    """Exact at the ends, but every in-between frame is the view 90 degrees before the source: off the interval."""

    def interpolate(self, z_i: torch.Tensor, z_j: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        z = super().interpolate(z_i, z_j, alpha)
        inner = (alpha > 0) & (alpha < 1)
        away = z_i.clone()
        away[:, -2] = torch.remainder(z_i[:, -2] - 90.0, 360.0)  # the azimuth, the last parameter
        return torch.where(inner[:, None], away, z)


def test_retrievals_off_the_interval_are_counted_not_clipped(pole: DatasetInfo) -> None:
    config = EvalConfig(min_interval=20, max_interval=40, retrieval_interval=40)
    retrieval = evaluate_model(JumpsAway(pole), pole, None, config)["axes"]["azimuth_deg"]["alpha_retrieval"]
    assert retrieval["off_interval"] == [0.0, 1.0, 1.0, 1.0, 0.0]
    assert retrieval["median"][1:-1] == [None] * 3 or all(np.isnan(retrieval["median"][1:-1]))
    assert retrieval["median"][0] == 0.0 and retrieval["median"][-1] == 1.0  # the ends are still retrieved
    assert retrieval["off_interval_fraction"] == pytest.approx(3 / 5)


def test_ground_truth_is_the_floor_and_shows_identical_views(tmp_path: Path) -> None:
    config = EvalConfig(min_interval=20, max_interval=80, retrieval_interval=80)
    distinct = open_dataset(write_grid_dataset(tmp_path / "distinct.h5", azimuth_step=20.0))
    floor = evaluate_model(GroundTruth(), distinct, None, config)["summary"]
    assert floor["interval_mse"] == 0.0 and floor["alpha_iqr"] == 0.0 and floor["alpha_off_interval"] == 0.0
    # A turntable whose view at theta + 180 is the view at theta: retrieval cannot tell the twins apart.
    twins = write_grid_dataset(tmp_path / "twins.h5", azimuth_step=20.0)
    with h5py.File(twins, "r+") as f:
        half = len(f["images"]) // 2
        f["images"][half:] = f["images"][:half]
    floor = evaluate_model(GroundTruth(), open_dataset(twins), None, config)["summary"]
    assert floor["interval_mse"] == 0.0 and floor["alpha_off_interval"] > 0.2
