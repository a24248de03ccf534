"""The settings of training, shared by the library and the CLI: dataclasses with the paper's
defaults, and the tables of methods and ablations. Torch-free, so that the command line starts fast."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from toolkit.errors import UserError

# How a run's images are split into train and test (datasets.split): "random" is the paper's 80/20; "arc" holds
# out one contiguous arc of azimuths on every grid line, so that whole test intervals are unseen in training
# (`evaluate --ends test`), which a random split cannot give.
SPLITS = ("random", "arc")
D_AUGMENT = ("off", "always", "adaptive")  # how AEAI's discriminator sees augmented images (TrainConfig.d_augment)

# Loss weights and slopes: 0 is allowed (it drops a term), negative or non-finite values are not.
NON_NEGATIVE = (
    "lambda_a",
    "lambda_c",
    "lambda_s",
    "beta",
    "acai_lambda",
    "amr_lambda",
    "amr_beta",
    "gaia_slope",
    "gaia_distance",
    "r1",
)


@dataclass
class TrainConfig:
    """Everything that defines a training run; saved as config.json in the run directory."""

    data: str = "data/pole.h5"
    method: str = "aeai"
    # The budget: `epochs`, or `steps` (optimizer steps, rounded up to whole epochs); neither: DEFAULT_STEPS,
    # which is the pole set's 120 epochs (14 batches of 32 an epoch) and 1680 epochs of one 58-image object.
    epochs: int | None = None
    steps: int | None = None
    batch_size: int = 32
    lr: float | None = None  # Adam, all of a method's networks; None: the method's own default (Method.default_lr)
    latent: int = 256  # paper, section 4.2
    width: int = 16  # feature maps of the first conv block; the paper goes 16 -> 128
    # AEAI's weights, for its per-element-mean terms: `toolkit sweep` on the pole (32 px, 40 epochs, validation
    # intervals) from the paper's 0.01, 0.01, 0.1 (README, "AEAI's objective"); 0 drops a term (an ablation).
    lambda_a: float = 1e-3  # adversarial; 0 also drops the discriminator
    lambda_c: float = 1e-3  # cycle consistency (0.01 ties it and reconstructs worse: docs/sweep/pole32-pass7.md)
    lambda_s: float = 5e-2  # smoothness (0.1 ties it on validation and reconstructs 1.3x worse: pass 7)
    alpha_grid: int = 0  # 0: one alpha ~ U[0,1] per pair; M > 0: sum over alpha = n/M, n = 0..M (paper's equations)
    # AEAI's discriminator (toolkit.aeai.methods.aeai): the standard remedies for a D that wins outright.
    r1: float = 1.0  # weight of the R1 gradient penalty on real images (Mescheder et al. 2018); 0: none
    # DiffAugment (translation, cutout) of what D sees, real and fake (Zhao et al. 2020): "off", "always", or
    # "adaptive": each image with a probability p that ADA's controller moves to hold E[sign D(real)] at ada_target.
    # Adaptive is the default: unaugmented, D catches every fake (accuracy 0.94-0.98 on the pole), adaptive holds it
    # at 0.82-0.86 with the same validation score (README, "AEAI's objective"; docs/sweep/pole32-pass6.md).
    d_augment: str = "adaptive"
    ada_target: float = 0.6  # Karras et al. 2020's value
    d_beta1: float = 0.5  # Adam's beta1 for D (the GAN practice since DCGAN; beta2 stays 0.999)
    diagnostics_every: int = 10  # aeai: steps between measurements of each term's gradient norm at the decoder
    perceptual: str | None = None  # VGG16 weights file: L_R becomes the perceptual loss instead of L2
    label: int | None = None  # train on one object of a multi-object dataset (paper: one COIL-100 class)
    seed: int = 0
    test_fraction: float = 0.2  # paper: a random 80/20 split
    split: str = "random"  # random: the paper's; arc: per grid line a held-out arc of azimuths (see SPLITS)
    sample_every: int | None = None  # epochs between interpolation grids (and the last always); None: about 12
    checkpoint_every: int | None = None  # epochs between checkpoints (and the last, and Ctrl-C); None: about 100
    device: str = "auto"  # auto | cpu | cuda
    compile: bool = False  # torch.compile the nets (CUDA)
    # Baselines' settings: their authors' defaults, from each paper and its authors' code (the repository named
    # beside each); each method reads only its own.
    beta: float = 4.0  # vae: weight of the KL term (Higgins et al. 2016)
    acai_lambda: float = 0.5  # acai: weight of the critic term in the AE loss (brain-research/acai, advweight)
    acai_gamma: float = 0.2  # acai: the critic sees gamma x + (1 - gamma) g(f(x)) as "alpha 0" (acai, reg)
    amr_lambda: float = 10.0  # amr: weight of the L1 reconstruction (christopher-beckham/amr, lamb)
    amr_beta: float = 0.0  # amr: weight of the latent consistency L1(f(g(z_mix)), z_mix) (amr, beta)
    amr_d_steps: int = 5  # amr: D steps per autoencoder step (amr, update_g_every)
    gaia_slope: float = 20.0  # gaia: slope of the sigmoids that balance D and G (timsainb/GAIA, lr_sigma_slope)
    gaia_distance: float = 5e-5  # gaia: weight of the pairwise-distance loss (GAIA, latent_loss_weights)

    def __post_init__(self) -> None:
        if isinstance(self.d_augment, bool):  # a config.json written when the flag was on or off
            self.d_augment = "always" if self.d_augment else "off"
        if self.lr is None:
            # Resolved here so that config.json records the rate the run actually used.
            self.lr = DEFAULT_LRS.get(self.method)

    def validate(self) -> None:
        """Raise a UserError naming the first bad setting."""
        if self.method not in DEFAULT_LRS:
            raise UserError(f"unknown method '{self.method}'; choose one of {', '.join(sorted(DEFAULT_LRS))}")
        positive = {"batch_size": self.batch_size, "latent": self.latent, "width": self.width}
        optional = {"epochs": self.epochs, "steps": self.steps}
        optional |= {"sample_every": self.sample_every, "checkpoint_every": self.checkpoint_every}
        if self.epochs is not None and self.steps is not None:
            raise UserError("give the budget as --epochs or as --steps, not both")
        for name, value in positive.items() | {k: v for k, v in optional.items() if v is not None}.items():
            if value < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if self.batch_size < 2:
            raise UserError("--batch-size must be at least 2: AEAI interpolates between pairs of images")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise UserError(f"--lr must be a positive number, got {self.lr}")
        if self.amr_d_steps < 1:
            raise UserError(f"--amr-d-steps must be at least 1, got {self.amr_d_steps}")
        for name in NON_NEGATIVE:
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise UserError(f"--{name.replace('_', '-')} must be a finite number >= 0, got {value}")
        if self.alpha_grid < 0:
            raise UserError(f"--alpha-grid must be 0 (random alpha) or a number of steps M >= 1, got {self.alpha_grid}")
        if self.d_augment not in D_AUGMENT:
            raise UserError(f"--d-augment must be one of {', '.join(D_AUGMENT)}, got '{self.d_augment}'")
        if not 0 <= self.ada_target < 1:
            raise UserError(f"--ada-target must be in [0, 1), got {self.ada_target}")
        if not 0 <= self.d_beta1 < 1:
            raise UserError(f"--d-beta1 must be in [0, 1), got {self.d_beta1}")
        if self.diagnostics_every < 1:
            raise UserError(f"--diagnostics-every must be at least 1, got {self.diagnostics_every}")
        if self.split not in SPLITS:
            raise UserError(f"--split must be one of {', '.join(SPLITS)}, got '{self.split}'")
        if not 0 < self.test_fraction < 1:
            raise UserError(f"--test-fraction must lie strictly between 0 and 1, got {self.test_fraction}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise UserError(f"--device must be auto, cpu or cuda, got '{self.device}'")
        if not 0 <= self.acai_gamma <= 1:
            raise UserError(f"--acai-gamma must be in [0, 1], got {self.acai_gamma}")
        if self.perceptual is not None and not Path(self.perceptual).is_file():
            raise UserError(f"--perceptual {self.perceptual}: no such VGG16 weights file")

    def budget(self, n_train: int, world: int = 1) -> Budget:
        """The run's length on `n_train` training images over `world` processes (see `epochs` and `steps`)."""
        per_epoch = max(1, n_train // (min(self.batch_size, max(1, n_train // world)) * world))
        epochs = self.epochs or math.ceil((self.steps or DEFAULT_STEPS) / per_epoch)
        sample_every = self.sample_every or max(1, round(epochs / SAMPLE_GRIDS))
        return Budget(epochs, epochs * per_epoch, sample_every, self.checkpoint_every or sparse_checkpoints(epochs))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """Build from a saved config, ignoring keys this version does not know (written by a newer one); a key
        it lacks that came in with a new default is the value such runs were trained with (UNSAVED_BEFORE)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**UNSAVED_BEFORE | {k: v for k, v in data.items() if k in names})


# Fields added with a default other than how earlier runs trained: a config.json without the key means this value.
UNSAVED_BEFORE = {"d_augment": "off"}

DEFAULT_STEPS = 1680  # the pole's 120 epochs; a 58-image object: 1680 epochs, within 1.3x of 3000 steps' test MSE
SHORT_RUN_STEPS = 500  # fewer steps than this: `toolkit train` warns (120 steps on one object: 1.6x the error)
SAMPLE_GRIDS = 12  # interpolation grids in a run, when --sample-every is not given


@dataclass(frozen=True)
class Budget:
    """A run's length in epochs and optimizer steps, and how often it writes grids and checkpoints."""

    epochs: int
    steps: int
    sample_every: int
    checkpoint_every: int


# The methods by name, in the order of the paper's comparison (AEAI first), with the Adam rate each uses when
# --lr is not given (the reasons are beside each class's `default_lr`, which is read from here). Torch-free, so
# that the command line can list the methods without importing torch.
DEFAULT_LRS = {"aeai": 5e-4, "ae": 5e-4, "vae": 5e-4, "aae": 1e-4, "acai": 1e-4, "amr": 1e-4, "gaia": 1e-4}

# The paper's ablations: AEAI with one of its terms dropped, by name (reproduce trains them, downstream can).
ABLATIONS = {"aeai-no-d": {"lambda_a": 0.0}, "aeai-no-c": {"lambda_c": 0.0}, "aeai-no-s": {"lambda_s": 0.0}}


def method_settings(name: str) -> dict:
    """TrainConfig fields for a method or an ablation by name: "aeai-no-d" is method aeai with lambda_a 0."""
    return {"method": "aeai", **ABLATIONS[name]} if name in ABLATIONS else {"method": name}


def sparse_checkpoints(epochs: int) -> int:
    """`checkpoint_every` for a run of many tiny epochs (a step or a few each): about 100 checkpoints in all."""
    return max(1, epochs // 100)


# Settings that only one method reads: a run of another method ignores them, so a changed default of, say, AEAI's
# lambda_a does not make the baselines' runs "other settings".
OWN_SETTINGS = {
    "aeai": (
        "lambda_a",
        "lambda_c",
        "lambda_s",
        "alpha_grid",
        "r1",
        "d_augment",
        "ada_target",
        "d_beta1",
        "diagnostics_every",
    ),
    "vae": ("beta",),
    "acai": ("acai_lambda", "acai_gamma"),
    "amr": ("amr_lambda", "amr_beta", "amr_d_steps"),
    "gaia": ("gaia_slope", "gaia_distance"),
}


def ignored_settings(method: str) -> set[str]:
    """The fields that `method` does not read (the other methods' own settings)."""
    return {name for other, names in OWN_SETTINGS.items() if other != method for name in names}


# Settings that may change when a run is resumed; all others must match the saved config.
RESUMABLE = ("epochs", "steps", "device", "compile", "sample_every", "checkpoint_every")
