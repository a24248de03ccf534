"""The training methods by name; each supplies its losses and extra networks to the one trainer loop."""

from __future__ import annotations

from toolkit.aeai.methods.ae import PlainAE
from toolkit.aeai.methods.aeai import AEAI
from toolkit.aeai.methods.base import Method

METHODS: dict[str, type[Method]] = {cls.name: cls for cls in (AEAI, PlainAE)}

__all__ = ["METHODS", "Method", "get_method"]


def get_method(name: str) -> type[Method]:
    """The method class registered under `name` (validated by TrainConfig.validate)."""
    return METHODS[name]
