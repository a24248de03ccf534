"""Data-parallel training with PyTorch's DistributedDataParallel, one process per device, launched by torchrun.

`torchrun --nproc-per-node N -m toolkit train ...` sets RANK, WORLD_SIZE and LOCAL_RANK; the trainer then joins
the process group (gloo on the CPU, nccl on CUDA), gives each rank its slice of every global batch, and wraps
the networks a method calls in DDP so that their gradients are averaged across ranks in the backward pass.

Methods call `model.encode`, `model.decode`, `model.decoder` and their adversaries directly, never one
`forward`, so DDP wraps the modules those calls end in: an autoencoder's encoder and decoder, and every other
network as a whole. Each is swapped in place in its parent; `unwrapped` swaps the plain modules back for
checkpoints (whose keys stay those of a single-process run) and for rank 0's evaluation.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from toolkit.errors import UserError


@dataclass(frozen=True)
class Ranks:
    """Where this process stands: its rank, how many there are, its device index on this node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes files and shows progress."""
        return self.rank == 0


def ranks_from_environment() -> Ranks:
    """The ranks torchrun announces in the environment; a single process without them."""
    try:
        return Ranks(
            rank=int(os.environ.get("RANK", 0)),
            world_size=int(os.environ.get("WORLD_SIZE", 1)),
            local_rank=int(os.environ.get("LOCAL_RANK", 0)),
        )
    except ValueError as e:
        raise UserError(f"RANK, WORLD_SIZE or LOCAL_RANK is not an integer ({e})") from None


@contextlib.contextmanager
def process_group(device: torch.device) -> Iterator[Ranks]:
    """Join (and finally leave) the process group torchrun set up; a no-op for a single process."""
    ranks = ranks_from_environment()
    if not ranks.enabled or dist.is_initialized():
        yield ranks
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(ranks.local_rank)
    # A rank that dies leaves the others waiting in a collective: give up after a while rather than hang forever.
    dist.init_process_group(backend, timeout=datetime.timedelta(minutes=10))
    try:
        yield ranks
        dist.barrier()  # leave together: no rank tears the group down while a peer is still in its last collective
    finally:
        dist.destroy_process_group()


def rank_device(device: torch.device, ranks: Ranks) -> torch.device:
    """One CUDA device per rank on a node (LOCAL_RANK); the CPU is shared."""
    if device.type == "cuda" and ranks.enabled:
        return torch.device("cuda", ranks.local_rank)
    return device


def rank_slice(order: Tensor, step: int, batch: int, ranks: Ranks) -> Tensor:
    """This rank's `batch` rows of global batch `step` of the shared permutation `order`.

    Together the ranks take order[step B W : (step + 1) B W], the batch one process with batch B W would take
    at that step: DistributedSampler's sharding, batch by batch, so that runs with the same global batch compare.
    """
    first = (step * ranks.world_size + ranks.rank) * batch
    return order[first : first + batch]


def broadcast_object(value: object, ranks: Ranks) -> object:
    """Rank 0's `value` on every rank (a run directory named after rank 0's clock, ...)."""
    if not ranks.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def mean_across_ranks(values: dict[str, Tensor], ranks: Ranks) -> dict[str, Tensor]:
    """Each 0-d tensor averaged over the ranks (one all-reduce for all of them): global numbers for the log."""
    if not ranks.enabled or not values:
        return values
    names = sorted(values)  # the same order on every rank
    stacked = torch.stack([values[name].detach().float() for name in names])
    dist.all_reduce(stacked)
    stacked /= ranks.world_size
    return dict(zip(names, stacked.unbind(), strict=True))


def any_rank(flag: bool, ranks: Ranks, device: torch.device) -> bool:
    """True on every rank when it is true on any (a Ctrl-C seen by one rank stops them all at the same step)."""
    if not ranks.enabled:
        return flag
    value = torch.tensor([float(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def barrier(ranks: Ranks) -> None:
    """Wait for every rank (rank 0's files are complete before the others go on)."""
    if ranks.enabled:
        dist.barrier()


Swap = tuple[nn.Module, str, nn.Module, DistributedDataParallel]  # parent, child name, plain module, wrapper


def called_modules(root: nn.Module, name: str) -> list[tuple[nn.Module, str]]:
    """(parent, child name) of the modules a method calls: an autoencoder's halves, or the network itself."""
    net = root.get_submodule(name)
    if hasattr(net, "encoder") and hasattr(net, "decoder"):
        return [(net, "encoder"), (net, "decoder")]
    return [(root, name)]


def wrap_for_ddp(method: nn.Module, extras: list[str], ranks: Ranks, device: torch.device) -> list[Swap]:
    """Swap DDP wrappers in for the modules `method` calls (its "model" and the named extras)."""
    swaps: list[Swap] = []
    if not ranks.enabled:
        return swaps
    for name in ["model", *extras]:
        for parent, child in called_modules(method, name):
            plain = parent.get_submodule(child)
            if not any(p.requires_grad for p in plain.parameters()):
                continue
            with warnings.catch_warnings():
                # torch 2.14 deprecates broadcast_buffers but says to keep it for rank-local buffers, as here.
                warnings.filterwarnings("ignore", message=r".*broadcast_buffers.*", category=FutureWarning)
                wrapper = DistributedDataParallel(
                    plain,
                    device_ids=[device.index] if device.type == "cuda" else None,
                    # Buffers stay per rank: BatchNorm's running statistics describe the rank's own batches, and
                    # the tangent-safe BatchNorm replaces (not updates) them, which DDP's broadcast cannot follow.
                    broadcast_buffers=False,
                )
            parent._modules[child] = wrapper
            swaps.append((parent, child, plain, wrapper))
    return swaps


@contextlib.contextmanager
def unwrapped(swaps: list[Swap]) -> Iterator[None]:
    """The plain modules back in place for the block: state_dict keys without `module.`, no collectives."""
    for parent, child, plain, _ in swaps:
        parent._modules[child] = plain
    try:
        yield
    finally:
        for parent, child, _, wrapper in swaps:
            parent._modules[child] = wrapper
