"""The command line's own wiring: options reach the library unchanged, choices are validated by typer."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

from typer.testing import CliRunner

from toolkit.aeai.config import TrainConfig
from toolkit.cli import COMMANDS, app
from toolkit.cli.train import CONFIG_FIELDS, train


def test_every_train_option_but_out_resume_and_config_is_a_config_field() -> None:
    options = set(inspect.signature(train).parameters) - {"out", "resume", "config_file"}
    assert options == set(CONFIG_FIELDS)


def test_train_options_reach_the_saved_config(tiny_dataset: Path, tmp_path: Path) -> None:
    given = {
        "method": "vae",
        "epochs": 1,
        "batch_size": 4,
        "lr": 3e-4,
        "latent": 8,
        "width": 4,
        "label": 1,
        "seed": 7,
        "split": "arc",
        "test_fraction": 0.25,
        "sample_every": 2,
        "checkpoint_every": 1,
        "device": "cpu",
        "beta": 2.5,
    }
    args = ["train", "--data", str(tiny_dataset), "--out", str(tmp_path / "run")]
    args += [a for k, v in given.items() for a in (f"--{k.replace('_', '-')}", str(v))]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert {k: saved[k] for k in given} == given
    assert saved["data"] == str(tiny_dataset) and saved["lambda_a"] == TrainConfig().lambda_a  # untouched default


def test_a_bad_choice_is_refused_by_typer_before_any_work(tmp_path: Path) -> None:
    for args in (
        ["train", "--device", "tpu"],
        ["evaluate", str(tmp_path), "--ends", "middle"],
        ["downstream", "--task", "mnist"],
        ["augment", "--device", "gpu"],
    ):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, args
        assert "Invalid value" in result.output and args[-2] in result.output


def test_commands_are_listed_in_registry_order() -> None:
    help_text = CliRunner().invoke(app, ["--help"], terminal_width=200).output
    positions = [help_text.index(f" {name} ") for name in COMMANDS]
    assert positions == sorted(positions)
