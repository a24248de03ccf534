"""Files we read never run code: pickled objects in checkpoints are refused, HDF5 attributes stay data.

Each hostile file would create a marker file if anything evaluated or unpickled it; the marker must never
appear. (COIL folders with links pointing outside are refused in test_coil_import.py.)
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import h5py
import pytest
import torch

from helpers import run_cli, train_tiny_run, write_dataset
from toolkit.datasets import open_dataset


class CreatesMarker:
    """Unpickling this calls open(marker, 'w'): proof that a loader ran code from the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("untrusted")
    return train_tiny_run(root)


def hostile_run(run: Path, tmp_path: Path, write) -> tuple[Path, Path]:
    """A copy of `run` whose checkpoint `write(path, marker)` made hostile; returns (run, marker)."""
    copy, marker = tmp_path / "run", tmp_path / "pwned"
    shutil.copytree(run, copy)
    write(copy / "checkpoint.pt", marker)
    return copy, marker


def torch_file_with_object(path: Path, marker: Path) -> None:
    # A real checkpoint's keys, so that only the pickled object can be the reason for a refusal.
    state = torch.load(path, weights_only=True)
    torch.save({**state, "note": CreatesMarker(marker)}, path)


def plain_pickle(path: Path, marker: Path) -> None:
    path.write_bytes(pickle.dumps({"format": 1, "model": CreatesMarker(marker)}))


@pytest.mark.parametrize("write", [torch_file_with_object, plain_pickle])
@pytest.mark.parametrize("command", ["augment", "evaluate", "train"])
def test_checkpoint_carrying_a_pickled_object_is_refused(run: Path, tmp_path: Path, write, command: str) -> None:
    hostile, marker = hostile_run(run, tmp_path, write)
    args = {
        "augment": ["augment", "--run", str(hostile), "--out", str(tmp_path / "a.h5"), "--device", "cpu"],
        "evaluate": ["evaluate", str(hostile), "--device", "cpu"],
        "train": ["train", "--resume", "--out", str(hostile), "--epochs", "2"],
    }[command]
    result = run_cli(*args)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith("pickled Python objects; refusing to load it")
    assert not marker.exists(), "the checkpoint's pickled object ran"
    assert not (tmp_path / "a.h5").exists()
    if write is torch_file_with_object:  # the legacy format's extra warning line: see the test below
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_plain_pickle_checkpoint_is_refused_in_one_line(run: Path, tmp_path: Path) -> None:
    hostile, marker = hostile_run(run, tmp_path, plain_pickle)
    result = run_cli("augment", "--run", str(hostile), "--out", str(tmp_path / "a.h5"), "--device", "cpu")
    assert result.returncode == 1 and not marker.exists()
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_the_hostile_object_would_run_if_unpickled(tmp_path: Path) -> None:
    """The control: without weights_only the same file does create the marker, so the tests above can fail."""
    marker = tmp_path / "pwned"
    torch.save({"note": CreatesMarker(marker)}, tmp_path / "c.pt")
    torch.load(tmp_path / "c.pt", weights_only=False)
    assert marker.exists()


CODE = "__import__('pathlib').Path({marker!r}).touch()"


def test_hdf5_attributes_are_returned_as_data_never_evaluated(tmp_path: Path) -> None:
    path, marker = write_dataset(tmp_path / "d.h5"), tmp_path / "pwned"
    code = CODE.format(marker=str(marker))
    with h5py.File(path, "a") as f:
        f.attrs["settings"] = json.dumps({"renderer": code})
        f.attrs["writer"] = code
        f["params"].attrs["names"] = [code]
        f["labels"].attrs["label_names"] = [code, code]
    d = open_dataset(path)
    assert d.settings == {"renderer": code} and d.attrs["writer"] == code
    assert d.param_names == [code] and d.label_names == [code, code]
    result = run_cli("info", str(path))
    assert result.returncode == 0, result.stderr
    assert "Path(" in result.stderr + result.stdout  # printed as text
    assert not marker.exists()


def test_settings_that_are_code_not_json_are_refused(tmp_path: Path) -> None:
    path, marker = write_dataset(tmp_path / "d.h5"), tmp_path / "pwned"
    with h5py.File(path, "a") as f:
        f.attrs["settings"] = CODE.format(marker=str(marker))
    result = run_cli("info", str(path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "'settings' attribute is not valid JSON" in result.stderr
    assert not marker.exists()
