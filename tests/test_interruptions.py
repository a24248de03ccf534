"""kill -9 at random moments, then the same command again: the result equals an uninterrupted run's.

Render and augment must give bit-identical files; a resumed training continues from its last checkpoint
with every epoch in metrics.jsonl exactly once. The kill moments are drawn from a seeded generator between
0.5 s and the uninterrupted run's duration, so a failure can be replayed. `make test` kills each job once;
`make test-slow` many times.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from helpers import train_tiny_run, write_dataset
from toolkit.aeai.config import TrainConfig
from toolkit.aeai.trainer import train
from toolkit.datasets import partial_path

EXE = str(Path(sys.executable).with_name("toolkit"))
TINY_NET = ["--width", "4", "--latent", "8", "--batch-size", "8", "--device", "cpu"]
KILLS = [1, pytest.param(8, marks=pytest.mark.slow)]


def timed_run(command: list[str]) -> float:
    """Run to completion; seconds taken."""
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return time.monotonic() - started


def kill_at_random_moments(command: list[str], kills: int, typical: float, seed: int, next_command=None) -> int:
    """Start the job and kill -9 it after a seeded random delay, `kills` times; returns how many hit a live job."""
    rng = np.random.default_rng(seed)
    survived = 0
    for k in range(kills):
        current = next_command() if next_command else command
        job = subprocess.Popen(current, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Each resumed job has less left to do: the window shrinks so that later kills still land. Only the
        # first 40 % of `typical`: the reference run that measured it may have been slowed by a cold start.
        time.sleep(rng.uniform(0.5, max(1.0, 0.4 * typical * (kills - k) / kills)))
        if job.poll() is not None:
            break  # it finished before the kill: nothing left to interrupt
        os.kill(job.pid, signal.SIGKILL)  # the parent alone, as a user's kill -9 would
        job.wait(timeout=30)
        survived += 1
    return survived


def assert_same_file(path: Path, reference: Path) -> None:
    """Every dataset and attribute equal, bit for bit."""
    with h5py.File(path, "r") as a, h5py.File(reference, "r") as b:
        assert sorted(a) == sorted(b)
        assert dict(a.attrs).keys() == dict(b.attrs).keys()
        for key, value in b.attrs.items():
            np.testing.assert_array_equal(a.attrs[key], value)
        for name in b:
            np.testing.assert_array_equal(a[name][...], b[name][...])
            assert dict(a[name].attrs).keys() == dict(b[name].attrs).keys()


@pytest.mark.render
@pytest.mark.parametrize("kills", KILLS)
def test_killed_render_resumes_to_the_identical_file(kills: int, tmp_path: Path) -> None:
    pytest.importorskip("bpy")
    grid = ["--size", "32", "--samples", "4", "--elevations", "45:80:5", "--azimuths", "0:355:30", "--workers", "2"]
    reference = tmp_path / "reference.h5"
    typical = timed_run([EXE, "render-pole", *grid, "--out", str(reference)])
    out = tmp_path / "pole.h5"
    command = [EXE, "render-pole", *grid, "--out", str(out)]
    survived = kill_at_random_moments(command, kills, typical, seed=kills)
    timed_run(command)
    assert_same_file(out, reference)
    assert not partial_path(out).exists()
    assert survived >= 1, "every job finished before its kill"
    print(f"render-pole: {survived} kills survived")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-epoch tiny run on 32x32 noise: augment only needs something to decode."""
    root = tmp_path_factory.mktemp("interruptions")
    return train_tiny_run(root)


@pytest.mark.parametrize("kills", KILLS)
def test_killed_augment_resumes_to_the_identical_file(kills: int, trained: Path, tmp_path: Path) -> None:
    args = ["augment", "--run", str(trained), "--n", "3000", "--batch-size", "50", "--pairs", "random", "--seed", "3"]
    reference = tmp_path / "reference.h5"
    typical = timed_run([EXE, *args, "--device", "cpu", "--out", str(reference)])
    out = tmp_path / "aug.h5"
    command = [EXE, *args, "--device", "cpu", "--out", str(out)]
    survived = kill_at_random_moments(command, kills, typical, seed=100 + kills)
    timed_run(command)
    assert_same_file(out, reference)
    assert not partial_path(out).exists()
    assert survived >= 1, "every job finished before its kill"
    print(f"augment: {survived} kills survived")


def epochs_logged(run: Path) -> list[int]:
    return [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("kills", KILLS)
def test_killed_training_resumes_from_its_checkpoint_with_every_epoch_once(kills: int, tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "d.h5", n_views=48)
    epochs = ["--epochs", "20"]
    reference = tmp_path / "reference"
    typical = timed_run([EXE, "train", "--data", str(data), "--out", str(reference), *TINY_NET, *epochs])
    run = tmp_path / "run"
    first = [EXE, "train", "--data", str(data), "--out", str(run), *TINY_NET, *epochs]

    def again() -> list[str]:
        # What the trainer tells the user after an interruption; before the first checkpoint, the first command.
        return [EXE, "train", "--resume", "--out", str(run), *epochs] if (run / "checkpoint.pt").exists() else first

    survived = kill_at_random_moments(first, kills, typical, seed=200 + kills, next_command=again)
    timed_run(again())
    assert epochs_logged(run) == list(range(1, 21))
    assert torch.load(run / "checkpoint.pt", weights_only=True)["epoch"] == 20
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [json.loads(line)["step"] for line in (reference / "metrics.jsonl").read_text().splitlines()]
    assert survived >= 1, "every job finished before its kill"
    print(f"train: {survived} kills survived")


def test_kill_between_metrics_line_and_checkpoint_loses_no_epoch(tmp_path: Path) -> None:
    """The window the random kills rarely hit, made certain: epoch 2's line written, its checkpoint not."""
    data = write_dataset(tmp_path / "d.h5")
    run = tmp_path / "run"
    base = ["train", "--out", str(run), *TINY_NET]
    assert subprocess.run([EXE, *base, "--data", str(data), "--epochs", "1"], capture_output=True).returncode == 0
    epoch_one = (run / "checkpoint.pt").read_bytes()
    resume = [EXE, "train", "--resume", "--out", str(run)]
    assert subprocess.run([*resume, "--epochs", "2"], capture_output=True).returncode == 0
    (run / "checkpoint.pt").write_bytes(epoch_one)  # as if killed after the line, before the checkpoint
    assert epochs_logged(run) == [1, 2]
    resumed = subprocess.run([*resume, "--epochs", "3"], capture_output=True)
    assert resumed.returncode == 0
    assert epochs_logged(run) == [1, 2, 3]


def test_metrics_line_is_written_before_the_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kill while epoch 2's checkpoint is being written must leave that epoch's line for resume to settle."""
    import toolkit.aeai.run as run_dir  # CheckpointFile writes through its save_checkpoint

    data = write_dataset(tmp_path / "d.h5")
    config = TrainConfig(data=str(data), epochs=2, batch_size=8, latent=8, width=4, device="cpu")
    real_save = run_dir.save_checkpoint

    def killed_at_epoch_two(path: Path, state: dict) -> None:
        if state["epoch"] == 2:
            raise SystemExit(137)
        real_save(path, state)

    monkeypatch.setattr(run_dir, "save_checkpoint", killed_at_epoch_two)
    with pytest.raises(SystemExit):
        train(config, tmp_path / "run")
    assert epochs_logged(tmp_path / "run") == [1, 2]  # the line came first; the checkpoint still says 1
    monkeypatch.setattr(run_dir, "save_checkpoint", real_save)
    config.epochs = 3
    train(config, tmp_path / "run", resume=True)
    assert epochs_logged(tmp_path / "run") == [1, 2, 3]
