"""Training configuration: one dataclass with the paper's defaults, shared by the trainer and the CLI."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from toolkit.errors import UserError


@dataclass
class TrainConfig:
    """Everything that defines a training run; saved as config.json in the run directory."""

    data: str = "data/pole.h5"
    method: str = "aeai"
    epochs: int = 120  # pole set (576 images, 64x64): about 6 s an epoch on an idle 2-core CPU, 12 minutes
    batch_size: int = 32
    lr: float = 5e-4  # Adam, autoencoder and discriminator alike
    latent: int = 256  # paper, section 4.2
    width: int = 16  # feature maps of the first conv block; the paper goes 16 -> 128
    lambda_a: float = 1e-2  # adversarial (paper, section 2.3); 0 drops the discriminator (ablation)
    lambda_c: float = 1e-2  # cycle consistency; 0 = ablation
    lambda_s: float = 1e-1  # smoothness; 0 = ablation
    alpha_grid: int = 0  # 0: one alpha ~ U[0,1] per pair; M > 0: sum over alpha = n/M, n = 0..M (paper's equations)
    perceptual: str | None = None  # VGG16 weights file: L_R becomes the perceptual loss instead of L2
    label: int | None = None  # train on one object of a multi-object dataset (paper: one COIL-100 class)
    seed: int = 0
    test_fraction: float = 0.2  # paper: a random 80/20 split
    sample_every: int = 10  # epochs between interpolation grids (and the last epoch always)
    device: str = "auto"  # auto | cpu | cuda
    compile: bool = False  # torch.compile the nets (CUDA)

    def validate(self) -> None:
        """Raise a UserError naming the first bad setting."""
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "latent": self.latent, "width": self.width}
        for name, value in positive.items():
            if value < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if self.batch_size < 2:
            raise UserError("--batch-size must be at least 2: AEAI interpolates between pairs of images")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise UserError(f"--lr must be a positive number, got {self.lr}")
        for name in ("lambda_a", "lambda_c", "lambda_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise UserError(f"--{name.replace('_', '-')} must be a finite number >= 0, got {value}")
        if self.alpha_grid < 0:
            raise UserError(f"--alpha-grid must be 0 (random alpha) or a number of steps M >= 1, got {self.alpha_grid}")
        if self.sample_every < 1:
            raise UserError(f"--sample-every must be at least 1, got {self.sample_every}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise UserError(f"--device must be auto, cpu or cuda, got '{self.device}'")
        if self.perceptual is not None and not Path(self.perceptual).is_file():
            raise UserError(f"--perceptual {self.perceptual}: no such VGG16 weights file")
        from toolkit.aeai.methods import METHODS

        if self.method not in METHODS:
            raise UserError(f"unknown method '{self.method}'; choose one of {', '.join(sorted(METHODS))}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """Build from a saved config, ignoring keys this version does not know (written by a newer one)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


# Settings that may change when a run is resumed; all others must match the saved config.
RESUMABLE = ("epochs", "device", "compile", "sample_every")
