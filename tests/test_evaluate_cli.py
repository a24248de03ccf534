"""`toolkit evaluate` and `toolkit interpolate` end to end, on two tiny runs trained by `toolkit train`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from test_evaluate import write_grid_dataset
from typer.testing import CliRunner

from helpers import invoke_cli
from toolkit.cli import app
from toolkit.errors import UserError


def invoke(*args: str):
    """The CLI in this process: no second torch import for each call (subprocesses are for the error lines)."""
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A 32-pixel pole-like grid (4 elevations x 18 azimuths) and one epoch each of aeai and a plain ae."""
    root = tmp_path_factory.mktemp("evaluate_cli")
    data = write_grid_dataset(root / "pole.h5", [45.0, 55.0, 65.0, 75.0], azimuth_step=20.0, size=32)
    for method in ("aeai", "ae"):
        args = ["--data", str(data), "--out", str(root / method), "--method", method, "--epochs", "1"]
        result = invoke_cli("train", *args, "--latent", "16", "--batch-size", "16", "--device", "cpu")
        assert result.returncode == 0, result.stderr
    return data, root / "aeai", root / "ae"


def test_evaluate_compares_two_runs_in_one_report(runs: tuple[Path, Path, Path], tmp_path: Path) -> None:
    data, aeai, ae = runs
    out = tmp_path / "comparison"
    args = ["--data", str(data), "--out", str(out), "--min-interval", "20", "--interval", "80"]
    args += ["--retrieval-interval", "60"]
    result = invoke("evaluate", str(aeai), str(ae), *args, "--device", "cpu")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert [r["name"] for r in report["runs"]] == ["aeai", "ae", "pixel cross-dissolve", "ground truth"]
    assert [r["method"] for r in report["runs"]] == ["aeai", "ae", "dissolve", "ground-truth"]
    dissolve, truth = report["runs"][2]["summary"], report["runs"][3]["summary"]
    for run in report["runs"][:2]:  # one epoch: a method that does not beat the dissolve is told so
        assert run["beats_dissolve"] == (run["summary"]["interval_mse"] < dissolve["interval_mse"])
        if not run["beats_dissolve"]:
            assert f"{run['name']} does not beat the pixel cross-dissolve" in result.output
    assert truth["interval_mse"] == 0.0 and truth["alpha_iqr"] == 0.0  # the floor on these distinct views
    for run in report["runs"]:
        assert set(run["axes"]) == {"elevation_deg", "azimuth_deg"}
        assert run["axes"]["elevation_deg"]["largest_interval"] == 30.0  # 45..75 holds no more
        assert run["axes"]["elevation_deg"]["per_length"]["length"] == [20.0, 30.0]
        assert run["axes"]["azimuth_deg"]["per_length"]["length"] == [40.0, 60.0, 80.0]
        assert run["axes"]["azimuth_deg"]["alpha_retrieval"]["interval"] == 60.0
        assert run["summary"]["interval_mse"] >= 0
        assert run["axes"]["azimuth_deg"]["split"]["ends"]  # which ends were train and test
    for name in ("interval_mse.png", "alpha_retrieval.png", "parameter_distance.png"):
        with Image.open(out / name) as image:
            assert image.size[0] > 500
    assert "lower is better" in result.output  # the summary table


def test_evaluate_test_only_mode_and_user_errors(runs: tuple[Path, Path, Path], tmp_path: Path) -> None:
    data, aeai, _ = runs
    base = ["evaluate", str(aeai), "--data", str(data), "--device", "cpu", "--min-interval", "40"]
    base += ["--retrieval-interval", "40"]
    result = invoke(*base, "--interval", "40", "--ends", "test", "--out", str(tmp_path / "t"))
    if result.exit_code == 0:
        report = json.loads((tmp_path / "t" / "report.json").read_text())
        for entry in report["runs"][0]["axes"].values():
            assert set(entry.get("split", {}).get("ends", {})) <= {"test-test"}
    else:  # a tiny random test split may hold no such interval: then the error says so
        assert isinstance(result.exception, UserError) and "--ends test" in str(result.exception)
    bad = invoke_cli(*base, "--interval", "50", "--out", str(tmp_path / "b"))
    assert bad.returncode == 1 and "not a multiple" in bad.stderr and "Traceback" not in bad.stderr


def test_interpolate_writes_strips_grids_and_gifs(runs: tuple[Path, Path, Path], tmp_path: Path) -> None:
    data, aeai, _ = runs
    base = ["interpolate", str(aeai), "--data", str(data), "--device", "cpu"]
    strip = invoke(*base, "--out", str(tmp_path / "strip.png"), "--pair", "0", "3", "--steps", "6", "--dissolve")
    assert strip.exit_code == 0, strip.output
    with Image.open(tmp_path / "strip.png") as image:
        assert image.size[0] > 8 * 32 * 4  # 6 frames and 2 real images at 4x
    examples = invoke(*base, "--out", str(tmp_path / "examples.png"), "--examples", "3")
    assert examples.exit_code == 0, examples.output
    grid = invoke(*base, "--out", str(tmp_path / "grid.png"), "--corners", "0", "2", "18", "20", "--steps", "4")
    assert grid.exit_code == 0, grid.output
    auto_grid = invoke(*base, "--out", str(tmp_path / "auto_grid.png"), "--grid", "--dissolve")
    assert auto_grid.exit_code == 0, auto_grid.output
    gif = invoke(*base, "--out", str(tmp_path / "a.gif"), "--pair", "0", "4", "--steps", "5", "--dissolve")
    assert gif.exit_code == 0, gif.output
    with Image.open(tmp_path / "a.gif") as image:
        assert image.n_frames == 8
    bad = invoke_cli(*base, "--out", str(tmp_path / "x.png"), "--pair", "0", "999")
    assert bad.returncode == 1 and "outside" in bad.stderr
