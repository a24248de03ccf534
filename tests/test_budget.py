"""The training budget: epochs or optimizer steps, a default that suits a 58-image object and the pole alike,
and a warning for a run far too short for its data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import invoke_cli
from toolkit.aeai.config import DEFAULT_STEPS, TrainConfig
from toolkit.errors import UserError


def test_default_budget_is_the_same_number_of_steps_on_any_dataset() -> None:
    pole = TrainConfig().budget(461)  # the pole's 80 % at batch 32: 14 steps an epoch
    one_object = TrainConfig().budget(58)  # one COIL-like object: one step an epoch
    assert (pole.epochs, pole.steps) == (120, DEFAULT_STEPS)
    assert (one_object.epochs, one_object.steps) == (DEFAULT_STEPS, DEFAULT_STEPS)
    # Grids and checkpoints thin out with the epochs: ~12 grids and at most ~100 checkpoints a run.
    assert (pole.sample_every, pole.checkpoint_every) == (10, 1)
    assert (one_object.sample_every, one_object.checkpoint_every) == (140, 16)


def test_steps_round_up_to_whole_epochs_and_epochs_win_when_given() -> None:
    assert TrainConfig(steps=100).budget(461).epochs == 8  # 100 / 14 steps an epoch, rounded up
    assert TrainConfig(epochs=3).budget(461).steps == 42
    assert TrainConfig(steps=10, batch_size=8).budget(64, world=2).epochs == 3  # 4 global batches of 16 an epoch
    with pytest.raises(UserError, match="--epochs or as --steps, not both"):
        TrainConfig(epochs=3, steps=10).validate()
    with pytest.raises(UserError, match="--steps must be at least 1"):
        TrainConfig(steps=0).validate()


def test_a_short_run_warns_and_trains_its_steps(tiny_dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    tiny = ["--batch-size", "8", "--latent", "8", "--width", "4", "--device", "cpu", "--out", str(run)]
    result = invoke_cli("train", "--data", str(tiny_dataset), "--steps", "3", *tiny)
    assert result.returncode == 0, result.stderr
    assert "only 3 optimizer steps" in result.stderr and f"about {DEFAULT_STEPS}" in result.stderr
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3]  # 13 training images at batch 8: one step an epoch
    assert json.loads((run / "config.json").read_text())["steps"] == 3
