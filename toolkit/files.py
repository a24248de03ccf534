"""Writing files so that no reader ever sees a half-written one, and two jobs never share an output."""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from toolkit.errors import UserError

DATASET_SUFFIXES = (".h5", ".hdf5")  # what a dataset file written by the toolkit is called


def _not_a_directory(path: Path) -> None:
    if Path(path).is_dir():
        raise UserError(f"{path} is a directory; --out needs a file path")


def check_extension(path: Path, allowed: tuple[str, ...], what: str) -> None:
    """Refuse an output name the command cannot write (a strip named .txt, a dataset named .png) before any work."""
    _not_a_directory(path)
    if Path(path).suffix.lower() not in allowed:
        names = ", ".join(allowed[:-1]) + f" or {allowed[-1]}" if len(allowed) > 1 else allowed[0]
        raise UserError(f"{path}: {what} must end in {names}; choose such a name for --out")


def check_writable_dir(path: Path) -> None:
    """Fail early (before hours of work) when the folder of `path` cannot be created or written."""
    folder = Path(path).resolve().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create output folder {folder}: {e.strerror}") from None
    _not_a_directory(path)
    # os.access says yes to root everywhere; only creating a file proves the folder takes one.
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise UserError(f"output folder {folder} is not writable ({e.strerror}); choose another --out") from None


@contextlib.contextmanager
def output_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` for the duration of a job; a second job is refused, not mixed in."""
    # The lock file stays behind (hidden): unlinking it would let a third job lock a fresh inode.
    lock_path = Path(path).with_name(f".{Path(path).name}.lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise UserError(f"cannot write next to {path} ({e.strerror}); choose another --out") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"{path} is being written by another running job; wait for it or pick another --out"
            ) from None
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it into place only if the block completes."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}{suffix}-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _json_ready(value):
    """NaN and infinities become null (JSON has no spelling for them); numpy scalars become Python numbers."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    return value


def write_json(path: Path, data: dict, indent: int | None = 2) -> Path:
    """Write `data` as JSON atomically (a reader sees the old file or the new one); every JSON file goes here."""
    path = Path(path)
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(_json_ready(data), indent=indent) + "\n")
    return path
