"""Arithmetic on generating parameters: differences and interpolation, periodic ones (azimuth) on the circle."""

from __future__ import annotations

import numpy as np


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
