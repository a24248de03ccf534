"""The Blender renderer: grid parsing, input errors, the pole's physics on real renders, determinism,
resume after a kill, shards and merge, and the turntable."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from helpers import run_cli
from toolkit.datasets import open_dataset, partial_path
from toolkit.errors import UserError
from toolkit.render.grid import Shard, parse_shard, parse_values, turntable_azimuths

SMALL_POLE = ["--size", "32", "--samples", "4", "--elevations", "45,80", "--azimuths", "0:270:90"]


# ---- without Blender ----------------------------------------------------------------------------------


def test_ranges_include_their_end_and_lists_are_sorted() -> None:
    assert parse_values("45:80:5", "--elevations") == [45, 50, 55, 60, 65, 70, 75, 80]
    assert len(parse_values("0:355:5", "--azimuths")) == 72
    assert parse_values("180,0,90,0", "--azimuths") == [0, 90, 180]
    assert parse_values("0:1:0.25", "--x") == [0, 0.25, 0.5, 0.75, 1.0]


@pytest.mark.parametrize("text", ["45:80:0", "80:45:5", "a,b", "", "1:2"])
def test_bad_grid_text_is_refused(text: str) -> None:
    with pytest.raises(UserError):
        parse_values(text, "--elevations")


def test_shards_tile_the_grid_exactly() -> None:
    for total in (1, 7, 576):
        for count in (1, 2, 3, 5):
            spans = [Shard(i, count).rows(total) for i in range(1, count + 1)]
            assert spans[0][0] == 0 and spans[-1][1] == total
            assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
    assert parse_shard("2/4") == Shard(2, 4)
    for bad in ("0/4", "5/4", "2", "a/b"):
        with pytest.raises(UserError):
            parse_shard(bad)


def test_turntable_step_must_divide_360() -> None:
    assert len(turntable_azimuths(5)) == 72
    with pytest.raises(UserError, match="does not divide 360"):
        turntable_azimuths(7)


@pytest.mark.parametrize(
    "args, message",
    [
        (["render-pole", "--elevations", "40:95:5"], "outside [0, 90]"),
        (["render-pole", "--size", "8"], "--size must be at least 16"),
        (["render-pole", "--shard", "3/2"], "--shard"),
        (["render-pole", "--device", "tpu"], "--device"),
        (["render-turntable", "--step", "7"], "does not divide 360"),
        (["render-turntable", "--objects", "0"], "--objects"),
    ],
)
def test_bad_input_is_one_line_before_rendering(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "x.h5"
    started = time.monotonic()
    result = run_cli(*args, "--out", str(out))
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert time.monotonic() - started < 10  # refused before any worker started Blender
    assert not out.exists() and not partial_path(out).exists()


def test_unwritable_output_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    result = run_cli("render-pole", "--out", str(blocker / "pole.h5"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "cannot create output folder" in result.stderr


# ---- real renders ---------------------------------------------------------------------------------------

bpy_needed = pytest.mark.render


def _render_pole(out: Path, *extra: str) -> Path:
    result = run_cli("render-pole", *SMALL_POLE, "--out", str(out), *extra)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def pole(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Elevations 45 and 80 by azimuths 0, 90, 180, 270, at 32x32, rendered by two workers."""
    pytest.importorskip("bpy")
    return _render_pole(tmp_path_factory.mktemp("pole") / "pole.h5", "--workers", "2")


def _images_by_light(path: Path) -> dict[tuple[float, float], np.ndarray]:
    d = open_dataset(path)
    return {(float(e), float(a)): image for (e, a), image in zip(d.params, d.read_images(), strict=True)}


def _shadow_mask(image: np.ndarray) -> np.ndarray:
    """Pixels clearly darker than the plane in the red channel, in which the pole's red top is bright."""
    red = image[..., 0].astype(float)
    return red < 0.85 * np.median(red)


def _shadow_length(image: np.ndarray) -> float:
    """Pixels from the pole's foot (the image centre) to the far end of the shadow."""
    rows, cols = np.nonzero(_shadow_mask(image))
    centre = (image.shape[0] - 1) / 2
    return float(np.hypot(rows - centre, cols - centre).max()) + 0.5


@bpy_needed
def test_pole_file_records_grid_and_settings(pole: Path) -> None:
    d = open_dataset(pole)
    assert d.n == 8 and d.image_size == 32
    assert d.param_names == ["elevation_deg", "azimuth_deg"] and d.periods.tolist() == [0, 360]
    assert d.params[:4].tolist() == [[45, 0], [45, 90], [45, 180], [45, 270]]  # elevation outer, azimuth inner
    assert d.settings["renderer"] == "blender-cycles" and d.settings["samples"] == 4
    assert d.settings["device"] == "cpu" and d.settings["seed"] == 0 and d.settings["blender"].startswith("5.")


@bpy_needed
def test_shadow_turns_with_azimuth(pole: Path) -> None:
    images = _images_by_light(pole)
    for elevation in (45.0, 80.0):
        for azimuth in (0.0, 90.0):
            image = images[(elevation, azimuth)].astype(float)
            opposite = images[(elevation, azimuth + 180)].astype(float)
            turned = np.rot90(image, 2)  # 180 degrees about the centre
            turned_error, unturned_error = np.abs(opposite - turned).mean(), np.abs(opposite - image).mean()
            assert turned_error < 1.0 and turned_error < 0.5 * unturned_error, (elevation, azimuth)
    # Light from +x (azimuth 0): the shadow lies on the left half of the picture.
    left, right = np.hsplit(images[(45.0, 0.0)], 2)
    assert _shadow_mask(left).sum() > 10 and _shadow_mask(right).sum() <= 2


@bpy_needed
def test_shadow_is_longer_when_the_light_is_lower(pole: Path) -> None:
    images = _images_by_light(pole)
    for azimuth in (0.0, 90.0, 180.0, 270.0):
        low, high = _shadow_length(images[(45.0, azimuth)]), _shadow_length(images[(80.0, azimuth)])
        # The pole is 0.8 of the half-width high: its shadow is 12.8 * cot(theta) pixels at 32x32.
        assert 11 < low < 15 and 1 < high < 4, (low, high)
        assert low > 3 * high


@bpy_needed
def test_different_lights_give_different_images(pole: Path) -> None:
    images = list(_images_by_light(pole).values())
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            assert not np.array_equal(images[i], images[j])


@bpy_needed
def test_same_seed_gives_identical_pixels_whatever_the_workers(pole: Path, tmp_path: Path) -> None:
    again = _render_pole(tmp_path / "again.h5", "--workers", "1")
    np.testing.assert_array_equal(open_dataset(again).read_images(), open_dataset(pole).read_images())


def _same_file(a: Path, b: Path) -> None:
    da, db = open_dataset(a), open_dataset(b)
    np.testing.assert_array_equal(da.read_images(), db.read_images())
    np.testing.assert_array_equal(da.params, db.params)
    np.testing.assert_array_equal(da.labels, db.labels)
    assert da.settings == db.settings


@bpy_needed
def test_shards_merge_into_the_one_shot_file(pole: Path, tmp_path: Path) -> None:
    parts = [_render_pole(tmp_path / f"part{i}.h5", "--shard", f"{i}/3", "--workers", "1") for i in (1, 2, 3)]
    assert [open_dataset(p).n for p in parts] == [2, 3, 3]
    result = run_cli("merge", str(parts[2]), str(parts[0]), str(parts[1]), "--out", str(tmp_path / "merged.h5"))
    assert result.returncode == 0, result.stderr
    _same_file(tmp_path / "merged.h5", pole)

    def refused(*names: str) -> str:
        result = run_cli("merge", *names, "--out", str(tmp_path / "bad.h5"))
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert not (tmp_path / "bad.h5").exists()
        return result.stderr

    assert "in no part" in refused(str(parts[0]), str(parts[2]))
    assert "overlaps" in refused(str(parts[0]), str(parts[1]), str(parts[1]), str(parts[2]))
    other_seed = _render_pole(tmp_path / "seed1.h5", "--shard", "1/3", "--workers", "1", "--seed", "1")
    assert "seed" in refused(str(other_seed), str(parts[1]), str(parts[2]))


def _rows_written(path: Path) -> int:
    """Rows a (possibly running) writer has flushed; 0 while the file cannot be read yet."""
    try:
        with h5py.File(path, "r", locking=False) as f:
            return int(f.attrs["rows_written"])
    except (OSError, KeyError):
        return 0


@bpy_needed
def test_resume_after_ctrl_c_and_kill_9_is_identical(tmp_path: Path) -> None:
    pytest.importorskip("bpy")
    grid = ["--size", "32", "--samples", "4", "--elevations", "45:80:5", "--azimuths", "0:355:15"]  # 192 images
    one_shot = tmp_path / "one_shot.h5"
    assert run_cli("render-pole", *grid, "--out", str(one_shot), "--workers", "2").returncode == 0
    out = tmp_path / "pole.h5"
    exe = Path(sys.executable).with_name("toolkit")
    command = [str(exe), "render-pole", *grid, "--out", str(out), "--workers", "1"]
    rows_seen = [0]
    for stop_signal in (signal.SIGINT, signal.SIGKILL):
        # A terminal's Ctrl-C: SIGINT at its default even when the tests run under nohup or in the background,
        # which would otherwise hand the render an ignored SIGINT.
        job = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        deadline = time.monotonic() + 60
        # Stop it mid-render, once this run has written rows of its own.
        while job.poll() is None and time.monotonic() < deadline:
            if _rows_written(partial_path(out)) > rows_seen[-1]:
                break
            time.sleep(0.1)
        assert job.poll() is None, "the render finished before it could be interrupted"
        if stop_signal == signal.SIGINT:
            os.killpg(job.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group
        else:
            os.kill(job.pid, signal.SIGKILL)  # the parent alone: its workers must notice and exit
        job.wait(timeout=30)
        rows_seen.append(_rows_written(partial_path(out)))
    assert 0 < rows_seen[1] < rows_seen[2] < 192, rows_seen
    assert not out.exists()
    assert subprocess.run(command, capture_output=True, timeout=300).returncode == 0
    _same_file(out, one_shot)
    assert not partial_path(out).exists()


def _render_workers(parent: int) -> list[int]:
    """Pids of a running render's Blender workers (not its multiprocessing resource tracker)."""
    workers = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])  # comm, in parentheses, may hold spaces
            command = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # ended while we looked
        if ppid == parent and b"spawn_main" in command:
            workers.append(int(stat.parent.name))
    return workers


@bpy_needed
def test_dead_worker_fails_in_one_line_and_the_rerun_completes_the_file(tmp_path: Path) -> None:
    pytest.importorskip("bpy")
    # 576 rows: about 4 s of rendering on two cores, against the tenth of a second between the first rows
    # written and the kill, so the render cannot finish first.
    grid = ["--size", "32", "--samples", "4", "--elevations", "45:80:5", "--azimuths", "0:355:5", "--workers", "2"]
    out = tmp_path / "pole.h5"
    command = [str(Path(sys.executable).with_name("toolkit")), "render-pole", *grid, "--out", str(out)]
    job = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while job.poll() is None and time.monotonic() < deadline and _rows_written(partial_path(out)) == 0:
            time.sleep(0.05)
        workers = _render_workers(job.pid)
        assert job.poll() is None and workers, "no worker to kill while the render ran"
        os.kill(workers[0], signal.SIGKILL)  # as a Blender crash or the out-of-memory killer would
        try:
            _, stderr = job.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("the render hung after one of its workers died")
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()
    assert job.returncode == 1, stderr
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"pid {workers[0]}" in errors[0] and "exit code -9" in errors[0], stderr
    kept = _rows_written(partial_path(out))
    assert 0 < kept < 576 and f"the {kept} rows rendered so far are kept" in errors[0], (kept, errors[0])
    assert subprocess.run(command, capture_output=True, timeout=300).returncode == 0
    assert open_dataset(out).params.tolist() == [[e, a] for e in range(45, 81, 5) for a in range(0, 360, 5)]
    assert not partial_path(out).exists()


@bpy_needed
def test_gpu_request_without_gpu_is_one_line(tmp_path: Path) -> None:
    pytest.importorskip("bpy")
    if shutil.which("nvidia-smi"):
        pytest.skip("a GPU may be present")
    result = run_cli("render-pole", *SMALL_POLE, "--device", "gpu", "--out", str(tmp_path / "x.h5"))
    assert result.returncode == 1 and "no CUDA or OptiX GPU" in result.stderr and "Traceback" not in result.stderr


@bpy_needed
def test_turntable_objects_are_distinct_and_turn(tmp_path: Path) -> None:
    pytest.importorskip("bpy")
    out = tmp_path / "turntable.h5"
    result = run_cli(
        "render-turntable", "--objects", "3", "--step", "90", "--size", "32", "--samples", "8", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    d = open_dataset(out)
    assert d.n == 12 and d.label_names == ["red_block", "gold_monkey", "blue_torus"]
    assert d.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert d.params[:4, 0].tolist() == [0, 90, 180, 270] and d.param_names == ["azimuth_deg"]
    images = d.read_images().astype(float)
    corners = np.concatenate([images[:, :3, :3], images[:, :3, -3:]], axis=1)
    assert corners.max() <= 2  # against black
    means = images.reshape(3, 4, -1).mean(axis=(1, 2))
    assert (images.reshape(12, -1).max(axis=1) > 100).all()  # each view shows a lit object
    by_object = images.reshape(3, 4, -1).mean(axis=1)
    assert min(np.abs(by_object[i] - by_object[j]).mean() for i in range(3) for j in range(i + 1, 3)) > 3, means
    for k in range(3):
        views = images[4 * k : 4 * k + 4]
        assert np.abs(views[0] - views[1]).mean() > 1  # turning changes the picture
