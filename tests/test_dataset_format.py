"""The HDF5 dataset format: round trip, validation errors, resume, splits and the torch Dataset."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from helpers import invoke_cli, write_dataset
from toolkit.datasets import (
    DatasetSpec,
    H5ImageDataset,
    H5Writer,
    make_arc_split,
    make_split,
    open_dataset,
    partial_path,
)
from toolkit.datasets.split import Split
from toolkit.errors import UserError


def test_round_trip_is_identical(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(37, 32, 32, 3), dtype=np.uint8)
    params = rng.uniform(0, 360, size=(37, 2)).astype(np.float32)
    labels = rng.integers(0, 3, size=37)
    spec = DatasetSpec(32, ["elevation_deg", "azimuth_deg"], [0, 360], ["a", "b", "c"], {"seed": 7, "samples": 8})
    writer = H5Writer(tmp_path / "d.h5", spec)
    for start in range(0, 37, 10):  # several chunks, the last one short
        writer.append(images[start : start + 10], params[start : start + 10], labels[start : start + 10])
    assert not (tmp_path / "d.h5").exists()  # nothing visible until complete
    writer.close()
    assert not partial_path(tmp_path / "d.h5").exists()

    d = open_dataset(tmp_path / "d.h5")
    np.testing.assert_array_equal(d.read_images(), images)
    np.testing.assert_array_equal(d.params, params)
    np.testing.assert_array_equal(d.labels, labels)
    assert d.param_names == ["elevation_deg", "azimuth_deg"]
    assert d.periods.tolist() == [0, 360]
    assert d.label_names == ["a", "b", "c"]
    assert d.settings == {"seed": 7, "samples": 8}
    assert d.attrs["schema_version"] == 1
    np.testing.assert_array_equal(d.read_images([5, 2, 5]), images[[5, 2, 5]])
    with h5py.File(tmp_path / "d.h5") as f:
        assert f["images"].compression == "gzip"
        assert f["images"].chunks[0] < 37


def test_extra_columns_round_trip(tmp_path: Path) -> None:
    spec = DatasetSpec(32, ["azimuth_deg"], [360], ["x"], extra_columns=["alpha", "source_index"])
    w = H5Writer(tmp_path / "aug.h5", spec)
    w.append(
        np.zeros((4, 32, 32, 3), np.uint8),
        np.ones((4, 1)),
        np.zeros(4),
        alpha=np.linspace(0, 1, 4),
        source_index=np.arange(8).reshape(4, 2),
    )
    d = open_dataset(w.close())
    np.testing.assert_allclose(d.extra["alpha"], np.linspace(0, 1, 4))
    assert d.extra["source_index"].tolist() == [[0, 1], [2, 3], [4, 5], [6, 7]]


def test_resume_continues_a_partial_file(tmp_path: Path) -> None:
    spec = DatasetSpec(32, ["azimuth_deg"], [360], ["x"], {"seed": 1})
    out = tmp_path / "r.h5"
    w = H5Writer(out, spec)
    w.append(np.full((3, 32, 32, 3), 1, np.uint8), np.zeros((3, 1)), np.zeros(3))
    w.abort(keep=True)  # as if interrupted
    w = H5Writer(out, spec, resume=True)
    assert w.rows == 3
    w.append(np.full((2, 32, 32, 3), 2, np.uint8), np.zeros((2, 1)), np.zeros(2))
    d = open_dataset(w.close())
    assert d.n == 5 and d.read_images()[:, 0, 0, 0].tolist() == [1, 1, 1, 2, 2]
    other = DatasetSpec(32, ["azimuth_deg"], [360], ["x"], {"seed": 2})
    H5Writer(out, spec).abort(keep=True)
    with pytest.raises(UserError, match="other settings"):
        H5Writer(out, other, resume=True)


def test_torn_partial_is_started_again(tmp_path: Path) -> None:
    spec = DatasetSpec(32, ["azimuth_deg"], [360], ["x"])
    partial_path(tmp_path / "t.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    w = H5Writer(tmp_path / "t.h5", spec, resume=True)
    assert w.rows == 0
    w.abort(keep=False)


def _truncated(tmp_path: Path) -> Path:
    good = write_dataset(tmp_path / "good.h5")
    data = good.read_bytes()
    bad = tmp_path / "truncated.h5"
    bad.write_bytes(data[: len(data) // 2])
    return bad


def _wrong_schema(tmp_path: Path) -> Path:
    bad = tmp_path / "schema.h5"
    with h5py.File(bad, "w") as f:
        f["images"] = np.zeros((2, 8, 8, 3), np.uint8)
        f["labels"] = np.zeros(2, np.int64)
    return bad


def _params_without_names(tmp_path: Path) -> Path:
    bad = tmp_path / "nonames.h5"
    with h5py.File(bad, "w") as f:
        f["images"] = np.zeros((2, 8, 8, 3), np.uint8)
        f["params"] = np.zeros((2, 1), np.float32)
        f["labels"] = np.zeros(2, np.int64)
    return bad


def _float_images(tmp_path: Path) -> Path:
    bad = tmp_path / "float.h5"
    with h5py.File(bad, "w") as f:
        f["images"] = np.zeros((2, 8, 8, 3), np.float32)
        f["params"] = np.zeros((2, 1), np.float32)
        f["labels"] = np.zeros(2, np.int64)
    return bad


def _not_hdf5(tmp_path: Path) -> Path:
    bad = tmp_path / "notes.h5"
    bad.write_text("just some text\n")
    return bad


@pytest.mark.parametrize(
    "make_bad, problem",
    [
        (_truncated, "truncated or corrupt"),
        (_wrong_schema, "missing the 'params' dataset"),
        (_params_without_names, "no 'names' attribute"),
        (_float_images, "must be uint8"),
        (_not_hdf5, "not an HDF5 file"),
        (lambda p: p / "absent.h5", "no such file"),
        (lambda p: p, "is a directory"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path: Path, make_bad, problem: str) -> None:
    bad = make_bad(tmp_path)
    with pytest.raises(UserError, match=problem):
        open_dataset(bad)
    result = invoke_cli("info", str(bad))
    assert result.returncode != 0
    assert problem in result.stderr and str(bad.name) in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_info_summarises_a_file(tiny_dataset: Path) -> None:
    result = invoke_cli("info", str(tiny_dataset))
    assert result.returncode == 0, result.stderr
    text = result.stderr + result.stdout
    assert "16 images" in text and "32x32" in text
    assert "azimuth_deg: 0 .. 315" in text and "periodic 360" in text
    assert "obj0 (8)" in text


def test_split_is_seeded_and_reloads(tmp_path: Path) -> None:
    a, b, c = make_split(100, seed=3), make_split(100, seed=3), make_split(100, seed=4)
    assert len(a.test) == 20 and len(a.train) == 80
    assert set(a.train) | set(a.test) == set(range(100)) and not set(a.train) & set(a.test)
    np.testing.assert_array_equal(a.test, b.test)
    assert not np.array_equal(a.test, c.test)
    a.save(tmp_path / "split.json")
    back = Split.load(tmp_path / "split.json")
    np.testing.assert_array_equal(back.train, a.train)
    np.testing.assert_array_equal(back.test, a.test)
    assert back.seed == 3


def test_arc_split_holds_out_one_contiguous_arc_per_line() -> None:
    elevations, azimuths = np.repeat([45.0, 50.0, 55.0], 72), np.tile(np.arange(0.0, 360.0, 5.0), 3)
    params = np.column_stack([elevations, azimuths])  # a pole-like grid: three lines of 72 views
    grid = SimpleNamespace(params=params, labels=np.zeros(len(params), np.int64), periods=[0.0, 360.0])
    split = make_arc_split(np.arange(len(params)), grid, seed=1, test_fraction=0.25)
    assert len(split.test) == 3 * 18 and len(split.train) == 3 * 54
    starts = []
    for elevation in (45.0, 50.0, 55.0):
        held = np.sort(azimuths[split.test][elevations[split.test] == elevation])
        steps = np.diff(np.concatenate([held, held[:1] + 360])) // 5  # one gap of 55 views, else neighbours
        assert len(held) == 18 and sorted(steps.tolist()) == [1] * 17 + [55]
        starts.append(held[np.argmax(steps)] if steps.max() > 1 else held[0])
    assert len(set(starts)) > 1  # each line its own seeded arc, so every azimuth trains at some elevation
    again = make_arc_split(np.arange(len(params)), grid, seed=1, test_fraction=0.25)
    np.testing.assert_array_equal(again.test, split.test)


def test_torch_dataset_with_two_workers(tiny_dataset: Path) -> None:
    ds = H5ImageDataset(tiny_dataset, indices=np.arange(3, 16))
    image, params, label = ds[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert 0 <= image.min() and image.max() <= 1
    loader = DataLoader(ds, batch_size=4, num_workers=2, shuffle=False)
    images = torch.cat([batch[0] for batch in loader])
    labels = torch.cat([batch[2] for batch in loader])
    expected = torch.from_numpy(open_dataset(tiny_dataset).read_images(np.arange(3, 16))).permute(0, 3, 1, 2) / 255
    torch.testing.assert_close(images, expected)
    assert labels.tolist() == [0] * 5 + [1] * 8
