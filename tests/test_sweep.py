"""`toolkit sweep`: the grid syntax, stable run names, shards that partition the grid, the coordinate search, and
a two-configuration sweep on a tiny 32-pixel grid run as two shards and joined."""

from __future__ import annotations

import json
import math
import re
import shlex
from pathlib import Path

import pytest
import typer
from test_evaluate import write_grid_dataset

from helpers import invoke_cli
from toolkit.aeai.config import TrainConfig
from toolkit.cli import app
from toolkit.errors import UserError
from toolkit.experiments.sweep_plan import (
    Knob,
    SweepConfig,
    coordinate_search,
    parse_grid,
    parse_setting,
    planned_count,
    run_name,
    select_shard,
    train_command,
)
from toolkit.render.grid import Shard


def test_log_ranges_step_by_decades_and_lists_keep_their_order() -> None:
    assert parse_grid("lambda_a=1e-3:1e1").values == (0.001, 0.01, 0.1, 1.0, 10.0)
    assert parse_grid("lambda_a=1e-3:1e-1", points_per_decade=2).values == (0.001, 0.00316, 0.01, 0.0316, 0.1)
    assert parse_grid("lr=3e-4:5e-3").values == (0.0003, 0.003)  # high is not on the lattice: left out
    assert parse_grid("lambda_s=0,0.01,0.1,1").values == (0.0, 0.01, 0.1, 1.0)
    assert parse_grid("lambda-c=1,0.1,1").values == (1.0, 0.1)  # option spelling; repeats dropped
    epochs = parse_grid("epochs=1:100", points_per_decade=2)
    assert epochs.values == (1, 3, 10, 32, 100) and all(isinstance(v, int) for v in epochs.values)
    assert parse_grid("method=ae,aeai").values == ("ae", "aeai")
    assert parse_setting("lr=2e-4") == ("lr", 0.0002) and parse_setting("perceptual=none") == ("perceptual", None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lambda_a", "expects NAME=LOW:HIGH or NAME=V1,V2"),
        ("lambda_a=", "is empty"),
        ("lambda_a=,", "no values"),
        ("nope=1:10", "unknown setting 'nope'"),
        ("lambda_a=0:1", "needs 0 < low <= high"),
        ("lambda_a=10:1", "needs 0 < low <= high"),
        ("lambda_a=1:2:3", "a log range is LOW:HIGH"),
        ("lambda_a=x,1", "lambda_a takes float values, got 'x'"),
        ("epochs=1.5,2", "epochs takes int values"),
        ("method=1:10", "needs a numeric setting"),
        ("split=arc,random", "sets which images score a run"),
        ("device=cpu,cuda", "does not change what is learned"),
        ("lambda_a=1e-9:1e9", "at most 100 per knob"),
    ],
)
def test_bad_grids_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(UserError, match=re.escape(message)):
        parse_grid(text, points_per_decade=10 if "1e9" in text else 1)


def test_values_are_checked_by_train_config_and_strategies_by_the_sweep() -> None:
    with pytest.raises(UserError, match=r"--grid lambda_a=-1: --lambda-a must be a finite number >= 0"):
        SweepConfig(knobs=(parse_grid("lambda_a=-1,1"),)).validate()
    with pytest.raises(UserError, match="give at least one --grid"):
        SweepConfig(knobs=()).validate()
    with pytest.raises(UserError, match="--shard needs --strategy grid: the coordinate search is sequential"):
        SweepConfig(knobs=(parse_grid("lambda_a=1,2"),), shard=Shard(1, 2)).validate()
    with pytest.raises(UserError, match="both swept"):
        SweepConfig(knobs=(parse_grid("lr=1e-4:1e-3"),), fixed={"lr": 1e-3}).validate()
    with pytest.raises(UserError, match="--set epochs: use --epochs instead"):
        parse_setting("epochs=3")


def test_run_names_are_stable_and_name_what_is_learned() -> None:
    def name(fixed: dict, values: dict, **changes) -> str:
        cfg = SweepConfig(knobs=(), fixed=fixed, **changes)
        return cfg.run_dir(values).name

    one = name({"epochs": 3, "split": "arc"}, {"lambda_a": 0.01, "lambda_s": 0.1})
    assert re.fullmatch(r"[0-9a-f]{8}-lambda_a0\.01-lambda_s0\.1", one)
    knobs = (parse_grid("lambda_a=1e-2"), parse_grid("lambda_s=1e-1"))  # other spellings of the same values
    cfg = SweepConfig(knobs=knobs, fixed={"split": "arc", "epochs": 3}, device="cuda")
    assert cfg.run_dir(cfg.points()[0]).name == one  # key order, spelling and the device do not change the name
    assert name({"epochs": 3, "split": "arc"}, {"lambda_a": 0.01, "lambda_s": 0.2}) != one
    assert name({"epochs": 4, "split": "arc"}, {"lambda_a": 0.01, "lambda_s": 0.1}) != one  # fixed settings count
    config = {"lambda_a": 0.01, "device": "cpu", "sample_every": 1}
    assert run_name(config, {"lambda_a": 0.01}) == run_name(
        {**config, "device": "cuda", "sample_every": 9}, {"lambda_a": 0.01}
    )


def test_shards_partition_the_grid() -> None:
    cfg = SweepConfig(knobs=(parse_grid("lambda_a=1e-3:1e-1"), parse_grid("lambda_s=0,0.01,0.1,1")), strategy="grid")
    points = cfg.points()
    assert len(points) == planned_count(cfg) == 12 and len({json.dumps(p) for p in points}) == 12
    for n in (1, 2, 5, 12, 13):
        seen = [k for i in range(1, n + 1) for k, _ in select_shard(points, Shard(i, n))]
        assert sorted(seen) == list(range(12)), n  # every configuration in exactly one shard
    assert [k for k, _ in select_shard(points, Shard(2, 5))] == [1, 6, 11]


def test_coordinate_search_finds_the_best_of_a_known_score() -> None:
    knobs = (parse_grid("lambda_a=1e-3:1e1"), parse_grid("lambda_s=0,0.01,0.1,1"))
    cfg = SweepConfig(knobs=knobs, fixed={"lambda_s": 0.1})  # the search starts from the fixed value
    calls = []

    def score(values: dict) -> float:  # lowest at lambda_a = 1, lambda_s = 0.01
        calls.append(values)
        return (math.log10(values["lambda_a"])) ** 2 + abs(values["lambda_s"] - 0.01)

    tried = coordinate_search(cfg, score)
    best = min(tried, key=lambda pair: pair[1])[0]
    assert best == {"lambda_a": 1.0, "lambda_s": 0.01}
    # (lambda_a 1, lambda_s 0.1) was scored with the first knob: nothing is scored twice
    assert len(calls) == len(tried) == 5 + 4 - 1 < planned_count(cfg)
    assert all(p["lambda_s"] == 0.1 for p in calls[:5])  # lambda_a first, lambda_s where it starts
    assert all(p["lambda_a"] == 1.0 for p in calls[5:])  # then lambda_s, lambda_a at its best

    # A knob whose grid holds the current best value does not score it again; an unscorable run loses.
    start = TrainConfig().lambda_a  # the default: where lambda_a stands while lambda_s is searched
    cfg = SweepConfig(knobs=(Knob("lambda_s", (0.1, 1.0)), Knob("lambda_a", (start, 1.0))))
    tried = coordinate_search(cfg, lambda v: None if v["lambda_s"] == 1.0 else v["lambda_a"])
    assert [p for p, _ in tried] == [
        {"lambda_s": 0.1, "lambda_a": start},
        {"lambda_s": 1.0, "lambda_a": start},
        {"lambda_s": 0.1, "lambda_a": 1.0},
    ]


def parse_train(command: str) -> dict:
    """The parameters `toolkit train` would run with, parsed by its own command without training."""
    words = shlex.split(command)
    assert words[:2] == ["toolkit", "train"], command
    train = typer.main.get_command(app).commands["train"]
    return train.make_context("train", words[2:]).params


def test_the_winner_command_names_only_changed_settings_and_train_parses_it() -> None:
    settings = {"data": "my data.h5", "method": "aeai", "batch_size": 32, "split": "arc", "lambda_a": 1e-5}
    command = train_command({**settings, "compile": False, "device": "cpu", "label": None, "lr": 2e-4})
    assert command == "toolkit train --data 'my data.h5' --split arc --lambda-a 1e-05 --lr 0.0002"
    params = parse_train(command)
    assert params["data"] == Path("my data.h5") and params["lambda_a"] == 1e-5 and params["lr"] == 2e-4
    assert params["epochs"] is None  # the default


def mtimes(runs: Path) -> dict[Path, int]:
    # the trainer points RUNS/latest at its last run: a link, not a run
    return {p: p.stat().st_mtime_ns for p in runs.glob("*/checkpoint.pt") if not p.parent.is_symlink()}


def test_two_shards_then_join_write_the_report_and_a_rerun_trains_nothing(tmp_path: Path) -> None:
    data = write_grid_dataset(tmp_path / "pole.h5", [45.0, 55.0, 65.0, 75.0], azimuth_step=20.0, size=32)
    runs = tmp_path / "sweep"
    args = ["sweep", "--data", str(data), "--grid", "lambda_s=0,0.1", "--epochs", "1", "--batch-size", "8"]
    args += ["--set", "width=4", "--set", "latent=8", "--device", "cpu", "--runs", str(runs)]
    # The tiny grid's 20-degree steps: a held-out arc of 5 of 18 views leaves 80-degree validation intervals.
    args += ["--interval", "80", "--retrieval-interval", "60", "--min-interval", "40"]

    first = invoke_cli(*args, "--shard", "1/2")
    assert first.returncode == 0, first.stderr
    assert "1 of 2 configurations still missing" in first.stderr and not (runs / "sweep.json").exists()
    second = invoke_cli(*args, "--strategy", "grid", "--shard", "2/2")
    assert second.returncode == 0, second.stderr
    assert (runs / "sweep.json").exists()  # the shard that completes the grid writes the report
    trained = mtimes(runs)
    assert len(trained) == 2
    for name in ("sweep.json", "sweep.md", "sweep.png"):
        (runs / name).unlink()

    joined = invoke_cli(*args, "--join")
    assert joined.returncode == 0, joined.stderr
    assert mtimes(runs) == trained  # nothing retrained
    report = json.loads((runs / "sweep.json").read_text())
    assert report["strategy"] == "grid" and report["knobs"] == {"lambda_s": [0.0, 0.1]}
    rows = report["configurations"]
    assert sorted(r["values"]["lambda_s"] for r in rows) == [0.0, 0.1]
    assert [r["validation"]["interval_mse"] for r in rows] == sorted(r["validation"]["interval_mse"] for r in rows)
    assert all(r["validation"]["alpha_iqr"] is not None and "test_mse" in r["metrics"] for r in rows)
    assert all((runs / r["run"] / "evaluation-validation.json").exists() for r in rows)  # never the test split
    table = [line for line in (runs / "sweep.md").read_text().splitlines() if line.startswith("| ")]
    assert (
        "D_acc" in table[0] and "test_mse" in table[0] and [row.split(" | ")[0] for row in table[1:]] == ["| 1", "| 2"]
    )
    assert (runs / "sweep.png").stat().st_size > 1000

    command = joined.stdout.strip().splitlines()[-1]
    assert command == report["best"]["command"]
    params = parse_train(command)
    best = rows[0]["values"]["lambda_s"]
    assert params["data"] == data and params["lambda_s"] == (None if best == TrainConfig().lambda_s else best)
    assert params["width"] == 4 and params["latent"] == 8 and params["epochs"] == 1 and params["split"] == "arc"

    # The coordinate search over the same grid finds the same runs: nothing trains.
    coordinate = invoke_cli(*args, "--strategy", "coordinate")
    assert coordinate.returncode == 0, coordinate.stderr
    assert mtimes(runs) == trained
    assert json.loads((runs / "sweep.json").read_text())["best"]["command"] == command


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--data", "missing.h5"], "missing.h5: no such dataset file"),
        (["--shard", "3/2"], "--shard 3/2: i must lie in 1..n"),
        (["--strategy", "coordinate", "--shard", "1/2"], "--shard needs --strategy grid"),
        (["--grid", "lambda_q=1:10"], "unknown setting 'lambda_q'"),
        (["--set", "width"], "--set expects NAME=VALUE"),
    ],
)
def test_sweep_mistakes_are_one_line(tmp_path: Path, extra: list[str], message: str) -> None:
    grid = [] if any(word.startswith("lambda_q") for word in extra) else ["--grid", "lambda_s=0,0.1"]
    data = [] if "--data" in extra else ["--data", str(tmp_path / "none.h5")]
    result = invoke_cli("sweep", *grid, *data, *extra, "--runs", str(tmp_path / "runs"), "--device", "cpu")
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_a_configuration_trained_by_another_sweep_is_found_by_its_hash(tmp_path: Path) -> None:
    # Sweeping lambda_a with lambda_c fixed names the folder by lambda_a alone; a sweep of both finds it.
    narrow = SweepConfig(
        knobs=(parse_grid("lambda_a=0.01"),),
        fixed={"split": "arc", "test_fraction": 0.25, "lambda_c": 0.02},
        runs=tmp_path,
    )
    wide = SweepConfig(knobs=(parse_grid("lambda_a=0.01"), parse_grid("lambda_c=0.02")), runs=tmp_path)
    trained = narrow.run_dir({"lambda_a": 0.01})
    trained.mkdir()
    assert wide.run_dir({"lambda_a": 0.01, "lambda_c": 0.02}) == trained
    assert wide.run_dir({"lambda_a": 0.01, "lambda_c": 0.01}) != trained
