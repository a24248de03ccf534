"""Shared fixtures."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from helpers import write_dataset

# The CLI subprocesses the tests start inherit this: the same reason, and with another process busy a 20-epoch
# tiny training took 7 minutes instead of seconds in OpenMP spin-waits.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session", autouse=True)
def one_thread() -> Iterator[None]:
    # Tiny nets gain nothing from a second thread, and on a busy 2-core machine its spin-waits cost 10x.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "tiny.h5")
