"""Training one run of a many-run experiment: train it, or skip it if finished, or resume it if partial.

`reproduce` and `downstream` both go through `train_or_resume`, so a rerun after Ctrl-C or a crash continues
every experiment the same way, and a folder holding a run of other settings is refused, never mixed in.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from toolkit.aeai.config import TrainConfig
from toolkit.aeai.run import CHECKPOINT, METRICS, load_checkpoint
from toolkit.aeai.trainer import resume_config, train
from toolkit.errors import UserError
from toolkit.files import write_json
from toolkit.progress import Progress

WALL_TIME = "wall_time.json"  # seconds spent training the run, summed over every (resumed) session


def train_or_resume(config: TrainConfig, run_dir: Path, progress: Progress | None = None) -> int:
    """Train `config` into `run_dir`, skipping a finished run and resuming a partial one; returns its epochs.

    A run saved with other settings is refused rather than continued: its numbers would mix two experiments.
    An interrupted training raises KeyboardInterrupt once its epoch is saved, so the whole experiment stops.
    """
    resume = (run_dir / CHECKPOINT).exists()
    if resume:
        try:
            config = resume_config(run_dir, config.to_dict(), prefix="")
        except UserError as e:
            raise UserError(f"{run_dir}: {e}; delete that folder or choose another output folder") from None
        done = int(load_checkpoint(run_dir / CHECKPOINT)["epoch"])
        if config.epochs is not None and done > config.epochs:
            raise UserError(f"{run_dir} holds {done} epochs, more than the {config.epochs} asked for")
        if done == config.epochs:
            return done  # with a budget in steps the trainer finds the run finished itself
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        result = train(config, run_dir, resume=resume, progress=progress)
    finally:
        times = read_json(run_dir / WALL_TIME) or {"train_seconds": 0.0}
        times["train_seconds"] += time.perf_counter() - started
        write_json(run_dir / WALL_TIME, times)
    if result.interrupted:
        raise KeyboardInterrupt  # the trainer saved the epoch; the experiment stops with it
    return result.epoch


def train_seconds(run_dir: Path) -> float | None:
    """Seconds `train_or_resume` spent on the run; None when something else trained it."""
    times = read_json(run_dir / WALL_TIME)
    return times["train_seconds"] if times else None


def read_json(path: Path) -> dict | None:
    """A JSON file an experiment cached, or None when it was never written or was torn by a kill."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def last_metrics(run_dir: Path) -> dict:
    """The last epoch's line of the run's metrics.jsonl."""
    lines = (run_dir / METRICS).read_text().splitlines()
    return json.loads(lines[-1]) if lines else {}
