"""Test helpers: tiny dataset files written through the real writer, and the CLI in a subprocess or in-process."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path

import numpy as np

from toolkit.datasets import DatasetSpec, H5Writer


def write_dataset(path: Path, n_labels: int = 2, n_views: int = 8, size: int = 32, seed: int = 0) -> Path:
    """A small turntable-like file: n_labels objects x n_views azimuths, random pixels."""
    rng = np.random.default_rng(seed)
    spec = DatasetSpec(
        image_size=size,
        param_names=["azimuth_deg"],
        periods=[360.0],
        label_names=[f"obj{k}" for k in range(n_labels)],
        settings={"source": "test", "seed": seed},
    )
    writer = H5Writer(path, spec)
    for label in range(n_labels):
        images = rng.integers(0, 256, size=(n_views, size, size, 3), dtype=np.uint8)
        params = (np.arange(n_views, dtype=np.float32) * 360 / n_views)[:, None]
        writer.append(images, params, np.full(n_views, label))
    return writer.close()


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the installed `toolkit` CLI in a subprocess, as a user would."""
    exe = Path(sys.executable).with_name("toolkit")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def invoke_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `toolkit.cli.main` in this process, with the exit code and the two streams a subprocess would give.

    For the many cases where a subprocess proves nothing more (a process costs a torch import, ~2 s here);
    Ctrl-C, kill -9, install and torchrun tests keep `run_cli`.
    """
    from toolkit.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.chdir(cwd or Path.cwd()), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            main(list(args))
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return subprocess.CompletedProcess(["toolkit", *args], code, stdout.getvalue(), stderr.getvalue())


def train_tiny_run(root: Path) -> Path:
    """A one-epoch AEAI run with tiny nets on 32x32 noise: enough for commands that only need a run."""
    from toolkit.aeai.config import TrainConfig
    from toolkit.aeai.trainer import train

    config = TrainConfig(data=str(write_dataset(root / "d.h5")), epochs=1, batch_size=8, latent=8, width=4)
    train(config, root / "run")
    return root / "run"
