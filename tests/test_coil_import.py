"""`toolkit import-coil` on generated COIL-100-format folders: clean, corrupt, incomplete, hostile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import invoke_cli
from toolkit.datasets import open_dataset


def make_coil_folder(folder: Path, objects: tuple[int, ...] = (3, 7), size: int = 24) -> Path:
    """Each view's red channel encodes its angle and its green channel the object, so both can be checked."""
    folder.mkdir(parents=True, exist_ok=True)
    for obj in objects:
        for deg in range(0, 360, 5):
            pixels = np.zeros((size, size, 3), np.uint8)
            pixels[..., 0] = deg // 5 * 3
            pixels[..., 1] = obj * 10
            Image.fromarray(pixels).save(folder / f"obj{obj}__{deg}.png")
    return folder


def test_clean_folder_gives_right_labels_and_angles(tmp_path: Path) -> None:
    folder = make_coil_folder(tmp_path / "coil")
    result = invoke_cli("import-coil", str(folder), "--out", str(tmp_path / "coil.h5"), "--size", "24")
    assert result.returncode == 0, result.stderr
    d = open_dataset(tmp_path / "coil.h5")
    assert d.n == 144 and d.image_size == 24
    assert d.label_names == ["obj3", "obj7"]
    assert d.param_names == ["azimuth_deg"] and d.periods.tolist() == [360]
    images = d.read_images()
    np.testing.assert_array_equal(images[:, 0, 0, 0], d.params[:, 0] // 5 * 3)  # angle matches the pixels
    np.testing.assert_array_equal(images[:, 0, 0, 1], np.where(d.labels == 0, 30, 70))  # label matches object
    assert sorted(set(d.params[:, 0].tolist())) == list(range(0, 360, 5))


def test_objects_option_and_resize(tmp_path: Path) -> None:
    folder = make_coil_folder(tmp_path / "coil", objects=(1, 2, 9))
    result = invoke_cli("import-coil", str(folder), "--out", str(tmp_path / "o.h5"), "--size", "16", "--objects", "9,1")
    assert result.returncode == 0, result.stderr
    d = open_dataset(tmp_path / "o.h5")
    assert d.label_names == ["obj1", "obj9"] and d.n == 144 and d.image_size == 16


def _corrupt_png(folder: Path) -> str:
    (folder / "obj3__40.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return "1 unreadable image(s): obj3__40.png"


def _missing_view(folder: Path) -> str:
    (folder / "obj7__355.png").unlink()
    return "obj7 misses view(s) at [355] degrees"


def _unknown_file(folder: Path) -> str:
    (folder / "notes.txt").write_text("hello")
    return "1 file(s) not named obj<k>__<deg>.png (notes.txt)"


def _link_outside(folder: Path) -> str:
    secret = folder.parent / "secret.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(secret)
    (folder / "obj3__5.png").unlink()
    (folder / "obj3__5.png").symlink_to(secret)
    return "link(s) pointing outside the folder (obj3__5.png)"


@pytest.mark.parametrize("spoil", [_corrupt_png, _missing_view, _unknown_file, _link_outside])
def test_bad_folders_are_reported_and_nothing_is_written(tmp_path: Path, spoil) -> None:
    folder = make_coil_folder(tmp_path / "coil")
    problem = spoil(folder)
    out = tmp_path / "out" / "coil.h5"
    result = invoke_cli("import-coil", str(folder), "--out", str(out), "--size", "24")
    assert result.returncode == 1
    assert problem in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists() and not list(out.parent.glob("*.partial"))


def test_missing_folder_and_bad_objects(tmp_path: Path) -> None:
    result = invoke_cli("import-coil", str(tmp_path / "nope"), "--out", str(tmp_path / "x.h5"))
    assert result.returncode == 1 and "no such folder" in result.stderr
    folder = make_coil_folder(tmp_path / "coil", objects=(1,))
    result = invoke_cli("import-coil", str(folder), "--out", str(tmp_path / "x.h5"), "--objects", "1,a")
    assert result.returncode == 1 and "comma-separated integers" in result.stderr
    result = invoke_cli("import-coil", str(folder), "--out", str(tmp_path / "x.h5"), "--objects", "1,4")
    assert result.returncode == 1 and "object(s) [4] not in the folder" in result.stderr
