"""Shared fixtures."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from helpers import write_dataset


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
