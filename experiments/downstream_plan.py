"""What `toolkit downstream` compares: its tasks, its arms and its settings. Torch-free, so that the command
line starts without importing torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from toolkit.aeai.config import ABLATIONS
from toolkit.errors import UserError

DEFAULT_ARMS = ("real", "photometric", "mixup", "ae", "aeai")
ARMS = (*DEFAULT_ARMS, *ABLATIONS)


class Task(StrEnum):
    """What the downstream model learns from the images."""

    pole = "pole"  # regress the light direction (elevation, azimuth) of the pole scene
    turntable = "turntable"  # classify the object of a turntable view


TASKS = tuple(Task)
# The built-in tasks as protocols of the generic benchmark: what the CNN predicts, which factor is thinned out
# for training (every k-th value of its grid: pole 20 degrees apart, turntable 30) and the others held out.
PRESETS = {
    "pole": {"target": "direction", "split_factor": "azimuth_deg", "every": 4},
    "turntable": {"target": "label", "split_factor": "azimuth_deg", "every": 6},
}
RUN_ARM = "run:"  # prefix of the arm of a trained run given with --runs


@dataclass(frozen=True)
class Protocol:
    """What one benchmark measures: the target, and how the images are split into training and test."""

    name: str  # "pole", "turntable", or the data file's stem and the target
    target: str  # a factor's name, "label", or "direction" (the light of the pole: elevation and azimuth)
    split_factor: str | None  # train on every `every`-th value of this factor, test on the others
    every: int
    train_fraction: float | None  # or: a seeded random fraction of the images for training


@dataclass
class DownstreamConfig:
    """The benchmark's settings; all recorded in its report."""

    task: str | None = "pole"  # a built-in task; None: the protocol given by target and the split settings
    target: str | None = None  # a factor, "label" or "direction"; default: the task's
    split_factor: str | None = None  # default: the task's, or the target factor, or the first periodic factor
    every: int | None = None  # default: the task's, or 4
    train_fraction: float | None = None  # instead of every: train on this fraction of the images
    runs: list[str] = field(default_factory=list)  # trained runs compared as arms ("run:NAME")
    arms: list[str] = field(default_factory=lambda: list(DEFAULT_ARMS))
    seeds: int = 3
    steps: int = 1000  # optimisation steps of the downstream CNN, the same for every arm
    batch_size: int = 64
    lr: float = 2e-3
    n_extra: int = 5000  # extra images per augmented arm
    max_gap: float | None = None  # neighbour pairs' largest gap; default the gap between training values
    # Epochs of the AE and AEAI models trained on the sparse images; None: `toolkit train`'s step budget, so that
    # 18 images get as many optimizer steps as 144 (150 epochs were 150 steps on one turntable object's 18 views).
    interp_epochs: int | None = None
    scorer_steps: int = 400  # steps of the label-fidelity scorer (0: no fidelity report)

    def protocol(self, data_stem: str) -> Protocol:
        """The task's protocol, with the settings given here in place of its own."""
        preset = PRESETS.get(self.task or "", {})
        target = self.target or preset.get("target") or "label"
        custom = self.task is None or any(
            getattr(self, k) is not None and getattr(self, k) != v for k, v in preset.items()
        )
        name = f"{data_stem}-{target}" if custom or self.train_fraction is not None else str(self.task)
        split_factor = self.split_factor or preset.get("split_factor")
        if split_factor is None and self.target not in (None, "label", "direction"):
            split_factor = self.target
        every = self.every or preset.get("every") or 4
        return Protocol(name, target, split_factor, every, self.train_fraction)

    def validate(self) -> None:
        if self.task is not None and self.task not in TASKS:
            raise UserError(f"--task must be one of {', '.join(TASKS)}, got '{self.task}'")
        if self.every is not None and self.every < 2:
            raise UserError(f"--every must be at least 2 (1 would leave nothing to test on), got {self.every}")
        if self.train_fraction is not None and not 0 < self.train_fraction < 1:
            raise UserError(f"--train-fraction must be between 0 and 1, got {self.train_fraction:g}")
        if self.scorer_steps < 0:
            raise UserError(f"--scorer-steps must be 0 (no fidelity report) or more, got {self.scorer_steps}")
        unknown = [a for a in self.arms if a not in ARMS]
        if unknown or not self.arms:
            raise UserError(f"--arms must be a comma-separated subset of {','.join(ARMS)}, got {self.arms}")
        for name in ("seeds", "steps", "batch_size", "n_extra", "interp_epochs"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
