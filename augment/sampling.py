"""Which pairs to interpolate, with which alpha, and the labels of the in-between images."""

from __future__ import annotations

from enum import StrEnum

import numpy as np

from toolkit.datasets.params import param_difference
from toolkit.errors import UserError


class PairMode(StrEnum):
    neighbors = "neighbors"  # same label, parameters at most max_gap apart
    random = "random"  # same label, any parameters


class AlphaDist(StrEnum):
    uniform = "uniform"  # U[0, 1], as the model was trained
    center = "center"  # Beta(2, 2): favours frames far from both real images


def candidate_pairs(
    rows: np.ndarray,
    params: np.ndarray,
    labels: np.ndarray,
    periods: np.ndarray,
    mode: PairMode,
    max_gap: float,
) -> np.ndarray:
    """All ordered pairs (i, j), i != j, of dataset rows that `mode` allows; shape (K, 2)."""
    rows = np.asarray(rows, np.int64)
    pairs = []
    for label in np.unique(labels[rows]):
        members = rows[labels[rows] == label]  # (m,)
        i, j = np.meshgrid(members, members, indexing="ij")
        keep = i != j
        if mode == PairMode.neighbors:
            gap = np.abs(param_difference(params[i], params[j], periods)).max(axis=-1)  # (m, m)
            keep &= gap <= max_gap + 1e-6
        pairs.append(np.stack([i[keep], j[keep]], axis=1))
    found = np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)
    if len(found) == 0:
        hint = f" within --max-gap {max_gap:g}; raise --max-gap or use --pairs random" if mode == "neighbors" else ""
        raise UserError(f"no pairs of images with the same label{hint}")
    return found


def sample_alpha(rng: np.random.Generator, n: int, dist: AlphaDist) -> np.ndarray:
    """n interpolation weights in [0, 1]."""
    if dist == AlphaDist.center:
        return rng.beta(2.0, 2.0, size=n)
    return rng.uniform(0.0, 1.0, size=n)
