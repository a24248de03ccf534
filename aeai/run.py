"""A run directory: its layout, its checkpoint (written atomically, read with weights_only) and `load_run`.

runs/NAME/
  config.json        the TrainConfig plus image_size and the dataset's absolute path
  split.json         the seeded train/test row indices into the dataset file
  metrics.jsonl      one line per epoch: every loss term, D accuracy, test reconstruction MSE, speed
  checkpoint.pt      the latest state (networks, optimizers, RNG), replaced atomically each epoch
  samples/epoch_XXX.png  interpolations between test pairs (rows: x_i, 10 decoded alphas 0..1, x_j)
runs/latest -> NAME  (a symlink, replaced atomically)
"""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from toolkit.aeai.config import TrainConfig
from toolkit.aeai.methods import METHODS, Method
from toolkit.datasets import Split
from toolkit.errors import UserError
from toolkit.files import atomic_write

CONFIG = "config.json"
SPLIT = "split.json"
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoint.pt"
SAMPLES = "samples"
CHECKPOINT_FORMAT = 1


def save_checkpoint(path: Path, state: dict) -> None:
    """Write `state` (tensors, numbers, strings, dicts, lists only) so that a kill never leaves half a file."""
    # Serialise in memory, then write with Python: a full disk or a file-size limit then surfaces as an OSError
    # naming the cause, where torch's own writer reports only "unexpected pos".
    buffer = io.BytesIO()
    torch.save(state, buffer)
    try:
        with atomic_write(path) as tmp:
            tmp.write_bytes(buffer.getbuffer())
    except OSError as e:
        raise UserError(f"writing {path} failed ({e.strerror}); the previous checkpoint is kept") from None


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> dict:
    """Read a checkpoint with weights_only=True; every failure is a one-line UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no checkpoint (has the run finished its first epoch?)")
    try:
        with warnings.catch_warnings():
            # torch warns about a plain pickle's protocol before refusing it: the refusal alone is the message.
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only" in str(e).lower() or "weights_only" in str(e).lower():
            raise UserError(f"{path}: the checkpoint carries pickled Python objects; refusing to load it") from None
        raise UserError(f"{path}: the checkpoint is truncated or corrupt") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as e:
        raise UserError(f"{path}: the checkpoint is truncated or corrupt ({type(e).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT or "model" not in state:
        raise UserError(f"{path}: not a toolkit checkpoint (format {CHECKPOINT_FORMAT})")
    return state


@dataclass
class CheckpointFile:
    """The run's checkpoint and the epoch it holds (None while there is none): what a divergence leaves behind."""

    path: Path
    config: TrainConfig
    epoch: int | None = None

    def write(self, method: Method, optimizers: dict, epoch: int, step: int, shuffle: torch.Generator) -> None:
        state = {
            "format": CHECKPOINT_FORMAT,
            "method": self.config.method,
            "epoch": epoch,
            "step": step,
            "model": method.model.state_dict(),
            "extras": {name: net.state_dict() for name, net in method.extras.items()},
            "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
            "training_state": method.training_state(),
            "rng": {"torch": torch.get_rng_state(), "shuffle": shuffle.get_state()},
            "config": json.dumps(self.config.to_dict()),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["rng"]["cuda"] = torch.cuda.get_rng_state()
        save_checkpoint(self.path, state)
        self.epoch = epoch

    def restore(self, method: Method, optimizers: dict, shuffle: torch.Generator, device: torch.device) -> int:
        """Load the checkpoint into the networks, optimizers and RNGs (and `epoch`); return its step."""
        state = load_checkpoint(self.path, device)
        try:
            method.model.load_state_dict(state["model"])
            for name, net in method.extras.items():
                net.load_state_dict(state["extras"][name])
            for name, opt in optimizers.items():
                opt.load_state_dict(state["optimizers"][name])
            method.load_training_state(state.get("training_state", {}))
            torch.set_rng_state(state["rng"]["torch"].cpu())
            shuffle.set_state(state["rng"]["shuffle"].cpu())
            if "cuda" in state["rng"] and torch.cuda.is_available():
                torch.cuda.set_rng_state(state["rng"]["cuda"].cpu())
        except (KeyError, RuntimeError, ValueError) as e:
            raise UserError(f"{self.path}: does not match this run's config ({str(e).splitlines()[0]})") from None
        self.epoch = int(state["epoch"])
        return int(state["step"])


def keep_metrics_up_to(path: Path, epoch: int) -> None:
    """Drop the metrics lines after `epoch` (and any torn by a kill)."""
    # A crash between the checkpoint and the metrics line (or the reverse) must not leave duplicates on resume.
    if not path.exists():
        return
    lines = path.read_text().splitlines()
    kept = [line for line in lines if _epoch_of(line) <= epoch]
    if len(kept) != len(lines):
        path.write_text("".join(line + "\n" for line in kept))


def _epoch_of(line: str) -> float:
    try:
        return json.loads(line).get("epoch", math.inf)
    except (json.JSONDecodeError, AttributeError):
        return math.inf  # a line torn by a kill mid-write: dropped


def point_latest(run_dir: Path) -> None:
    """Make `<parent>/latest` a symlink to `run_dir`, replacing an old link atomically; a real folder is left alone."""
    link = run_dir.parent / "latest"
    if link.exists() and not link.is_symlink():
        return
    tmp = run_dir.parent / f".latest.tmp-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_dir.name)  # relative, so the runs folder can be moved as a whole
    os.replace(tmp, link)


@dataclass
class LoadedRun:
    """A trained run ready for use: the autoencoder in eval mode and what it was trained on."""

    model: nn.Module  # .encode(x) -> z (B, latent), .decode(z) -> x (B, 3, H, W) in [0, 1], .interpolate(z_i, z_j, a)
    config: dict  # config.json as saved
    split: Split  # train/test row indices into the dataset file
    data_path: Path
    checkpoint_path: Path
    method: str
    image_size: int
    label: int | None
    epoch: int  # epochs completed when the checkpoint was written


def read_config(run_dir: Path, prefix: str = "") -> dict:
    """A run's saved config.json; a missing or unreadable file is a one-line UserError (after `prefix`)."""
    path = Path(run_dir) / CONFIG
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{prefix}{run_dir}: not a run directory (no {CONFIG})") from None
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"{prefix}{path}: unreadable ({e})") from None


def load_run(run_dir: Path | str, device: str = "cpu") -> LoadedRun:
    """Load a run directory's latest checkpoint into its autoencoder (eval mode) on `device`."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run directory")
    config_path = run_dir / CONFIG
    config = read_config(run_dir)
    method = config.get("method")
    if method not in METHODS:
        raise UserError(f"{config_path}: unknown method '{method}'")
    checkpoint_path = run_dir / CHECKPOINT
    state = load_checkpoint(checkpoint_path, device)
    image_size = int(config["image_size"])
    model = METHODS[method].build_model(TrainConfig.from_dict(config), image_size)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise UserError(f"{checkpoint_path}: does not match the run's config ({str(e).splitlines()[0]})") from None
    # Channels-last convolutions decode 2-3x faster on CPUs (oneDNN) and suit cuDNN as well.
    model.to(device, memory_format=torch.channels_last).eval()
    return LoadedRun(
        model=model,
        config=config,
        split=Split.load(run_dir / SPLIT),
        data_path=Path(config["data_path"]),
        checkpoint_path=checkpoint_path,
        method=method,
        image_size=image_size,
        label=config.get("label"),
        epoch=int(state.get("epoch", 0)),
    )
