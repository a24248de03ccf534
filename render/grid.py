"""Parameter grids: parsing `45:80:5` or `0,90,180`, checking ranges, and splitting rows into shards."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from toolkit.errors import UserError

_NUMBER = r"[-+]?\d+(?:\.\d*)?"
_RANGE = re.compile(rf"^\s*({_NUMBER}):({_NUMBER}):({_NUMBER})\s*$")


def parse_values(text: str, option: str) -> list[float]:
    """'45:80:5' (start:end:step, end included) or '0,90,180' -> a sorted list without repeats."""
    match = _RANGE.match(text)
    if match:
        start, end, step = (float(v) for v in match.groups())
        if step <= 0:
            raise UserError(f"{option}: the step in '{text}' must be positive")
        if end < start:
            raise UserError(f"{option}: the end of '{text}' is below its start")
        count = int(np.floor((end - start) / step + 1e-9)) + 1
        # Multiplying (not accumulating) keeps 5-degree steps exact after many values.
        values = [round(start + k * step, 9) for k in range(count)]
    else:
        try:
            values = [float(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise UserError(
                f"{option} expects a range such as 45:80:5 or a list such as 0,90,180, got '{text}'"
            ) from None
        if not values:
            raise UserError(f"{option} is empty")
    return sorted(set(values))


def check_range(values: list[float], low: float, high: float, option: str, high_included: bool = True) -> None:
    """A one-line error naming the first value outside [low, high] (or [low, high))."""
    for v in values:
        if v < low or v > high or (not high_included and v == high):
            bracket = "]" if high_included else ")"
            raise UserError(f"{option}: {v:g} is outside [{low:g}, {high:g}{bracket}")


def turntable_azimuths(step: float) -> list[float]:
    """Views all the way round at `step` degrees; the step must divide 360."""
    if step <= 0 or step > 360:
        raise UserError(f"--step must lie in (0, 360], got {step:g}")
    views = 360 / step
    if abs(views - round(views)) > 1e-9:
        raise UserError(f"--step {step:g} does not divide 360; try 5, 10, 15, 20, 30, 45, 60, 90")
    return [round(k * step, 9) for k in range(round(views))]


@dataclass(frozen=True)
class Shard:
    """Part `index` of `count` (both from 1) of a grid: a contiguous, deterministic block of rows."""

    index: int = 1
    count: int = 1

    def rows(self, total: int) -> tuple[int, int]:
        """[start, stop) of this part's rows in a grid of `total` rows."""
        return (self.index - 1) * total // self.count, self.index * total // self.count

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str | None) -> Shard:
    """'2/4' -> Shard(2, 4); None -> the whole grid."""
    if text is None:
        return Shard()
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise UserError(f"--shard expects i/n such as 2/4, got '{text}'")
    index, count = int(match[1]), int(match[2])
    if count < 1 or not 1 <= index <= count:
        raise UserError(f"--shard {text}: i must lie in 1..n (parts are numbered from 1)")
    return Shard(index, count)


@dataclass(frozen=True)
class Grid:
    """The rows to render, in the order they are written, and the grid as recorded in the file."""

    params: np.ndarray  # (N, P) float32
    labels: np.ndarray  # (N,) int64
    description: dict  # e.g. {"elevation_deg": [...], "azimuth_deg": [...]}

    def __len__(self) -> int:
        return len(self.params)
