"""`toolkit train --config FILE`: a run's config.json starts a new run; options given override it, the others take
the file's values (not the CLI defaults); a bad file or an unknown key is one line and exit code 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import invoke_cli
from toolkit.aeai.config import DEFAULT_LRS
from toolkit.cli.train import config_from_file
from toolkit.errors import UserError

TIMING = ("seconds", "images_per_s")
# Tiny nets (see test_train.tiny), and settings that differ from every CLI default.
NON_DEFAULT = ["--epochs", "2", "--batch-size", "8", "--latent", "8", "--width", "4", "--device", "cpu"]
NON_DEFAULT += ["--lambda-a", "0.05", "--lambda-s", "0.3", "--lr", "0.001", "--seed", "3", "--test-fraction", "0.25"]


def losses(run_dir: Path) -> list[dict]:
    """metrics.jsonl without the timing fields."""
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in line.items() if k not in TIMING} for line in lines]


def config_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "config.json").read_text())


def one_error_line(result) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    text = (result.stdout + result.stderr).strip()
    assert len(text.splitlines()) == 1 and "Traceback" not in text, text
    return text


def test_a_run_is_reproduced_from_its_config_file(tiny_dataset: Path, tmp_path: Path) -> None:
    first, again = tmp_path / "x", tmp_path / "y"
    done = invoke_cli("train", "--data", str(tiny_dataset), "--out", str(first), *NON_DEFAULT)
    assert done.returncode == 0, done.stdout + done.stderr
    done = invoke_cli("train", "--config", str(first / "config.json"), "--out", str(again), "--epochs", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert config_of(again) == config_of(first)
    assert len(losses(first)) == 2 and losses(again) == losses(first)  # every loss value equal, bit for bit


def test_options_given_override_the_file_and_the_others_keep_its_values(tiny_dataset: Path, tmp_path: Path) -> None:
    first, changed = tmp_path / "x", tmp_path / "z"
    assert invoke_cli("train", "--data", str(tiny_dataset), "--out", str(first), *NON_DEFAULT).returncode == 0
    done = invoke_cli("train", "--config", str(first / "config.json"), "--out", str(changed), "--lambda-s", "0.5")
    assert done.returncode == 0, done.stdout + done.stderr
    saved, new = config_of(first), config_of(changed)
    assert new["lambda_s"] == 0.5 and saved["lambda_s"] == 0.3
    assert {k: v for k, v in new.items() if k != "lambda_s"} == {k: v for k, v in saved.items() if k != "lambda_s"}
    assert new["latent"] == 8 and new["epochs"] == 2 and new["lr"] == 0.001  # the file's, not 256, the default


def write(path: Path, settings: object) -> Path:
    path.write_text(json.dumps(settings))
    return path


def test_merging_rules(tmp_path: Path) -> None:
    data = tmp_path / "data.h5"
    data.touch()
    saved = {"method": "aeai", "lr": DEFAULT_LRS["aeai"], "epochs": 2, "steps": None, "lambda_s": 1, "latent": 8}
    path = write(tmp_path / "config.json", {**saved, "data": "elsewhere.h5", "data_path": str(data), "image_size": 32})
    config = config_from_file(path, {})
    assert config.data == str(data) and config.latent == 8 and config.lambda_s == 1.0  # an int where a float goes
    assert isinstance(config.lambda_s, float)
    assert config_from_file(path, {"data": "mine.h5"}).data == "mine.h5"
    # A budget given on the command line replaces the file's, whichever of --epochs and --steps it was.
    budget = config_from_file(path, {"steps": 100})
    assert (budget.epochs, budget.steps) == (None, 100)
    # Another method takes its own rate when the file holds the old method's default, and keeps one chosen.
    assert config_from_file(path, {"method": "gaia"}).lr == DEFAULT_LRS["gaia"]
    chosen = write(tmp_path / "chosen.json", {**saved, "lr": 0.002})
    assert config_from_file(chosen, {"method": "gaia"}).lr == 0.002
    assert config_from_file(chosen, {"method": "gaia", "lr": 0.003}).lr == 0.003


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("{not json", "not a readable JSON file"),
        ("[1, 2]", "expected a JSON object of settings, got list"),
        ('{"latent": 8, "learning_rate": 0.1, "zoom": 2}', "unknown setting(s) learning_rate, zoom"),
        ('{"latent": "8"}', 'latent must be int, got "8"'),
        ('{"compile": 1}', "compile must be bool, got 1"),
        ('{"epochs": true}', "epochs must be int | None, got true"),
    ],
)
def test_a_bad_config_file_is_one_line(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "config.json"
    if content is not None:
        path.write_text(content)
    text = one_error_line(invoke_cli("train", "--config", str(path), "--out", str(tmp_path / "run")))
    assert message in text and str(path) in text
    with pytest.raises(UserError, match="--config"):
        config_from_file(path, {})
    assert not (tmp_path / "run").exists()


def test_config_and_resume_do_not_go_together(tmp_path: Path) -> None:
    path = write(tmp_path / "config.json", {"latent": 8})
    assert "--resume" in one_error_line(invoke_cli("train", "--config", str(path), "--resume"))
