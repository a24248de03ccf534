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
import warnings
from dataclasses import asdict
from enum import StrEnum

import numpy as np
import torch
from torch import Tensor

from toolkit.datasets import DatasetInfo, Split
from toolkit.datasets.params import param_difference
from toolkit.datasets.torch_dataset import to_float
from toolkit.errors import UserError
from toolkit.evaluate.config import ENDS_MEANING, EvalConfig
from toolkit.evaluate.grid import (
    GRID_TOLERANCE,
    Frames,
    Grid,
    Intervals,
    axis_lengths,
    collect_frames,
    enumerate_intervals,
    find_grid,
    held_length,
    select_intervals,
    split_status,
)
from toolkit.progress import Progress


class GroundTruth:
    """The perfect interpolator as a reference row: every frame is the true image at its alpha. It scores the
    floor of each measure that the dataset itself allows (retrieval can still miss between identical views)."""


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
    perfect = isinstance(model, GroundTruth)
    codes = []
    for start in range(0, 0 if perfect else len(images), batch_size):
        codes.append(model.encode(images[start : start + batch_size]))
        if progress:
            progress(start + len(codes[-1]), total)
    z = torch.cat(codes) if codes else flat  # (M, latent)
    mse = np.zeros(len(frames.source))
    nearest = np.zeros(len(frames.source), np.int64)
    src_pos, tgt_pos, truth_pos = position[frames.source], position[frames.target], position[frames.truth]
    order = np.argsort(group_of[src_pos], kind="stable")  # one label group per batch, mostly
    done = len(images)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        s, t = torch.from_numpy(src_pos[idx]).to(device), torch.from_numpy(tgt_pos[idx]).to(device)
        alpha = torch.from_numpy(frames.alpha[idx]).to(device=device, dtype=z.dtype)  # (B,)
        truth = flat[torch.from_numpy(truth_pos[idx]).to(device)]  # (B, D)
        decoded = truth if perfect else model.decode(model.interpolate(z[s], z[t], alpha)).flatten(1).float()
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

    `model` needs encode(x) -> z, decode(z) -> x in [0, 1] and interpolate(z_i, z_j, alpha), or is `GroundTruth()`;
    `split` says which images are train and test (None: all train); `labels` restricts the grid to those objects.
    """
    config.validate()
    device = torch.device(device)
    grid = find_grid(data, labels)
    status = split_status(split, data.n)
    plans: list[tuple[int, list[float], float]] = []  # (axis, per-length curve lengths, retrieval length)
    for i, axis in enumerate(grid.axes):
        lengths = axis_lengths(axis, config)
        if lengths:
            plans.append((i, lengths, held_length(axis, config.retrieval_interval, "--retrieval-interval")))
    if not plans:
        spans = ", ".join(f"'{a.name}' up to {a.longest_interval():g}" for a in grid.axes)
        raise UserError(
            f"no parameter holds intervals of --min-interval {config.min_interval:g} or more ({spans}); "
            "lower --min-interval"
        )
    sets: list[Intervals] = []
    largest: dict[int, int] = {}  # axis -> index in `sets` of its largest length
    retrieval: dict[int, int] = {}  # axis -> index in `sets` of its retrieval length
    for i, lengths, retrieval_length in plans:
        for length in sorted({*lengths, retrieval_length}):
            full = length in (lengths[-1], retrieval_length)
            cap = config.max_intervals if full else config.curve_intervals
            sets.append(select_intervals(enumerate_intervals(grid, i, length), status, config.ends, cap))
            if length == lengths[-1]:
                largest[i] = len(sets) - 1
            if length == retrieval_length:
                retrieval[i] = len(sets) - 1
    if all(len(sets[k].group) == 0 for k in largest.values()):
        raise UserError(
            f"no interval of the largest length is allowed by --ends {config.ends} ({ENDS_MEANING[config.ends]}); "
            "use a shorter --interval, --ends all, or for --ends test a run trained with --split arc"
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
        "ends_meaning": ENDS_MEANING[config.ends],
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
            if s.axis == i and s.length <= sets[k].length:
                per_length["length"].append(s.length)
                per_length["intervals"].append(int(len(s.group)))
                per_length["mse_mean"].append(float(frame_mse[idx][:, 1:-1].mean()) if len(s.group) else None)
        s = sets[k]
        entry: dict = {"largest_interval": s.length, "intervals": int(len(s.group)), "per_length": per_length}
        if len(s.group):
            entry |= measure_axis(grid, s, frame_mse[frame_index[k]], nearest_row[frame_index[k]], status)
        r = sets[retrieval[i]]
        if len(r.group):
            entry["alpha_retrieval"] = measure_retrieval(grid, r, nearest_row[frame_index[retrieval[i]]])
        result["axes"][grid.axes[i].name] = entry
    result["summary"] = summarize(list(result["axes"].values()))
    return result


def measure_axis(grid: Grid, s: Intervals, mse: np.ndarray, near: np.ndarray, status: np.ndarray) -> dict:
    """Per-alpha MSE and parameter distance of the intervals `s`, from each frame's MSE (I, k + 1) and nearest
    dataset row (I, k + 1)."""
    alpha = np.arange(s.steps + 1) / s.steps
    entry = {
        "alpha": alpha.tolist(),
        "mse": {"mean": mse.mean(0).tolist(), "std": mse.std(0).tolist()},
        "mse_in_between": float(mse[:, 1:-1].mean()),
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


def measure_retrieval(grid: Grid, s: Intervals, near: np.ndarray) -> dict:
    """Alpha retrieval (figure 7) and ACAI's smoothness on the intervals `s` from each frame's nearest row (I, k + 1).

    A nearest image off the interval (beyond either end, or elsewhere along another parameter) predicts no
    alpha: it is counted per alpha as off the interval, not clipped to 0 or 1, and the median and IQR are over
    the retrievals that land on the interval.
    """
    alpha = np.arange(s.steps + 1) / s.steps
    theta = positions_along(grid, s, near)  # (I, k + 1) degrees from the source
    on = (theta >= -GRID_TOLERANCE) & (theta <= s.length + GRID_TOLERANCE)
    for j, other in enumerate(grid.axes):
        if j != s.axis:  # the nearest image should differ only along this interval's axis
            diff = param_difference(grid.params[near, other.column], grid.params[s.rows, other.column], other.period)
            on &= np.abs(diff) <= GRID_TOLERANCE
    predicted = np.where(on, theta / s.length, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an alpha whose retrievals all fell off: NaN, reported
        q25, median, q75 = np.nanpercentile(predicted, [25, 50, 75], axis=0)  # (k + 1,) each
        iqr = q75 - q25
        smooth = acai_smoothness(theta)
        finite = np.isfinite(smooth).any()
        return {
            "interval": s.length,
            "intervals": int(len(s.group)),
            "alpha": alpha.tolist(),
            "median": median.tolist(),
            "q25": q25.tolist(),
            "q75": q75.tolist(),
            "iqr": iqr.tolist(),
            "off_interval": (1 - on.mean(0)).tolist(),
            "mean_iqr": float(np.nanmean(iqr)) if np.isfinite(iqr).any() else None,
            "mean_abs_error": float(np.nanmean(np.abs(predicted - alpha))) if on.any() else None,
            "off_interval_fraction": float(1 - on.mean()),
            "smoothness": {
                "mean": float(np.nanmean(smooth)) if finite else None,
                "median": float(np.nanmedian(smooth)) if finite else None,
                "degenerate_fraction": float(np.isnan(smooth).mean()),
            },
        }


def _weighted(pairs: list[tuple[float | None, float]]) -> float | None:
    """The weighted mean of the values that exist; None when none does."""
    pairs = [(v, w) for v, w in pairs if v is not None and w > 0]
    return float(np.average([v for v, _ in pairs], weights=[w for _, w in pairs])) if pairs else None


def summarize(entries: list[dict]) -> dict:
    """One number per measure over all axes: the MSE measures weighted by each axis' frames at the largest
    length, the retrieval measures by its frames at the retrieval length."""
    mse = [e for e in entries if "mse" in e]
    retrieved = [e["alpha_retrieval"] for e in entries if "alpha_retrieval" in e]
    frames = [r["intervals"] * len(r["alpha"]) for r in retrieved]  # retrieval frames incl. the ends
    on = [n * (1 - r["off_interval_fraction"]) for r, n in zip(retrieved, frames, strict=True)]
    distance = [(e["parameter_distance"]["rms_deviation"], len(e["alpha"])) for e in mse if "parameter_distance" in e]
    rms = _weighted([(r**2, w) for r, w in distance])
    return {
        "interval_mse": _weighted([(e["mse_in_between"], e["intervals"] * (len(e["alpha"]) - 2)) for e in mse]),
        "alpha_iqr": _weighted([(r["mean_iqr"], w) for r, w in zip(retrieved, on, strict=True)]),
        "alpha_mean_abs_error": _weighted([(r["mean_abs_error"], w) for r, w in zip(retrieved, on, strict=True)]),
        "alpha_off_interval": _weighted(
            [(r["off_interval_fraction"], w) for r, w in zip(retrieved, frames, strict=True)]
        ),
        # RMS over the points of all curves: square, average with each curve's point count, take the root.
        "parameter_distance_rms": None if rms is None else float(np.sqrt(rms)),
        "smoothness": _weighted(
            [
                (r["smoothness"]["mean"], r["intervals"] * (1 - r["smoothness"]["degenerate_fraction"]))
                for r in retrieved
            ]
        ),
    }
