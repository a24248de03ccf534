"""The parameter grid of a dataset and the intervals along it that `evaluate` measures.

A dataset whose images carry their generating parameters on a regular grid (the pole: elevation x azimuth;
a turntable or COIL-100 object: azimuth) is arranged as cells (label group, parameter values) -> row; an
interval of L degrees along one parameter (the others fixed, periodic ones wrapping at 360) is the row of
grid images from its source to its target; the frames to decode are those intervals' distinct
(source, target, alpha) triples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from toolkit.datasets import DatasetInfo, Split
from toolkit.errors import UserError
from toolkit.evaluate.config import Ends, EvalConfig

GRID_TOLERANCE = 1e-3  # parameters are stored as float32; grid values closer than this are the same value


@dataclass
class Axis:
    """One parameter of the grid: its sorted values, evenly `step` apart."""

    name: str
    column: int  # column in the dataset's params
    values: np.ndarray  # (n,) sorted
    step: float  # 0 when the parameter takes a single value
    period: float  # 360 for an azimuth, 0 otherwise
    wraps: bool  # periodic and covering the whole circle: intervals may cross 360 -> 0

    @property
    def n(self) -> int:
        return len(self.values)

    def longest_interval(self) -> float:
        """Longest interval the grid holds along this axis (periodic: half a turn, so arcs stay short)."""
        if self.n < 2:
            return 0.0
        if self.wraps:
            return min(self.period / 2, (self.n - 1) * self.step)
        return (self.n - 1) * self.step


@dataclass
class Grid:
    """Dataset rows arranged by (label group, parameter values); -1 where an image is missing."""

    axes: list[Axis]
    groups: np.ndarray  # (G,) label of each group
    cells: np.ndarray  # (G, n_0, ..., n_{P-1}) dataset row or -1
    params: np.ndarray  # (N, P) float64, every dataset row
    periods: np.ndarray  # (P,)

    @property
    def rows(self) -> np.ndarray:
        """Sorted dataset rows in the grid."""
        return np.sort(self.cells[self.cells >= 0])


def find_grid(data: DatasetInfo, labels: list[int] | None = None) -> Grid:
    """Arrange the images of `labels` (default: all) on their parameter grid; UserError if there is none."""
    keep = np.ones(data.n, bool) if labels is None else np.isin(data.labels, labels)
    if not keep.any():
        raise UserError(f"{data.path}: no images with label(s) {labels}")
    params = data.params.astype(np.float64)
    axes = []
    positions = []
    for column, name in enumerate(data.param_names):
        values = params[keep, column]
        period = float(data.periods[column])
        if period > 0:
            values = np.mod(values, period)
        unique = np.unique(np.round(values / GRID_TOLERANCE) * GRID_TOLERANCE)
        step = 0.0
        if len(unique) > 1:
            gaps = np.diff(unique)
            step = float(gaps.mean())
            if np.abs(gaps - step).max() > 10 * GRID_TOLERANCE:
                raise UserError(
                    f"{data.path}: parameter '{name}' is not on a regular grid (steps from {gaps.min():g} "
                    f"to {gaps.max():g}); the interval measures need images at evenly spaced values of every parameter"
                )
        wraps = period > 0 and len(unique) > 1 and abs(len(unique) * step - period) < 10 * GRID_TOLERANCE
        axes.append(Axis(name, column, unique, step, period, wraps))
        index = np.zeros(data.n, np.int64)
        if len(unique) > 1:
            index[keep] = np.round((values - unique[0]) / step).astype(np.int64)
        positions.append(index)
    groups = np.unique(data.labels[keep])
    group_index = np.searchsorted(groups, data.labels)
    cells = np.full((len(groups), *[a.n for a in axes]), -1, np.int64)
    rows = np.flatnonzero(keep)
    where = (group_index[rows], *[p[rows] for p in positions])
    if len(np.unique(np.ravel_multi_index(where, cells.shape))) != len(rows):
        raise UserError(
            f"{data.path}: several images share the same label and parameters; evaluate needs one image per grid point"
        )
    cells[where] = rows
    return Grid(axes, groups, cells, params, np.asarray(data.periods, np.float64))


@dataclass
class Intervals:
    """Intervals of one length along one axis: the grid rows on each, source first, target last."""

    axis: int
    length: float
    rows: np.ndarray  # (I, k + 1) dataset rows at alpha = 0, 1/k, ..., 1
    group: np.ndarray  # (I,) index into Grid.groups

    @property
    def steps(self) -> int:
        return self.rows.shape[1] - 1

    def subset(self, keep: np.ndarray) -> Intervals:
        return Intervals(self.axis, self.length, self.rows[keep], self.group[keep])


def enumerate_intervals(grid: Grid, axis: int, length: float) -> Intervals:
    """Every interval of `length` along `axis` whose grid images all exist (wrapping around periodic axes)."""
    a = grid.axes[axis]
    steps = round(length / a.step) if a.step > 0 else 0
    if a.step == 0 or abs(steps * a.step - length) > 10 * GRID_TOLERANCE or steps < 2:
        raise ValueError(f"{length:g} is not a multiple (>= 2) of the step of '{a.name}'")
    cells = np.moveaxis(grid.cells, axis + 1, -1)  # (G, ..., n_axis)
    group = np.broadcast_to(np.arange(len(grid.groups)).reshape(-1, *[1] * (cells.ndim - 1)), cells.shape)
    cells = cells.reshape(-1, a.n)  # (Q, n): one line of the grid along the axis per row
    group = group.reshape(-1, a.n)[:, 0]
    starts = np.arange(a.n if a.wraps else a.n - steps)
    along = starts[:, None] + np.arange(steps + 1)  # (S, k + 1) positions along the line
    if a.wraps:
        along %= a.n
    rows = cells[:, along].reshape(-1, steps + 1)  # (Q * S, k + 1)
    group = np.repeat(group, len(starts))
    complete = (rows >= 0).all(axis=1)
    return Intervals(axis, float(length), rows[complete], group[complete])


def held_length(axis: Axis, wanted: float, option: str) -> float:
    """The interval length measured along `axis` for a requested one: itself, or the longest the axis holds.

    An axis too short (the pole's elevation spans 35 degrees) gives the longest it holds; on an axis that does
    hold the length, it must be a multiple of the step, so nobody measures 80 as 75.
    """
    longest = round(axis.longest_interval() / axis.step)
    steps = wanted / axis.step
    if steps > longest + 1e-6:
        return longest * axis.step
    if abs(steps - round(steps)) * axis.step > 10 * GRID_TOLERANCE:
        raise UserError(f"{option} {wanted:g} is not a multiple of the '{axis.name}' grid step {axis.step:g}")
    return round(steps) * axis.step


def axis_lengths(axis: Axis, config: EvalConfig) -> list[float]:
    """Interval lengths of the per-length curve along `axis`: its step's multiples from --min-interval up to
    --interval (or the axis' span)."""
    if axis.n < 2:
        return []
    last = round(held_length(axis, config.max_interval, "--interval") / axis.step)
    first = max(2, math.ceil(config.min_interval / axis.step - 1e-6))  # two steps: one in-between image at least
    return [k * axis.step for k in range(first, last + 1)]


def split_status(split: Split | None, n: int) -> np.ndarray:
    """(n,) per dataset row: 0 outside the split, 1 train, 2 test (everything is 'train' without a split)."""
    status = np.ones(n, np.int64) if split is None else np.zeros(n, np.int64)
    if split is not None:
        if max(split.train.max(initial=-1), split.test.max(initial=-1)) >= n:
            raise UserError(f"the run's split refers to more images than the dataset's {n}; wrong --data?")
        status[split.train] = 1
        status[split.test] = 2
    return status


def select_intervals(intervals: Intervals, status: np.ndarray, ends: Ends, cap: int) -> Intervals:
    """Keep the intervals `ends` allows (see `Ends`), then at most `cap`, evenly spread."""
    rows = status[intervals.rows]  # (I, k + 1): 0 outside the split, 1 train, 2 test
    if ends == Ends.validation:
        intervals = intervals.subset((rows == 1).all(axis=1))
    elif ends == Ends.test:
        intervals = intervals.subset((rows[:, 0] == 2) & (rows[:, -1] == 2) & (rows[:, 1:-1] != 1).all(axis=1))
    count = len(intervals.group)
    if cap and count > cap:
        # Evenly spaced over an order that runs along the lines, so all fixed values stay represented.
        intervals = intervals.subset(np.unique(np.linspace(0, count - 1, cap).round().astype(np.int64)))
    return intervals


@dataclass
class Frames:
    """Distinct frames to decode: (source row, target row, alpha = m / k); ends become reconstructions."""

    source: np.ndarray  # (U,)
    target: np.ndarray  # (U,)
    alpha: np.ndarray  # (U,) float64
    truth: np.ndarray  # (U,) dataset row of the true image at that alpha


def collect_frames(interval_sets: list[Intervals]) -> tuple[Frames, list[np.ndarray]]:
    """Unique frames over all interval sets, and per set the (I, k + 1) index of each frame among them."""
    keys, truths = [], []
    for s in interval_sets:
        k = s.steps
        source = np.repeat(s.rows[:, :1], k + 1, axis=1)  # (I, k + 1)
        target = np.repeat(s.rows[:, -1:], k + 1, axis=1)
        m = np.broadcast_to(np.arange(k + 1), s.rows.shape)
        # alpha 0 and 1 decode the code of an end: one reconstruction per image, whatever the interval.
        ends = (m == 0) | (m == k)
        key = np.stack(
            [
                np.where(ends, s.rows, source),
                np.where(ends, s.rows, target),
                np.where(ends, 0, m),
                np.where(ends, 1, k),
            ],
            axis=-1,
        )  # (I, k + 1, 4)
        keys.append(key.reshape(-1, 4))
        truths.append(s.rows.reshape(-1))
    all_keys = np.concatenate(keys) if keys else np.zeros((0, 4), np.int64)
    unique, first, inverse = np.unique(all_keys, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    truth = np.concatenate(truths)[first]
    frames = Frames(unique[:, 0], unique[:, 1], unique[:, 2] / unique[:, 3], truth)
    indices, start = [], 0
    for s in interval_sets:
        size = s.rows.size
        indices.append(inverse[start : start + size].reshape(s.rows.shape))
        start += size
    return frames, indices
