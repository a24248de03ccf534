"""The render runner shared by every scene: worker processes, ordered writing, resume and shards.

Each worker process imports bpy once, builds its scene once, and then renders many rows. Rows come back in
grid order (`Pool.imap`), so the file always holds a prefix of the part being rendered: resuming is skipping
the rows already written, and the result is the same file an uninterrupted run writes. Pixels depend only
on the scene, the settings and the row, never on which worker rendered them or how many threads it had.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from toolkit.datasets.h5 import IMAGE_CHUNK, DatasetSpec, H5Writer
from toolkit.errors import UserError
from toolkit.render.grid import Grid, Shard
from toolkit.render.scene import RenderSettings, Scene, configure_cycles, render_to_array, reset_blender

SHARD_KEYS = ("shard", "shard_rows")  # the only settings in which the parts of one grid differ
FLUSH_SECONDS = 2.0  # at most this much rendering is lost to a kill
TASKS_PER_MESSAGE = 4  # rows a worker renders per round trip: fewer messages, still balanced at the end


def available_cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0))


def render_grid(
    scene: Scene,
    grid: Grid,
    out: Path,
    settings: RenderSettings,
    workers: int | None = None,
    shard: Shard | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Render this shard's rows of `grid` into `out`, continuing an interrupted `.partial` of the same job."""
    shard = shard or Shard()
    if workers is not None and workers < 1:  # checked before the default: 0 is a mistake, not "all cores"
        raise UserError(f"--workers must be at least 1, got {workers}")
    workers = workers or available_cores()
    start, stop = shard.rows(len(grid))
    if start == stop:
        raise UserError(f"--shard {shard}: the grid has only {len(grid)} rows, this part would be empty")
    # Share the cores, not oversubscribe them: Cycles would otherwise start one thread per core in each worker.
    threads = max(1, available_cores() // workers)
    context = multiprocessing.get_context("spawn")  # bpy holds threads and GL state that a fork would copy
    with (
        tempfile.TemporaryDirectory(prefix="toolkit-render-") as scratch,
        context.Pool(
            workers, initializer=_init_worker, initargs=(scene, settings, threads, Path(scratch), os.getpid())
        ) as pool,
    ):
        used = pool.apply(_describe)
        file_settings = {
            "renderer": "blender-cycles",
            "blender": used["blender"],
            "scene": scene.name,
            "scene_options": scene.options,
            "image_size": settings.image_size,
            "samples": settings.samples,
            "denoiser": settings.denoiser,
            "seed": settings.seed,
            "device": used["device"],
            "grid": grid.description,
            "grid_rows": len(grid),
        }
        if shard.count > 1:
            file_settings.update(shard=str(shard), shard_rows=[start, stop])
        spec = DatasetSpec(
            image_size=settings.image_size,
            param_names=scene.param_names,
            periods=scene.periods,
            label_names=scene.label_names,
            settings=file_settings,
        )
        writer = H5Writer(out, spec, resume=True)
        try:
            _render_rows(pool, grid, start, stop, writer, progress)
        except BaseException:
            writer.abort(keep=True)
            raise
        return writer.close()


def _render_rows(
    pool, grid: Grid, start: int, stop: int, writer: H5Writer, progress: Callable[[int, int], None] | None
) -> None:
    next_row = start + writer.rows  # rows already in a resumed file are not rendered again
    if progress:
        progress(writer.rows, stop - start)
    tasks = ((grid.params[i], int(grid.labels[i])) for i in range(next_row, stop))
    pending: list[np.ndarray] = []
    last_flush = time.monotonic()
    for image in pool.imap(_render_one, tasks, chunksize=TASKS_PER_MESSAGE):
        pending.append(image)
        if len(pending) >= IMAGE_CHUNK or time.monotonic() - last_flush > FLUSH_SECONDS:
            next_row = _flush(writer, grid, next_row, pending)
            last_flush = time.monotonic()
        if progress:
            progress(writer.rows + len(pending), stop - start)
    _flush(writer, grid, next_row, pending)


def _flush(writer: H5Writer, grid: Grid, row: int, pending: list[np.ndarray]) -> int:
    if pending:
        end = row + len(pending)
        writer.append(np.stack(pending), grid.params[row:end], grid.labels[row:end])
        pending.clear()
        row = end
    return row


# ---- inside each worker process ----------------------------------------------------------------------

_worker: dict = {}


def _init_worker(scene: Scene, settings: RenderSettings, threads: int, scratch: Path, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the pool
    # Blender logs every render on the terminal; the parent's progress bar is the only output wanted.
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    # A parent killed with -9 cannot remove the scratch folder: its workers do, whichever way they end.
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    threading.Thread(target=_exit_with_parent, args=(parent, scratch), daemon=True).start()
    _worker.update(scene=scene, settings=settings, threads=threads, scratch=scratch / f"{os.getpid()}.png")


def _exit_with_parent(parent: int, scratch: Path) -> None:
    # Workers notice a parent killed with -9 when they next ask for work; this ends a long chunk early too.
    while os.getppid() == parent:
        time.sleep(0.5)
    shutil.rmtree(scratch, ignore_errors=True)
    os._exit(1)


def _ready() -> dict:
    if "set_state" not in _worker:
        reset_blender()
        _worker["device"] = configure_cycles(_worker["settings"], _worker["threads"])
        _worker["set_state"] = _worker["scene"].build()
    return _worker


def _describe() -> dict:
    import bpy

    return {"device": _ready()["device"], "blender": bpy.app.version_string}


def _render_one(task: tuple[np.ndarray, int]) -> np.ndarray:
    worker = _ready()
    params, label = task
    worker["set_state"](params, label)
    return render_to_array(worker["scratch"])
