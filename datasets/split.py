"""A seeded train/test split that can be stored with a run and reloaded exactly."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
