"""Which pairs to interpolate, with which alpha, and the labels of the in-between images."""

from __future__ import annotations

from enum import StrEnum

import numpy as np

from toolkit.errors import UserError


class PairMode(StrEnum):
    neighbors = "neighbors"  # same label, parameters at most max_gap apart
    random = "random"  # same label, any parameters


class AlphaDist(StrEnum):
    uniform = "uniform"  # U[0, 1], as the model was trained
    center = "center"  # Beta(2, 2): favours frames far from both real images


def param_difference(p_i: np.ndarray, p_j: np.ndarray, periods: np.ndarray) -> np.ndarray:
    """p_j - p_i per parameter; periodic ones along the short arc, in [-period/2, period/2)."""
    d = np.asarray(p_j, np.float64) - np.asarray(p_i, np.float64)
    periodic = periods > 0
    safe = np.where(periodic, periods, 1.0)
    wrapped = (d + safe / 2) % safe - safe / 2
    return np.where(periodic, wrapped, d)


def interpolate_params(p_i: np.ndarray, p_j: np.ndarray, alpha: np.ndarray, periods: np.ndarray) -> np.ndarray:
    """(1 - alpha) p_i + alpha p_j, with periodic parameters moved along the short arc and wrapped."""
    alpha = np.asarray(alpha, np.float64)[..., None]  # (n, 1) against params (n, P)
    p = np.asarray(p_i, np.float64) + alpha * param_difference(p_i, p_j, periods)
    periodic = periods > 0
    return np.where(periodic, np.mod(p, np.where(periodic, periods, 1.0)), p).astype(np.float32)


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
