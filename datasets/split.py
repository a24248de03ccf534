"""A seeded train/test split that can be stored with a run and reloaded exactly."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit.datasets.h5 import DatasetInfo
from toolkit.errors import UserError
from toolkit.files import write_json


@dataclass
class Split:
    """Row indices of the train and test parts of a dataset (both sorted)."""

    train: np.ndarray
    test: np.ndarray
    seed: int
    n: int

    def save(self, path: Path) -> None:
        data = {"seed": self.seed, "n": self.n, "train": self.train.tolist(), "test": self.test.tolist()}
        write_json(path, data, indent=None)

    @classmethod
    def load(cls, path: Path) -> Split:
        try:
            data = json.loads(Path(path).read_text())
            return cls(
                np.asarray(data["train"], dtype=np.int64),
                np.asarray(data["test"], dtype=np.int64),
                int(data["seed"]),
                int(data["n"]),
            )
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
            raise UserError(f"{path}: not a readable split file ({e})") from None


def make_split(rows: np.ndarray | int, seed: int, test_fraction: float = 0.2) -> Split:
    """Shuffle `rows` (or range(rows)) with `seed` and hold out `test_fraction` of them (at least one)."""
    rows = np.arange(rows) if isinstance(rows, int) else np.asarray(rows, dtype=np.int64)
    if len(rows) < 2:
        raise UserError(f"a train/test split needs at least 2 images, got {len(rows)}")
    if not 0 < test_fraction < 1:
        raise UserError(f"test fraction must lie strictly between 0 and 1, got {test_fraction}")
    shuffled = np.random.default_rng(seed).permutation(rows)
    n_test = min(len(rows) - 1, max(1, round(test_fraction * len(rows))))
    return Split(np.sort(shuffled[n_test:]), np.sort(shuffled[:n_test]), seed, int(len(rows)))


def make_arc_split(rows: np.ndarray, data: DatasetInfo, seed: int, test_fraction: float) -> Split:
    """Hold out one contiguous arc of the first periodic parameter (an azimuth) on every line of the grid.

    A line is the set of `rows` sharing a label and every other parameter value (a turntable object: one
    line; the pole: one per elevation). Each line's arc covers ceil(test_fraction x its views) neighbouring
    views from a seeded random start, so the test split holds whole intervals whose every image is unseen in
    training, which a random split cannot give: the arc of 18 of 72 views (test_fraction 0.25) holds two
    80-degree and four 70-degree intervals.
    """
    rows = np.asarray(rows, dtype=np.int64)
    params, labels, periods = data.params, data.labels, np.asarray(data.periods)
    periodic = np.flatnonzero(periods > 0)
    if len(periodic) == 0:
        raise UserError("--split arc needs a periodic parameter (an azimuth); this dataset has none")
    if not 0 < test_fraction < 1:
        raise UserError(f"test fraction must lie strictly between 0 and 1, got {test_fraction}")
    column = periodic[0]
    others = np.delete(params[rows], column, axis=1).round(3)  # (n, P - 1): which line a row lies on
    line_keys = np.column_stack([labels[rows], others])
    rng = np.random.default_rng(seed)
    test = []
    for key in np.unique(line_keys, axis=0):
        members = rows[(line_keys == key).all(axis=1)]
        order = members[np.argsort(np.mod(params[members, column], periods[column]), kind="stable")]
        width = min(len(order) - 1, math.ceil(test_fraction * len(order)))
        if width < 1:
            continue  # a line of one view: it trains
        start = int(rng.integers(len(order)))
        test.append(order[(start + np.arange(width)) % len(order)])
    held = np.sort(np.concatenate(test)) if test else np.zeros(0, np.int64)
    if len(held) == 0:
        raise UserError("--split arc found no line of two or more views to hold an arc out of")
    return Split(np.setdiff1d(rows, held), held, seed, int(len(rows)))


def split_rows(rows: np.ndarray, data: DatasetInfo, kind: str, seed: int, test_fraction: float) -> Split:
    """The seeded split of `kind`: "random" (`make_split`, the paper's) or "arc" (`make_arc_split`)."""
    if kind == "arc":
        return make_arc_split(rows, data, seed, test_fraction)
    return make_split(rows, seed, test_fraction)
