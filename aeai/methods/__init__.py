"""The training methods by name; each supplies its losses and extra networks to the one trainer loop.

Adding a method: one module with a `Method` subclass (its `name`, `default_lr`, networks in `extras`,
optimizers, `training_step`), its options as TrainConfig fields and `toolkit train` flags, its name and rate in
`config.DEFAULT_LRS` (which the command line reads without importing torch), and one entry below.
"""

from __future__ import annotations

from toolkit.aeai.methods.aae import AAE
from toolkit.aeai.methods.acai import ACAI
from toolkit.aeai.methods.ae import PlainAE
from toolkit.aeai.methods.aeai import AEAI
from toolkit.aeai.methods.amr import AMR
from toolkit.aeai.methods.base import Method
from toolkit.aeai.methods.gaia import GAIA
from toolkit.aeai.methods.vae import BetaVAE

# The order of the paper's comparison, AEAI first; `toolkit train --help` lists them so.
METHODS: dict[str, type[Method]] = {cls.name: cls for cls in (AEAI, PlainAE, BetaVAE, AAE, ACAI, AMR, GAIA)}

__all__ = ["METHODS", "Method", "get_method"]


def get_method(name: str) -> type[Method]:
    """The method class registered under `name` (validated by TrainConfig.validate)."""
    return METHODS[name]
