"""Interpolation quality measured against ground truth, the way the paper's section 4.3 does.

A dataset whose images carry their generating parameters on a regular grid (the pole: elevation x
azimuth; a turntable or COIL-100 object: azimuth) has, for every interval of L degrees along one parameter
(the others fixed, periodic ones wrapping at 360), the true in-between images. We decode the latent
interpolation between the two ends of each interval at alpha = m / k (k grid steps, m = 0..k) and compute:

1. interval MSE (figure 6): each frame against the true image at its angle, pixels in [0, 1]; mean and
   std per alpha at the largest interval, and the mean over in-between frames per interval length;
2. alpha retrieval (figure 7): the nearest dataset image (L2) of each frame, its position along the
   interval as the predicted alpha; median and interquartile range per true alpha;
3. parameter distance (figure 8, two or more parameters): the parameter-space distance from each frame's
   nearest image to the source and to the target per alpha, against the ideal straight lines;
4. ACAI's smoothness score per interval, and one-number summaries of all of the above.

Efficiency is what makes this usable on a CPU: every grid image is encoded once, every distinct frame is
decoded once (interval ends are plain reconstructions, shared by all intervals touching that image), and
each decoded batch is scored and matched to its nearest image at once, so no frame is ever stored.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import StrEnum

import numpy as np
import torch
from torch import Tensor

from toolkit.aeai.config import Ends, EvalConfig
from toolkit.augment.sampling import param_difference
from toolkit.datasets import DatasetInfo, Split
from toolkit.datasets.torch_dataset import to_float
from toolkit.errors import UserError

Progress = Callable[..., None]
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
                    f"to {gaps.max():g}); evaluate needs images at evenly spaced parameter values"
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


def axis_lengths(axis: Axis, config: EvalConfig) -> list[float]:
    """Interval lengths measured along `axis`: its step's multiples from min_interval up to --interval or its span.

    An axis too short for --interval (the pole's elevation spans 35 degrees) stops at the longest it holds;
    on an axis that does hold it, --interval must be a multiple of the step, so nobody measures 80 as 75.
    """
    if axis.n < 2:
        return []
    longest = round(axis.longest_interval() / axis.step)
    last = config.max_interval / axis.step
    if last <= longest + 1e-6:
        if abs(last - round(last)) * axis.step > 10 * GRID_TOLERANCE:
            raise UserError(
                f"--interval {config.max_interval:g} is not a multiple of the '{axis.name}' grid step {axis.step:g}"
            )
        longest = round(last)
    first = max(2, math.ceil(config.min_interval / axis.step - 1e-6))  # two steps: one in-between image at least
    return [k * axis.step for k in range(first, longest + 1)]


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
    """Keep intervals whose two ends come from the `ends` split, then at most `cap`, evenly spread."""
    if ends != Ends.all:
        wanted = 1 if ends == Ends.train else 2
        keep = (status[intervals.rows[:, 0]] == wanted) & (status[intervals.rows[:, -1]] == wanted)
        intervals = intervals.subset(keep)
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


@torch.inference_mode()
def score_frames(
    model,
    images: Tensor,
    group_of: np.ndarray,
    frames: Frames,
    position: np.ndarray,
    batch_size: int,
    progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode every frame; return its MSE against the true image and its nearest grid image (a position).

    images (M, 3, H, W) in [0, 1] are the grid images; group_of (M,) their label group; position maps a
    dataset row to its index in images. Nearest neighbours are searched within the frame's label group.
    """
    device = images.device
    total = len(frames.source) + len(images)
    flat = images.flatten(1)  # (M, D)
    sq_norm = (flat * flat).sum(1)  # (M,)
    codes = []
    for start in range(0, len(images), batch_size):
        codes.append(model.encode(images[start : start + batch_size]))
        if progress:
            progress(start + len(codes[-1]), total)
    z = torch.cat(codes)  # (M, latent)
    mse = np.zeros(len(frames.source))
    nearest = np.zeros(len(frames.source), np.int64)
    src_pos, tgt_pos, truth_pos = position[frames.source], position[frames.target], position[frames.truth]
    order = np.argsort(group_of[src_pos], kind="stable")  # one label group per batch, mostly
    done = len(images)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        s, t = torch.from_numpy(src_pos[idx]).to(device), torch.from_numpy(tgt_pos[idx]).to(device)
        alpha = torch.from_numpy(frames.alpha[idx]).to(device=device, dtype=z.dtype)  # (B,)
        decoded = model.decode(model.interpolate(z[s], z[t], alpha)).flatten(1).float()  # (B, D)
        truth = flat[torch.from_numpy(truth_pos[idx]).to(device)]  # (B, D)
        mse[idx] = ((decoded - truth) ** 2).mean(1).cpu().numpy()
        # |x - g|^2 = |x|^2 - 2 x.g + |g|^2; |x|^2 is the same for every g, so it drops out of the argmin.
        dist = sq_norm[None, :] - 2 * decoded @ flat.T  # (B, M)
        other_group = torch.from_numpy(group_of[None, :] != group_of[src_pos[idx], None]).to(device)
        dist.masked_fill_(other_group, math.inf)
        nearest[idx] = dist.argmin(1).cpu().numpy()
        done += len(idx)
        if progress:
            progress(done, total)
    return mse, nearest


def positions_along(grid: Grid, s: Intervals, nearest_rows: np.ndarray) -> np.ndarray:
    """(I, k + 1) position of each frame's nearest image along the interval's axis, in degrees from its source."""
    a = grid.axes[s.axis]
    d = grid.params[nearest_rows, a.column] - grid.params[s.rows[:, :1], a.column]
    if a.period > 0:
        # Unwrap on the circle so that the interval is [0, L]; beyond it, whichever end is nearer.
        d = np.mod(d, a.period)
        d = np.where(d > (s.length + a.period) / 2, d - a.period, d)
    return d


def acai_smoothness(theta: np.ndarray) -> np.ndarray:
    """ACAI's score per interval: max_k |theta_k+1 - theta_k| / |theta_N - theta_1| - 1/(N-1); NaN if no change."""
    n = theta.shape[1]
    total = np.abs(theta[:, -1] - theta[:, 0])
    largest = np.abs(np.diff(theta, axis=1)).max(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, largest / total - 1 / (n - 1), np.nan)


def split_breakdown(s: Intervals, status: np.ndarray, mse: np.ndarray) -> dict:
    """Where the ends and the in-between ground truths of these intervals lie in the run's split."""
    names = {0: "unused", 1: "train", 2: "test"}
    ends = np.sort(status[s.rows[:, [0, -1]]], axis=1)  # (I, 2)
    end_counts: dict[str, int] = {}
    for a, b in ends:
        key = f"{names[a]}-{names[b]}"
        end_counts[key] = end_counts.get(key, 0) + 1
    inner = status[s.rows[:, 1:-1]]  # (I, k - 1)
    inner_mse = mse[:, 1:-1]
    by_truth = {}
    for code, name in names.items():
        chosen = inner == code
        if chosen.any():
            by_truth[name] = {"frames": int(chosen.sum()), "mse_mean": float(inner_mse[chosen].mean())}
    return {"ends": dict(sorted(end_counts.items())), "in_between_ground_truth": by_truth}


def evaluate_model(
    model,
    data: DatasetInfo,
    split: Split | None,
    config: EvalConfig,
    device: torch.device | str = "cpu",
    labels: list[int] | None = None,
    progress: Progress | None = None,
) -> dict:
    """All of the paper's interpolation measures for one model; a JSON-ready dict (see module docstring).

    `model` needs encode(x) -> z, decode(z) -> x in [0, 1] and interpolate(z_i, z_j, alpha); `split` says which
    images are train and test (None: all train); `labels` restricts the grid to those objects.
    """
    config.validate()
    device = torch.device(device)
    grid = find_grid(data, labels)
    status = split_status(split, data.n)
    plans: list[tuple[int, list[float]]] = []
    for i, axis in enumerate(grid.axes):
        lengths = axis_lengths(axis, config)
        if lengths:
            plans.append((i, lengths))
    if not plans:
        spans = ", ".join(f"'{a.name}' up to {a.longest_interval():g}" for a in grid.axes)
        raise UserError(
            f"no parameter holds intervals of --min-interval {config.min_interval:g} or more ({spans}); "
            "lower --min-interval"
        )
    sets: list[Intervals] = []
    largest: dict[int, int] = {}  # axis -> index in `sets` of its largest length
    for i, lengths in plans:
        for length in lengths:
            cap = config.max_intervals if length == lengths[-1] else config.curve_intervals
            sets.append(select_intervals(enumerate_intervals(grid, i, length), status, config.ends, cap))
        largest[i] = len(sets) - 1
    if all(len(sets[k].group) == 0 for k in largest.values()):
        raise UserError(
            f"no interval of the largest length has both ends in the {config.ends} split; "
            "use a shorter --interval or --ends all"
        )

    grid_rows = grid.rows
    position = np.full(data.n, -1, np.int64)
    position[grid_rows] = np.arange(len(grid_rows))
    group_of = np.searchsorted(grid.groups, data.labels[grid_rows])  # (M,)
    images = to_float(data.read_images(grid_rows), device)  # (M, 3, H, W)
    frames, frame_index = collect_frames(sets)
    frame_mse, nearest_pos = score_frames(model, images, group_of, frames, position, config.batch_size, progress)
    nearest_row = grid_rows[nearest_pos]

    recon = frame_mse[frames.source == frames.target]
    recon_rows = frames.source[frames.source == frames.target]
    result: dict = {
        "grid": {
            "axes": [{"name": a.name, "step": a.step, "values": len(a.values), "periodic": a.wraps} for a in grid.axes],
            "labels": [data.label_names[g] for g in grid.groups],
            "images": int(len(grid_rows)),
        },
        "config": {k: (str(v) if isinstance(v, StrEnum) else v) for k, v in asdict(config).items()},
        "frames_decoded": int(len(frames.source)),
        "reconstruction_mse": {
            name: float(recon[status[recon_rows] == code].mean())
            for code, name in ((1, "train"), (2, "test"))
            if (status[recon_rows] == code).any()
        },
        "axes": {},
    }
    for i, k in largest.items():
        per_length = {"length": [], "mse_mean": [], "intervals": []}
        for s, idx in zip(sets, frame_index, strict=True):
            if s.axis == i:
                per_length["length"].append(s.length)
                per_length["intervals"].append(int(len(s.group)))
                per_length["mse_mean"].append(float(frame_mse[idx][:, 1:-1].mean()) if len(s.group) else None)
        s = sets[k]
        entry: dict = {"largest_interval": s.length, "intervals": int(len(s.group)), "per_length": per_length}
        if len(s.group):
            entry |= measure_axis(grid, s, frame_mse[frame_index[k]], nearest_row[frame_index[k]], status)
        result["axes"][grid.axes[i].name] = entry
    result["summary"] = summarize([e for e in result["axes"].values() if "mse" in e])
    return result


def measure_axis(grid: Grid, s: Intervals, mse: np.ndarray, near: np.ndarray, status: np.ndarray) -> dict:
    """Per-alpha measures of the intervals `s`, from each frame's MSE (I, k + 1) and nearest dataset row (I, k + 1)."""
    alpha = np.arange(s.steps + 1) / s.steps
    theta = positions_along(grid, s, near)  # (I, k + 1) degrees from the source
    predicted = np.clip(theta / s.length, 0.0, 1.0)
    off_line = np.zeros(near.shape, bool)  # the nearest image should differ only along this interval's axis
    for j, other in enumerate(grid.axes):
        if j != s.axis:
            diff = param_difference(grid.params[near, other.column], grid.params[s.rows, other.column], other.period)
            off_line |= np.abs(diff) > GRID_TOLERANCE
    q25, median, q75 = np.percentile(predicted, [25, 50, 75], axis=0)  # (k + 1,) each
    smooth = acai_smoothness(theta)
    finite = np.isfinite(smooth).any()
    entry = {
        "alpha": alpha.tolist(),
        "mse": {"mean": mse.mean(0).tolist(), "std": mse.std(0).tolist()},
        "mse_in_between": float(mse[:, 1:-1].mean()),
        "alpha_retrieval": {
            "median": median.tolist(),
            "q25": q25.tolist(),
            "q75": q75.tolist(),
            "iqr": (q75 - q25).tolist(),
            "mean_iqr": float((q75 - q25).mean()),
            "mean_abs_error": float(np.abs(predicted - alpha).mean()),
            "off_line_fraction": float(off_line.mean()),
        },
        "smoothness": {
            "mean": float(np.nanmean(smooth)) if finite else None,
            "median": float(np.nanmedian(smooth)) if finite else None,
            "degenerate_fraction": float(np.isnan(smooth).mean()),
        },
        "split": split_breakdown(s, status, mse),
    }
    if len(grid.axes) >= 2:
        params = grid.params[near]  # (I, k + 1, P)
        source = np.linalg.norm(param_difference(grid.params[s.rows[:, :1]], params, grid.periods), axis=-1)
        target = np.linalg.norm(param_difference(grid.params[s.rows[:, -1:]], params, grid.periods), axis=-1)
        ideal_source, ideal_target = alpha * s.length, (1 - alpha) * s.length
        deviation = np.concatenate([source.mean(0) - ideal_source, target.mean(0) - ideal_target])
        entry["parameter_distance"] = {
            "source": source.mean(0).tolist(),
            "target": target.mean(0).tolist(),
            "ideal_source": ideal_source.tolist(),
            "ideal_target": ideal_target.tolist(),
            "rms_deviation": float(np.sqrt(np.mean(deviation**2))),
        }
    return entry


def summarize(entries: list[dict]) -> dict:
    """One number per measure over all axes, each axis weighted by its frames (or intervals) at the largest length."""
    intervals = np.array([e["intervals"] for e in entries], float)
    frames = intervals * [len(e["alpha"]) for e in entries]  # (A,) frames incl. the ends
    inner = intervals * [len(e["alpha"]) - 2 for e in entries]  # (A,) in-between frames
    smooth = [
        (e["smoothness"]["mean"], n * (1 - e["smoothness"]["degenerate_fraction"]))
        for e, n in zip(entries, intervals, strict=True)
    ]
    smooth = [(v, w) for v, w in smooth if v is not None]
    distance = [
        (e["parameter_distance"]["rms_deviation"], len(e["alpha"])) for e in entries if "parameter_distance" in e
    ]
    return {
        "interval_mse": float(np.average([e["mse_in_between"] for e in entries], weights=inner)),
        "alpha_iqr": float(np.average([e["alpha_retrieval"]["mean_iqr"] for e in entries], weights=frames)),
        "alpha_mean_abs_error": float(
            np.average([e["alpha_retrieval"]["mean_abs_error"] for e in entries], weights=frames)
        ),
        # RMS over the points of all curves: square, average with each curve's point count, take the root.
        "parameter_distance_rms": float(
            np.sqrt(np.average([r**2 for r, _ in distance], weights=[w for _, w in distance]))
        )
        if distance
        else None,
        "smoothness": float(np.average([v for v, _ in smooth], weights=[w for _, w in smooth])) if smooth else None,
    }


class PixelDissolve(torch.nn.Module):
    """The naive reference: latent = pixels, so an interpolation is a cross-dissolve of the two images."""

    def encode(self, x: Tensor) -> Tensor:
        self.shape = x.shape[1:]
        return x.flatten(1)

    def decode(self, z: Tensor) -> Tensor:
        return z.view(-1, *self.shape)

    @staticmethod
    def interpolate(z_i: Tensor, z_j: Tensor, alpha: Tensor) -> Tensor:
        return z_i + alpha[:, None] * (z_j - z_i)
