"""`toolkit bench`: throughput and peak memory of each stage, measured in this process on this machine.

Items: Cycles rendering of the pole scene (64 and 128 pixels), training steps of `ae` and `aeai` at the same
batch and size (and their ratio per image), the same with each of the trainer's speed settings changed alone
(`paths`: channels-last; on CUDA bf16 and torch.compile too), `augment` end to end into an HDF5 file,
`evaluate` on a pole grid, and a DataLoader reading an HDF5 file. Each item runs a warm-up and then `repeats`
timed repetitions; the median is reported. Work goes to a temporary folder; nothing outside it is written
but the JSON.

Peak memory, per item: this process's largest resident set (the kernel's VmHWM, reset before each item
through /proc/self/clear_refs), or, while it has child processes (render and DataLoader workers), the
largest sum of its resident set and their private memory, sampled every 0.1 s (a shorter spike can be
missed; pages a forked worker still shares with this process count once).
Both include what was resident before the item started (torch, the interpreter): `base_rss_mb` says how
much that was.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import platform
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

import toolkit.malloc
from toolkit.aeai.config import TrainConfig
from toolkit.aeai.methods import METHODS
from toolkit.aeai.nets import Autoencoder
from toolkit.aeai.trainer import compile_nets, set_up_for_device
from toolkit.augment.generate import AugmentConfig, generate
from toolkit.datasets import DatasetSpec, H5Writer, open_dataset
from toolkit.datasets.torch_dataset import H5ImageDataset
from toolkit.evaluate.config import EvalConfig
from toolkit.evaluate.measures import evaluate_model
from toolkit.progress import Log

ITEMS = ("render", "train", "paths", "augment", "evaluate", "loader")


@dataclass
class BenchConfig:
    """Sizes of each item; the defaults run in a few minutes on a 2-core CPU, `quick()` in seconds."""

    items: tuple[str, ...] = ITEMS
    repeats: int = 3
    render_sizes: tuple[int, ...] = (64, 128)
    render_images: int = 24  # rendered per repetition and size (one pool of workers each time)
    train_size: int = 64
    train_batch: int = 32
    train_steps: int = 8  # timed steps per repetition, after `train_warmup`
    train_warmup: int = 2
    augment_n: int = 5000
    eval_data: str | None = "data/pole.h5"  # a pole grid; a synthetic one of the same shape if missing
    eval_caps: tuple[int, int] | None = None  # (max_intervals, curve_intervals); None: evaluate's defaults
    loader_images: int = 2048
    loader_batch: int = 64
    loader_workers: int = 2
    device: str = "cpu"

    @classmethod
    def quick(cls) -> BenchConfig:
        """A smoke run of every non-render item in well under a minute: tiny sizes, one repetition."""
        return cls(
            items=("train", "paths", "augment", "evaluate", "loader"),
            repeats=1,
            render_sizes=(64,),
            render_images=4,
            train_size=32,
            train_batch=8,
            train_steps=2,
            train_warmup=1,
            augment_n=200,
            eval_data=None,
            eval_caps=(16, 2),
            loader_images=128,
            loader_batch=32,
            loader_workers=1,
        )


@dataclass
class Measured:
    """One item's result: throughput per repetition, its median, and peak memory."""

    name: str
    unit: str  # what `median` counts: "img/s" or "s"
    values: list[float]
    peak_rss_mb: float
    base_rss_mb: float
    notes: dict = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def to_dict(self) -> dict:
        return {**asdict(self), "median": self.median}


def describe_machine(device: str) -> dict:
    """CPU model, cores, threads, load, library versions and the torch device."""
    model = next(
        (line.split(":", 1)[1].strip() for line in _read_lines("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor() or "unknown",
    )
    info = {
        "cpu": model,
        "cores_available": len(os.sched_getaffinity(0)),
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "malloc": toolkit.malloc.setting,  # the CLI keeps freed memory for reuse (toolkit/malloc.py)
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": device,
        "platform": platform.platform(),
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def _read_lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def _status_kb(pid: int | str, key: str) -> int:
    for line in _read_lines(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _private_kb(pid: int | str) -> int:
    """Resident memory that only this process holds (USS): none of what it shares with its parent or libraries."""
    fields = ("Private_Clean:", "Private_Dirty:")
    return sum(int(line.split()[1]) for line in _read_lines(f"/proc/{pid}/smaps_rollup") if line.startswith(fields))


def _descendants(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            # The parent pid is the 2nd field after the ")" closing the command name (which may hold spaces).
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


@contextlib.contextmanager
def peak_memory() -> Iterator[dict]:
    """Yields a dict that holds `peak_rss_mb` and `base_rss_mb` of this process tree once the block ends."""
    result: dict = {"base_rss_mb": _status_kb("self", "VmRSS") / 1024}
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    stop = threading.Event()
    tree_peak = [0]

    def sample() -> None:
        while not stop.wait(0.1):
            # Workers by their private memory: forked ones share their parent's pages, which their RSS would
            # count again.
            children = _descendants(os.getpid())
            if children:
                tree = _status_kb("self", "VmRSS") + sum(_private_kb(pid) for pid in children)
                tree_peak[0] = max(tree_peak[0], tree)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield result
    finally:
        stop.set()
        sampler.join()
        own_peak = _status_kb("self", "VmHWM")
        result["peak_rss_mb"] = max(own_peak, tree_peak[0]) / 1024


def synthetic_pole(path: Path, size: int, elevations: int = 8, azimuths: int = 72, seed: int = 0) -> Path:
    """A pole-shaped grid file (elevation x azimuth, periodic azimuth) of random pixels: throughput only."""
    rng = np.random.default_rng(seed)
    grid = np.array(
        [(45.0 + 5 * e, 5.0 * a) for e in range(elevations) for a in range(azimuths)],
        dtype=np.float32,
    )
    spec = DatasetSpec(
        image_size=size,
        param_names=["elevation_deg", "azimuth_deg"],
        periods=[0.0, 360.0],
        label_names=["pole"],
        settings={"source": "bench", "seed": seed},
    )
    writer = H5Writer(path, spec)
    for start in range(0, len(grid), 256):
        chunk = grid[start : start + 256]
        images = rng.integers(0, 256, size=(len(chunk), size, size, 3), dtype=np.uint8)
        writer.append(images, chunk, np.zeros(len(chunk), dtype=np.int64))
    return writer.close()


def _timed(repeats: int, run: Callable[[], float]) -> list[float]:
    return [run() for _ in range(repeats)]


def bench_render(cfg: BenchConfig, scratch: Path) -> list[Measured]:
    """Cycles images/s for the pole scene, end to end (worker start-up, rendering, HDF5 write)."""
    # Imported here: bpy is an optional extra, and a machine without it benches the rest.
    from toolkit.render.pole import pole_grid, pole_samples, pole_scene
    from toolkit.render.runner import available_cores, render_grid
    from toolkit.render.scene import RenderSettings

    # A sub-grid of the paper's: as many azimuths as needed at one elevation.
    azimuths = ",".join(str(5 * k) for k in range(cfg.render_images))
    grid = pole_grid("45", azimuths)
    results = []
    for size in cfg.render_sizes:
        settings = RenderSettings(size, pole_samples(size), "none", 0, "cpu")

        def run(size: int = size, settings: RenderSettings = settings) -> float:
            out = scratch / f"render-{size}.h5"
            out.unlink(missing_ok=True)
            started = time.perf_counter()
            render_grid(pole_scene(), grid, out, settings)
            return len(grid) / (time.perf_counter() - started)

        with peak_memory() as memory:
            values = _timed(cfg.repeats, run)
        notes = {"images": len(grid), "samples": settings.samples, "workers": available_cores()}
        results.append(Measured(f"render pole {size}px", "img/s", values, **memory, notes=notes))
    return results


def _train_rate(method, optimizers: dict, images: torch.Tensor, steps: int) -> float:
    started = time.perf_counter()
    for step in range(steps):
        logged = method.training_step(images[step % len(images)], optimizers)
    next(iter(logged.values())).item()  # wait for queued device work before stopping the clock
    return steps * len(images[0]) / (time.perf_counter() - started)


def _training_setup(name: str, cfg: BenchConfig, **settings) -> tuple:
    """A method as the trainer sets it up (`settings` flip one of its speed settings), its optimizers, batches."""
    device = torch.device(cfg.device)
    generator = torch.Generator().manual_seed(0)
    # Four fixed batches of random pixels: the step's cost does not depend on what the images show.
    images = torch.rand(4, cfg.train_batch, 3, cfg.train_size, cfg.train_size, generator=generator).to(device)
    layout = torch.channels_last if settings.get("channels_last", True) else torch.contiguous_format
    images = [batch.contiguous(memory_format=layout) for batch in images]  # 4 x (B, 3, S, S)
    torch.manual_seed(0)
    method = METHODS[name](TrainConfig(method=name, batch_size=cfg.train_batch, device=cfg.device), cfg.train_size)
    compiled = settings.pop("compile", False)
    set_up_for_device(method, device, **settings)
    if compiled:
        compile_nets(method)
    method.train()
    optimizers = method.configure_optimizers()
    _train_rate(method, optimizers, images, cfg.train_warmup)  # (and torch.compile's compilation)
    return method, optimizers, images


def bench_train(cfg: BenchConfig) -> list[Measured]:
    """Training images/s of `ae` and `aeai` at the same batch and size; repetitions alternate between them."""
    setups = {name: _training_setup(name, cfg) for name in ("ae", "aeai")}
    # One memory window for both methods would hide which one costs what: each is measured on its own, but
    # their timed repetitions alternate so that a change in machine load hits both alike.
    rates: dict[str, list[float]] = {"ae": [], "aeai": []}
    peaks: dict[str, dict] = {}
    for _ in range(cfg.repeats):
        for name, (method, optimizers, images) in setups.items():
            with peak_memory() as memory:
                rates[name].append(_train_rate(method, optimizers, images, cfg.train_steps))
            best = peaks.get(name)
            peaks[name] = memory if best is None or memory["peak_rss_mb"] > best["peak_rss_mb"] else best
    notes = {"batch": cfg.train_batch, "size": cfg.train_size, "steps": cfg.train_steps}
    results = [Measured(f"train {name}", "img/s", rates[name], **peaks[name], notes=dict(notes)) for name in rates]
    ratio = statistics.median(rates["ae"]) / statistics.median(rates["aeai"])
    results[1].notes["aeai_cost_vs_ae"] = round(ratio, 3)  # time per image, aeai / ae
    return results


def path_variants(device: str) -> dict[str, dict]:
    """The trainer's speed settings, then each flipped alone: bf16 and compile are the trainer's on CUDA only."""
    variants = {"trainer's settings": {}, "without channels_last": {"channels_last": False}}
    if device.startswith("cuda"):
        variants |= {"without bf16": {"bf16": False}, "with compile": {"compile": True}}
    return variants


def bench_paths(cfg: BenchConfig) -> list[Measured]:
    """Training images/s of `ae` and `aeai` with the trainer's settings and with one setting changed at a time."""
    results = []
    for name in ("ae", "aeai"):
        baseline = None
        for variant, settings in path_variants(cfg.device).items():
            setup = _training_setup(name, cfg, **settings)
            with peak_memory() as memory:
                values = [_train_rate(*setup, cfg.train_steps) for _ in range(cfg.repeats)]
            rate = statistics.median(values)
            baseline = baseline or rate
            notes = {"batch": cfg.train_batch, "size": cfg.train_size, "vs_trainer": round(rate / baseline, 3)}
            results.append(Measured(f"train {name}, {variant}", "img/s", values, **memory, notes=notes))
    return results


def bench_augment(cfg: BenchConfig, scratch: Path, source: Path) -> list[Measured]:
    """`augment` images/s end to end: encode the source rows, decode interpolations, write the HDF5 file."""
    data = open_dataset(source)
    device = torch.device(cfg.device)
    torch.manual_seed(0)
    # Untrained (decoding costs the same), in the layout `load_run` gives augment: channels-last.
    model = Autoencoder(data.image_size).to(device, memory_format=torch.channels_last).eval()
    rows = np.arange(data.n)

    def run() -> float:
        out = scratch / "augmented.h5"
        out.unlink(missing_ok=True)
        started = time.perf_counter()
        generate(model, data, rows, out, AugmentConfig(n=cfg.augment_n), {"source": "bench"}, device)
        return cfg.augment_n / (time.perf_counter() - started)

    with peak_memory() as memory:
        values = _timed(cfg.repeats, run)
    notes = {
        "n": cfg.augment_n,
        "size": data.image_size,
        "seconds_median": round(cfg.augment_n / statistics.median(values), 2),
    }
    return [Measured("augment", "img/s", values, **memory, notes=notes)]


def bench_evaluate(cfg: BenchConfig, data_path: Path) -> list[Measured]:
    """Seconds for `evaluate`'s measures on a pole grid with the default caps (the model untrained)."""
    data = open_dataset(data_path)
    device = torch.device(cfg.device)
    torch.manual_seed(0)
    model = Autoencoder(data.image_size).to(device).eval()

    caps = {} if cfg.eval_caps is None else dict(zip(("max_intervals", "curve_intervals"), cfg.eval_caps, strict=True))
    config = EvalConfig(**caps)

    def run() -> float:
        started = time.perf_counter()
        evaluate_model(model, data, None, config, device)
        return time.perf_counter() - started

    with peak_memory() as memory:
        values = _timed(cfg.repeats, run)
    notes = {"data": str(data_path), "images": data.n, "size": data.image_size, "caps": config.max_intervals}
    return [Measured("evaluate", "s", values, **memory, notes=notes)]


def bench_loader(cfg: BenchConfig, source: Path) -> list[Measured]:
    """Images/s of a DataLoader over `H5ImageDataset` (one pass, shuffled), workers started per pass."""
    dataset = H5ImageDataset(source)
    pin = cfg.device.startswith("cuda")

    def run() -> float:
        loader = DataLoader(
            dataset,
            batch_size=cfg.loader_batch,
            shuffle=True,
            num_workers=cfg.loader_workers,
            pin_memory=pin,
            generator=torch.Generator().manual_seed(0),
        )
        started = time.perf_counter()
        count = sum(len(images) for images, _, _ in loader)
        return count / (time.perf_counter() - started)

    with peak_memory() as memory:
        values = _timed(cfg.repeats, run)
    notes = {"images": len(dataset), "batch": cfg.loader_batch, "workers": cfg.loader_workers}
    return [Measured("DataLoader from HDF5", "img/s", values, **memory, notes=notes)]


def run_bench(cfg: BenchConfig, progress: Log | None = None) -> dict:
    """Measure every item of `cfg.items`; returns a JSON-ready dict (machine, config, results)."""
    unknown = set(cfg.items) - set(ITEMS)
    if unknown:
        raise ValueError(f"unknown bench items: {sorted(unknown)}")
    say = progress or (lambda message: None)
    machine = describe_machine(cfg.device)
    results: list[Measured] = []
    skipped: dict[str, str] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="toolkit-bench-") as tmp:
        scratch = Path(tmp)
        needs_source = {"augment", "loader"} & set(cfg.items)
        source = None
        if needs_source:
            # Large enough for the loader item; its pole shape gives augment neighbour pairs to choose from.
            azimuths = 72
            elevations = max(1, -(-cfg.loader_images // azimuths))
            source = synthetic_pole(scratch / "source.h5", cfg.train_size, elevations, azimuths)
        for item in cfg.items:
            say(f"bench: {item}")
            if item == "render":
                # Looked up, not imported: an imported bpy puts its script folders on sys.path, which the spawned
                # render workers inherit and where they would then find the wrong `bpy` package.
                if importlib.util.find_spec("bpy") is None:
                    skipped["render"] = "bpy is not installed (pip install '.[render]')"
                    continue
                results += bench_render(cfg, scratch)
            elif item == "train":
                results += bench_train(cfg)
            elif item == "paths":
                results += bench_paths(cfg)
            elif item == "augment":
                results += bench_augment(cfg, scratch, source)
            elif item == "evaluate":
                path = Path(cfg.eval_data) if cfg.eval_data else None
                if path is None or not path.is_file():
                    path = synthetic_pole(scratch / "eval.h5", cfg.train_size)
                results += bench_evaluate(cfg, path)
            elif item == "loader":
                results += bench_loader(cfg, source)
    return {
        "machine": {**machine, "load_average_end": [round(v, 2) for v in os.getloadavg()]},
        "config": asdict(cfg),
        "seconds": round(time.perf_counter() - started, 1),
        "results": [r.to_dict() for r in results],
        "skipped": skipped,
    }
