"""The one training loop every method goes through: devices, AMP, data, checkpoints, metrics, sample grids.

A method (toolkit.aeai.methods) only says how one batch updates its networks. The loop keeps the whole
training split in memory as uint8 on the device (the pole set is 576 images), synchronises with the device
only when it logs, checks for NaN/inf at those points, writes a checkpoint and a metrics line every epoch,
and turns a Ctrl-C into "save and stop" at the next step boundary."""

from __future__ import annotations

import contextlib
import json
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from toolkit.aeai.config import DEFAULT_STEPS, RESUMABLE, SHORT_RUN_STEPS, TrainConfig, ignored_settings
from toolkit.aeai.distributed import (
    Ranks,
    any_rank,
    barrier,
    broadcast_object,
    mean_across_ranks,
    process_group,
    rank_device,
    rank_slice,
    unwrapped,
    wrap_for_ddp,
)
from toolkit.aeai.methods import METHODS, Method
from toolkit.aeai.nets import check_image_size
from toolkit.aeai.run import (
    CHECKPOINT,
    CONFIG,
    METRICS,
    SAMPLES,
    SPLIT,
    CheckpointFile,
    keep_metrics_up_to,
    point_latest,
    read_config,
)
from toolkit.aeai.tensorboard import EventLog
from toolkit.datasets import DatasetInfo, Split, open_dataset, split_rows
from toolkit.devices import resolve_device
from toolkit.errors import UserError
from toolkit.files import atomic_write, output_lock, write_json

Progress = Callable[..., None]
GRID_PAIRS = 6  # rows of the sample grid
GRID_STEPS = 10  # decoded alphas per row, 0 and 1 included


class TrainingDiverged(UserError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainResult:
    """What a finished (or interrupted) call to `train` leaves behind."""

    run_dir: Path
    epoch: int  # epochs completed and checkpointed
    metrics: dict  # the last epoch's metrics line ({} if no epoch ran)
    interrupted: bool


@dataclass
class EpochResult:
    """What `train_one_epoch` did: each logged term's mean over its steps, and whether a Ctrl-C cut it short."""

    means: dict[str, float]
    steps: int
    seconds: float
    stopped: bool


def set_up_for_device(
    method: Method, device: torch.device, channels_last: bool = True, bf16: bool | None = None
) -> None:
    """The trainer's speed settings, in place: channels-last; on CUDA bf16 autocast and cuDNN's autotuner.

    Channels-last (NHWC) is the fastest layout for oneDNN's CPU convolutions (measured here: AE 1.4x, AEAI
    1.5-2x images/s at 64px) and for cuDNN's. bf16 needs no loss scaling. `bench` flips one at a time."""
    method.to(device)
    if channels_last:
        method.to(memory_format=torch.channels_last)
    if device.type == "cuda" if bf16 is None else bf16:
        method.autocast = lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def compile_nets(method: Method) -> None:
    """torch.compile every network of the method, in place: state_dict keys stay those of the plain modules."""
    for net in (method.model, *method.extras.values()):
        net.compile()


def default_run_dir(method: str, root: Path = Path("runs")) -> Path:
    """runs/<YYYYmmdd-HHMMSS>-<method>."""
    return root / f"{time.strftime('%Y%m%d-%H%M%S')}-{method}"


def select_rows(info: DatasetInfo, label: int | None) -> np.ndarray:
    """All rows, or only those of object `label` (the paper trains on one COIL-100 object at a time)."""
    if label is None:
        return np.arange(info.n)
    rows = np.flatnonzero(info.labels == label)
    if len(rows) == 0:
        present = sorted(set(info.labels.tolist()))
        shown = ", ".join(map(str, present[:20])) + (" ..." if len(present) > 20 else "")
        raise UserError(f"--label {label}: no images with that label in {info.path} (labels present: {shown})")
    return rows


def resume_config(run_dir: Path, overrides: dict, prefix: str = "--resume: ") -> TrainConfig:
    """The saved config of `run_dir`, with the settings that may change on resume taken from `overrides`."""
    saved = read_config(run_dir, prefix=prefix)
    config = TrainConfig.from_dict(saved)
    if "data_path" in saved and "data" not in overrides:
        config.data = saved["data_path"]  # absolute: resuming from another folder finds the same file
    ignored = ignored_settings(config.method)
    for name, value in overrides.items():
        if name in RESUMABLE or (name == "data" and same_file(value, saved.get("data_path"))):
            setattr(config, name, value)  # the data file named by another path (relative, absolute) is the same
        elif value != getattr(config, name) and name not in ignored:
            raise UserError(
                f"{prefix}the run was trained with {name}={getattr(config, name)!r}, not {value!r}; "
                f"only {', '.join(RESUMABLE)} may change (start a new run for other settings)"
            )
    return config


def same_file(path: str | None, saved: str | None) -> bool:
    """Whether `path` names the file recorded as `saved` (absolute), however it is spelled."""
    return path is not None and saved is not None and Path(path).resolve() == Path(saved)


def as_float_images(images: Tensor) -> Tensor:
    """uint8 (B, 3, S, S) -> float in [0, 1], channels-last like the nets."""
    return images.float().div_(255.0).contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def reconstruction_mse(model: nn.Module, images: Tensor, batch: int = 256) -> float:
    """Mean squared error of g(f(x)) over all pixels of `images` (uint8), the model in eval mode."""
    was_training = model.training
    model.eval()
    total = torch.zeros((), device=images.device)
    for start in range(0, len(images), batch):
        x = as_float_images(images[start : start + batch])
        total += (model(x).float() - x).square().sum()
    model.train(was_training)
    return total.item() / max(1, images[0].numel() * len(images))


@torch.no_grad()
def interpolation_grid(model: nn.Module, x_i: Tensor, x_j: Tensor, steps: int = GRID_STEPS) -> Tensor:
    """Rows [x_i, g(z(0)), ..., g(z(1)), x_j] for each pair: (P (steps + 2), 3, S, S), model in eval mode."""
    was_training = model.training
    model.eval()
    z_i, z_j = model.encode(x_i), model.encode(x_j)
    frames = [model.decode(model.interpolate(z_i, z_j, float(a))).float() for a in torch.linspace(0, 1, steps)]
    model.train(was_training)
    return torch.stack([x_i.float(), *frames, x_j.float()], dim=1).flatten(0, 1)


def save_grid(images: Tensor, path: Path, columns: int) -> None:
    """Save a grid of images (N, 3, S, S) in [0, 1] as a PNG, written atomically."""
    from torchvision.utils import save_image

    with atomic_write(path) as tmp:
        save_image(images.cpu(), tmp, nrow=columns, padding=2, pad_value=1.0, format="PNG")


@contextlib.contextmanager
def stop_on_sigint() -> Iterator[Callable[[], bool]]:
    """Turn the first Ctrl-C into a flag the loop checks between steps; a second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    requested: list[bool] = []

    def handler(signum: int, frame: object) -> None:
        if requested:
            raise KeyboardInterrupt
        requested.append(True)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(requested)
    finally:
        signal.signal(signal.SIGINT, previous)


def train(
    config: TrainConfig,
    run_dir: Path | None = None,
    resume: bool = False,
    progress: Progress | None = None,
    log_every: int = 5,
    warn: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train `config.method` on `config.data` into `run_dir` (or continue it with `resume`); see the module doc.

    Under torchrun (RANK, WORLD_SIZE set) every rank calls this: `config.batch_size` is then per rank, the
    global batch `batch_size * world_size`, and rank 0 alone writes the run directory."""
    config.validate()
    device = resolve_device(config.device)
    with process_group(device) as ranks:
        device = rank_device(device, ranks)
        # Rank 0's clock names a new run: the ranks may start a second apart.
        run_dir = Path(broadcast_object(run_dir if run_dir is not None else default_run_dir(config.method), ranks))
        if resume and not (run_dir / CHECKPOINT).exists():
            raise UserError(f"--resume: {run_dir} has no checkpoint to continue from")
        if not resume and (run_dir / CHECKPOINT).exists():
            raise UserError(
                f"{run_dir} already holds a trained run; pass --resume to continue it or choose another --out"
            )
        info = open_dataset(config.data)
        check_image_size(info.image_size)
        rows = select_rows(info, config.label)
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot create run directory {run_dir}: {e.strerror}") from None
        # One job per run directory: rank 0 holds the lock for all of its ranks.
        with output_lock(run_dir / "run") if ranks.is_main else contextlib.nullcontext():
            return _train_locked(
                config, run_dir, resume, progress if ranks.is_main else None, log_every, device, info, rows, ranks,
                warn if ranks.is_main else None,
            )  # fmt: skip


def _train_locked(
    config: TrainConfig,
    run_dir: Path,
    resume: bool,
    progress: Progress | None,
    log_every: int,
    device: torch.device,
    info: DatasetInfo,
    rows: np.ndarray,
    ranks: Ranks,
    warn: Callable[[str], None] | None,
) -> TrainResult:
    main = ranks.is_main
    if resume:
        split = Split.load(run_dir / SPLIT)
    else:
        split = split_rows(rows, info, config.split, config.seed, config.test_fraction)  # the same on every rank
        if main:
            split.save(run_dir / SPLIT)
            saved = {**config.to_dict(), "image_size": info.image_size, "data_path": str(info.path.resolve())}
            write_json(run_dir / CONFIG, saved)
    if main:
        point_latest(run_dir)

    torch.manual_seed(config.seed)
    method = METHODS[config.method](config, info.image_size)
    set_up_for_device(method, device)
    optimizers = method.configure_optimizers()
    shuffle = torch.Generator().manual_seed(config.seed)
    checkpoint = CheckpointFile(run_dir / CHECKPOINT, config)
    step = checkpoint.restore(method, optimizers, shuffle, device) if resume else 0
    epoch = checkpoint.epoch or 0
    if config.compile:
        compile_nets(method)
    # After the restore and compile: DDP wraps the modules that will run, and every rank starts from the
    # same weights (the seed, a checkpoint, and DDP's own broadcast from rank 0 besides).
    swaps = wrap_for_ddp(method, list(method.extras), ranks, device)
    if ranks.enabled:
        # Each rank draws its own alphas (and other sampling) from a stream derived from the shared state.
        torch.manual_seed(int(torch.randint(2**62, (1,))) + ranks.rank)

    def load(indices: np.ndarray) -> Tensor:
        return torch.from_numpy(info.read_images(indices)).permute(0, 3, 1, 2).contiguous().to(device)

    train_images, test_images = load(split.train), load(split.test)  # uint8 (N, 3, S, S), on the device
    grid_rows = split.test if len(split.test) >= 2 else split.train
    grid_rows = np.random.default_rng(config.seed).permutation(grid_rows)[: 2 * GRID_PAIRS]
    n_grid = len(grid_rows) // 2
    grid_x = load(grid_rows[: 2 * n_grid])
    grid_i, grid_j = as_float_images(grid_x[:n_grid]), as_float_images(grid_x[n_grid:])
    if main:
        (run_dir / SAMPLES).mkdir(exist_ok=True)
        keep_metrics_up_to(run_dir / METRICS, epoch)

    n_train = len(train_images)
    world = ranks.world_size
    if n_train < 2 * world:
        raise UserError(f"only {n_train} training image(s) after the split; training needs at least 2 per rank")
    batch = min(config.batch_size, n_train // world)  # per rank; all ranks shuffle with the same generator
    per_epoch = n_train // (batch * world) * batch * world  # the remainder is dropped; the next shuffle includes it
    budget = config.budget(n_train, world)
    if warn is not None and budget.steps < SHORT_RUN_STEPS:
        warn(
            f"this run makes only {budget.steps} optimizer steps ({budget.epochs} epochs on {n_train} training "
            f"images); the nets need about {DEFAULT_STEPS} to reconstruct well: "
            "leave out --epochs, or raise --steps"
        )
    last: dict = {}
    with stop_on_sigint() as stop_requested, EventLog(run_dir, enabled=main, after_epoch=epoch) as events:
        while epoch < budget.epochs:
            done = train_one_epoch(
                method, optimizers, train_images, shuffle, batch, epoch, ranks,
                stop_requested, progress, log_every, budget.epochs, checkpoint,
            )  # fmt: skip
            step += done.steps
            if done.stopped:
                # The unfinished epoch's updates are kept, but it counts as not done: resume repeats it.
                if main:
                    with unwrapped(swaps):
                        checkpoint.write(method, optimizers, epoch, step, shuffle)
                break
            epoch += 1
            last = {"epoch": epoch, "step": step, **done.means}
            checkpoints = epoch % budget.checkpoint_every == 0 or epoch == budget.epochs
            if not main:
                checkpoint.epoch = epoch if checkpoints else checkpoint.epoch  # rank 0 writes it, all ranks name it
                continue
            # Rank 0 alone evaluates and writes, on the plain modules; the others wait in the next step's all-reduce.
            with unwrapped(swaps):
                test_mse = reconstruction_mse(method.model, test_images)
                _check_finite({"test_mse": test_mse}, epoch, checkpoint)
                speed = round(per_epoch / done.seconds, 1)
                last |= {"test_mse": test_mse, "seconds": round(done.seconds, 3), "images_per_s": speed}
                # The metrics line first: a kill before the checkpoint lands leaves a line that resume drops
                # (_keep_metrics_up_to), whereas the other order would lose the epoch's line for good.
                with (run_dir / METRICS).open("a") as f:
                    f.write(json.dumps(last) + "\n")
                events.scalars(epoch, last)  # every loss term and diagnostic, when tensorboard is installed
                if checkpoints:
                    checkpoint.write(method, optimizers, epoch, step, shuffle)
                if epoch % budget.sample_every == 0 or epoch == budget.epochs:
                    grid = interpolation_grid(method.model, grid_i, grid_j)
                    save_grid(grid, run_dir / SAMPLES / f"epoch_{epoch:03d}.png", GRID_STEPS + 2)
                    events.images(epoch, "interpolation", grid, GRID_STEPS + 2)
            if progress is not None:
                progress(epoch * per_epoch, budget.epochs * per_epoch, epoch=epoch, **done.means, test_mse=test_mse)
    barrier(ranks)  # rank 0's last checkpoint is on disk when any rank returns
    return TrainResult(run_dir, epoch, last, interrupted=epoch < budget.epochs)  # short only after a Ctrl-C


def train_one_epoch(
    method: Method,
    optimizers: dict[str, torch.optim.Optimizer],
    images: Tensor,
    shuffle: torch.Generator,
    batch: int,
    epoch: int,
    ranks: Ranks,
    stop_requested: Callable[[], bool],
    progress: Progress | None,
    log_every: int,
    epochs: int,
    checkpoint: CheckpointFile,
) -> EpochResult:
    """Epoch `epoch + 1` of `epochs`: `batch` rows of `images` a step on each rank, until done or `stop_requested`."""
    method.train()
    world = ranks.world_size
    n_batches = len(images) // (batch * world)
    per_epoch = n_batches * batch * world
    order = torch.randperm(len(images), generator=shuffle).to(images.device)
    sums: dict[str, Tensor] = {}
    counts: dict[str, int] = {}  # a diagnostic measured every few steps is averaged over those steps only
    started = time.perf_counter()
    for b in range(n_batches):
        x = as_float_images(images[rank_slice(order, b, batch, ranks)])
        for name, value in method.training_step(x, optimizers).items():
            sums[name] = sums[name] + value if name in sums else value
            counts[name] = counts.get(name, 0) + 1
        logs = b % log_every == 0 or b == n_batches - 1
        if progress is not None and logs:
            # The one sync per log; under DDP rank 0 shows its own running numbers, the log global ones.
            running = {name: v.item() / counts[name] for name, v in sums.items()}
            if not ranks.enabled:  # a rank stopping alone would leave the others waiting
                _check_finite(running, epoch + 1, checkpoint)
            progress(epoch * per_epoch + (b + 1) * batch * world, epochs * per_epoch, epoch=epoch + 1, **running)
        stopping = stop_requested()
        if ranks.enabled:  # all ranks stop after the same step, a logged one (the only steps that sync)
            stopping = logs and any_rank(stopping, ranks, images.device)
        if stopping:
            break
    means = {name: v.item() / counts[name] for name, v in mean_across_ranks(sums, ranks).items()}
    _check_finite(means, epoch + 1, checkpoint)
    return EpochResult(means, b + 1, time.perf_counter() - started, stopping)


def _check_finite(values: dict[str, float], epoch: int, checkpoint: CheckpointFile) -> None:
    names = sorted(values, key=lambda name: name == "loss")  # name a term (L_S, ...), not the total it spoils
    bad = next((name for name in names if not math.isfinite(values[name])), None)
    if bad is None:
        return
    kept = "no checkpoint was written"
    if checkpoint.epoch is not None:
        kept = f"the last good checkpoint (epoch {checkpoint.epoch}) is kept in {checkpoint.path}"
    raise TrainingDiverged(f"training stopped: {bad} became {values[bad]} in epoch {epoch}; {kept}. Try a lower --lr")
