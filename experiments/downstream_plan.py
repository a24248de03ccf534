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
SPARSE_STEP = {"pole": 20.0, "turntable": 30.0}  # degrees between neighbouring training views


@dataclass
class DownstreamConfig:
    """The benchmark's settings; all recorded in its report."""

    task: str = "pole"
    arms: list[str] = field(default_factory=lambda: list(DEFAULT_ARMS))
    seeds: int = 3
    steps: int = 1000  # optimisation steps of the downstream CNN, the same for every arm
    batch_size: int = 64
    lr: float = 2e-3
    n_extra: int = 5000  # extra images per augmented arm
    max_gap: float | None = None  # neighbour pairs' largest gap; default one sparse grid step (SPARSE_STEP)
    interp_epochs: int = 150  # epochs for the AE and AEAI models trained on the sparse images

    def validate(self) -> None:
        if self.task not in TASKS:
            raise UserError(f"--task must be one of {', '.join(TASKS)}, got '{self.task}'")
        unknown = [a for a in self.arms if a not in ARMS]
        if unknown or not self.arms:
            raise UserError(f"--arms must be a comma-separated subset of {','.join(ARMS)}, got {self.arms}")
        for name in ("seeds", "steps", "batch_size", "n_extra", "interp_epochs"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
