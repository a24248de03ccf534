"""Shared fixtures."""

from pathlib import Path

import pytest

from helpers import write_dataset


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "tiny.h5")
