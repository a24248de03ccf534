"""The render runner shared by every scene: worker processes, ordered writing, resume and shards.

Each worker process imports bpy once, builds its scene once, and then renders many rows. Rows come back in
grid order (`ProcessPoolExecutor.map`), so the file always holds a prefix of the part being rendered: resuming
is skipping the rows already written, and the result is the same file an uninterrupted run writes. Pixels
depend only on the scene, the settings and the row, never on which worker rendered them or how many threads
it had. A worker that dies (a Blender crash, the out-of-memory killer) stops the render with a one-line error
and the rows so far kept, where `multiprocessing.Pool` would wait forever for the rows it had taken.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
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
    with (
        tempfile.TemporaryDirectory(prefix="toolkit-render-") as scratch,
        _worker_pool(workers, (scene, settings, threads, Path(scratch), os.getpid())) as pool,
    ):
        # One task per worker: the pool starts a worker for each task that finds none idle, so every worker
        # loads Blender now, together, rather than the second only once the first is ready.
        starting = [pool.submit(_describe) for _ in range(workers)]
        try:
            used = starting[0].result()
        except BrokenProcessPool:
            raise UserError(f"{_worker_died(pool)} while starting Blender") from None
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
        except BrokenProcessPool:
            rows = writer.rows
            writer.abort(keep=True)
            raise UserError(
                f"{_worker_died(pool)}; the {rows} rows rendered so far are kept in {writer.tmp}: "
                "run the same command again to resume"
            ) from None
        except BaseException:
            writer.abort(keep=True)
            raise
        return writer.close()


@contextlib.contextmanager
def _worker_pool(workers: int, initargs: tuple) -> Iterator[ProcessPoolExecutor]:
    """The render processes, stopped at once however the render ends."""
    context = multiprocessing.get_context("spawn")  # bpy holds threads and GL state that a fork would copy
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=initargs)
    try:
        yield pool
    finally:
        # As Pool's `with` did: shutdown() alone would wait for the rows in flight after a Ctrl-C or an error,
        # even with cancel_futures, and for Blender's half-second exit after a finished render. Python 3.14 has
        # pool.terminate_workers(); bpy needs 3.11.
        for process in list((pool._processes or {}).values()):  # None once _worker_died shut the pool down
            process.terminate()
        pool.shutdown(cancel_futures=True)


def _worker_died(pool: ProcessPoolExecutor) -> str:
    """After a BrokenProcessPool: which worker died, and how."""
    processes = list(pool._processes.values())  # nothing public names a pool's workers
    pool.shutdown()  # the pool stops the other workers with SIGTERM: once they are joined, every exit code is known
    dead = next((p for p in processes if p.exitcode != -signal.SIGTERM), processes[0])
    how = f"exit code {dead.exitcode}"
    if dead.exitcode < 0:
        how += f": {signal.strsignal(-dead.exitcode)}"
    if dead.exitcode == -signal.SIGKILL:
        how += ", often out of memory"
    return f"a Blender worker process (pid {dead.pid}) died ({how})"


def _render_rows(
    pool: ProcessPoolExecutor,
    grid: Grid,
    start: int,
    stop: int,
    writer: H5Writer,
    progress: Callable[[int, int], None] | None,
) -> None:
    next_row = start + writer.rows  # rows already in a resumed file are not rendered again
    if progress:
        progress(writer.rows, stop - start)
    # map() submits every task at once: a few small arrays per row, nothing for grids of thousands of rows.
    tasks = ((grid.params[i], int(grid.labels[i])) for i in range(next_row, stop))
    pending: list[np.ndarray] = []
    last_flush = time.monotonic()
    try:
        for image in pool.map(_render_one, tasks, chunksize=TASKS_PER_MESSAGE):
            pending.append(image)
            if len(pending) >= IMAGE_CHUNK or time.monotonic() - last_flush > FLUSH_SECONDS:
                next_row = _flush(writer, grid, next_row, pending)
                last_flush = time.monotonic()
            if progress:
                progress(writer.rows + len(pending), stop - start)
    except BrokenProcessPool:
        _flush(writer, grid, next_row, pending)  # the rows that did come back are good: keep them
        raise
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
    # Nothing tells a worker that its parent was killed with -9: it would wait for work forever.
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
