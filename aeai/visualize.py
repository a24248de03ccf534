"""Pictures of interpolation: the paper's figures 6-8 from `evaluate` results, and strips, grids and GIFs.

Plots take a list of (name, result) pairs, `result` being what `metrics.evaluate_model` returns, and draw all
runs into the same axes so methods compare at a glance. Strips, grids and GIFs decode with any model that
has encode / decode / interpolate, and can show the pixel cross-dissolve beside it (the paper's figure 1).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window: works headless and in worker processes
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from toolkit.aeai.metrics import PixelDissolve  # noqa: E402
from toolkit.datasets.torch_dataset import to_float, to_uint8  # noqa: E402
from toolkit.errors import UserError  # noqa: E402
from toolkit.files import atomic_write  # noqa: E402

Results = list[tuple[str, dict]]
MARKERS = ["o", "v", "s", "*", "P", "D", "X", "^"]
LINESTYLES = ["-", "--", ":", "-."]  # one per parameter axis
IQR_COLOR = "#fdbf8f"  # the paper's orange band


def _clean(value):
    """NaN and infinities become null: JSON has no spelling for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value


def save_report(report: dict, path: Path) -> Path:
    """Write `report` as indented JSON, atomically."""
    path = Path(path)
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(_clean(report), indent=1))
    return path


def _save(fig: plt.Figure, path: Path) -> Path:
    path = Path(path)
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def _axes_with(results: Results, key: str) -> list[str]:
    """Parameter axes (in first-seen order) for which some run has `key`."""
    names: list[str] = []
    for _, result in results:
        for axis, entry in result["axes"].items():
            if key in entry and axis not in names:
                names.append(axis)
    return names


def plot_interval_mse(results: Results, path: Path) -> Path:
    """Figure 6: MSE mean and std per alpha at the largest interval, and mean MSE per interval length."""
    axes_names = _axes_with(results, "mse")
    fig = plt.figure(figsize=(13, 12))
    grid = fig.add_gridspec(2, 2)
    mean_ax, std_ax, length_ax = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[1, :])
    for k, (name, result) in enumerate(results):
        color, marker = f"C{k % 10}", MARKERS[k % len(MARKERS)]
        for j, axis in enumerate(axes_names):
            entry = result["axes"].get(axis, {})
            label = f"{name} ({axis})" if len(axes_names) > 1 else name
            style = {"color": color, "marker": marker, "linestyle": LINESTYLES[j % 4], "linewidth": 2.5}
            if "mse" in entry:
                mean_ax.plot(entry["alpha"], entry["mse"]["mean"], label=label, **style)
                std_ax.plot(entry["alpha"], entry["mse"]["std"], label=label, **style)
            curve = entry.get("per_length")
            if curve:
                y = [np.nan if v is None else v for v in curve["mse_mean"]]
                length_ax.plot(curve["length"], y, label=label, **style)
    for ax, title, xlabel, ylabel in (
        (mean_ax, "MSE-MEAN vs Alpha", "Alpha", "MSE (Mean)"),
        (std_ax, "MSE-STD vs Alpha", "Alpha", "MSE (STD)"),
        (length_ax, "MSE-MEAN vs Interval Size", "Interval Size (Degrees)", "Average MSE"),
    ):
        ax.set_title(title, fontsize=16)
        ax.set_xlabel(xlabel, fontsize=13)
        ax.set_ylabel(ylabel, fontsize=13)
        ax.grid(alpha=0.3)
    for ax in (mean_ax, std_ax, length_ax):
        values = np.concatenate([line.get_ydata() for line in ax.get_lines()] or [np.zeros(0)]).astype(float)
        values = values[np.isfinite(values) & (values > 0)]
        if len(values) and values.max() > 20 * values.min():
            ax.set_yscale("log")  # a failed run 100x above the others would flatten them all on a linear axis
    entries = len(length_ax.get_lines())
    # Many runs (a reproduction: 10 methods x 2 parameters): the legend goes beside the curves, not over them.
    if entries > 8:
        length_ax.legend(fontsize=10, ncols=2, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        length_ax.legend(fontsize=12)
    return _save(fig, path)


def plot_alpha_retrieval(results: Results, path: Path) -> Path:
    """Figure 7: median predicted alpha with its interquartile band, one panel per run and parameter."""
    axes_names = _axes_with(results, "alpha_retrieval")
    rows, cols = len(results), len(axes_names)
    fig, panels = plt.subplots(rows, cols, figsize=(6 * cols, 5 * rows), squeeze=False)
    for r, (name, result) in enumerate(results):
        for c, axis in enumerate(axes_names):
            ax = panels[r, c]
            entry = result["axes"].get(axis, {})
            ax.set_title(f"{name} ({axis})" if cols > 1 else name, fontsize=15)
            ax.plot([0, 1], [0, 1], color="red", linewidth=1.2, label="Perfect alpha prediction")
            if "alpha_retrieval" in entry:
                retrieval = entry["alpha_retrieval"]
                ax.fill_between(entry["alpha"], retrieval["q25"], retrieval["q75"], color=IQR_COLOR, label="IQR")
                ax.scatter(entry["alpha"], retrieval["median"], color="C0", zorder=3, label="Predicted median alpha")
                ax.text(0.02, 0.92, f"mean IQR {retrieval['mean_iqr']:.3f}", transform=ax.transAxes)
            ax.set_xlim(-0.1, 1.1)
            ax.set_ylim(-0.1, 1.1)
            ax.set_xlabel("True Alpha", fontsize=13)
            ax.set_ylabel("Predicted Alpha", fontsize=13)
    panels[0, -1].legend(loc="lower right", fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def plot_parameter_distance(results: Results, path: Path) -> Path | None:
    """Figure 8: parameter distance of each frame's nearest image to source and target; None without it."""
    axes_names = _axes_with(results, "parameter_distance")
    if not axes_names:
        return None
    rows, cols = len(results), len(axes_names)
    fig, panels = plt.subplots(rows, cols, figsize=(6 * cols, 4.5 * rows), squeeze=False)
    for r, (name, result) in enumerate(results):
        for c, axis in enumerate(axes_names):
            ax = panels[r, c]
            entry = result["axes"].get(axis, {})
            ax.set_title(f"{name} ({axis})", fontsize=15)
            if "parameter_distance" not in entry:
                continue
            dist, alpha = entry["parameter_distance"], entry["alpha"]
            ax.plot(alpha, dist["ideal_source"], "r:", linewidth=2, label="Perfect interpolation smoothness")
            ax.plot(alpha, dist["ideal_target"], "r:", linewidth=2)
            ax.plot(alpha, dist["source"], color="C0", linewidth=2.5, label="Distance from source")
            ax.plot(alpha, dist["target"], color="C1", linewidth=2.5, label="Distance from target")
            ax.text(0.35, 0.03, f"RMS deviation {dist['rms_deviation']:.2f}", transform=ax.transAxes)
            ax.set_xlabel("Alpha", fontsize=13)
            ax.set_ylabel("L2 Parameter Distance", fontsize=13)
    panels[0, -1].legend(loc="center right", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_all(results: Results, out_dir: Path) -> list[Path]:
    """Every plot for these runs into `out_dir`; returns the files written."""
    out_dir = Path(out_dir)
    written = [
        plot_interval_mse(results, out_dir / "interval_mse.png"),
        plot_alpha_retrieval(results, out_dir / "alpha_retrieval.png"),
        plot_parameter_distance(results, out_dir / "parameter_distance.png"),
    ]
    return [p for p in written if p is not None]


def example_pairs(loaded, dataset, n: int, gap: float):
    """Up to n pairs (n, 2) of test images of one object about `gap` apart, spread over the test split."""
    from toolkit.augment.sampling import param_difference

    rows = loaded.split.test
    if loaded.label is not None:
        rows = rows[dataset.labels[rows] == loaded.label]
    if len(rows) < 2:
        raise UserError("the run's test split holds fewer than 2 images of its object; give --pair I J")
    i, j = np.meshgrid(rows, rows, indexing="ij")
    i, j = i.ravel(), j.ravel()
    diff = param_difference(dataset.params[i], dataset.params[j], dataset.periods)  # (K, P)
    # One direction per pair: the one moving forward along its largest parameter change.
    largest = diff[np.arange(len(diff)), np.abs(diff).argmax(1)]
    keep = (dataset.labels[i] == dataset.labels[j]) & (i != j) & (largest > 0)
    if not keep.any():
        raise UserError("no two test images of the same object differ in their parameters; give --pair I J")
    size = np.abs(diff[keep])  # (K, P)
    # Closest to `gap` along one parameter, with the others as equal as possible: a clean interval.
    miss = np.abs(size.max(1) - gap) + (size.sum(1) - size.max(1))
    i, j = i[keep], j[keep]
    best = miss <= miss.min() + 1e-6
    candidates = np.stack([i[best], j[best]], axis=1)
    chosen = np.unique(np.linspace(0, len(candidates) - 1, min(n, len(candidates))).round().astype(int))
    return candidates[chosen]


@torch.inference_mode()
def decode_pairs(model, first: np.ndarray, second: np.ndarray, alphas: np.ndarray, device) -> np.ndarray:
    """Decoded interpolations: uint8 (n, H, W, 3) pairs and S alphas -> uint8 (n, S, H, W, 3)."""
    z = model.encode(to_float(np.concatenate([first, second]), torch.device(device)))
    z_i, z_j = z[: len(first)], z[len(first) :]  # (n, latent) each
    n, s = len(first), len(alphas)
    alpha = torch.as_tensor(np.tile(alphas, n), dtype=z.dtype, device=z.device)  # (n * S,)
    frames = model.decode(model.interpolate(z_i.repeat_interleave(s, 0), z_j.repeat_interleave(s, 0), alpha))
    return to_uint8(frames).reshape(n, s, *first.shape[1:])


@torch.inference_mode()
def decode_bilinear(model, corners: np.ndarray, steps: int, device) -> np.ndarray:
    """Bilinear latent interpolation of corners (top-left, top-right, bottom-left, bottom-right): (S, S, H, W, 3)."""
    z = model.encode(to_float(corners, torch.device(device)))  # (4, latent)
    u = torch.linspace(0, 1, steps, dtype=z.dtype, device=z.device)
    uu = u.repeat(steps)  # (S * S,) column weight, varies fastest
    vv = u.repeat_interleave(steps)  # (S * S,) row weight
    n = steps * steps
    top = model.interpolate(z[0:1].expand(n, -1), z[1:2].expand(n, -1), uu)
    bottom = model.interpolate(z[2:3].expand(n, -1), z[3:4].expand(n, -1), uu)
    frames = model.decode(model.interpolate(top, bottom, vv))
    return to_uint8(frames).reshape(steps, steps, *corners.shape[1:])


def _upscale(image: np.ndarray, scale: int) -> np.ndarray:
    return image.repeat(scale, axis=0).repeat(scale, axis=1) if scale > 1 else image


def strip_image(
    first: np.ndarray,
    second: np.ndarray,
    rows: list[tuple[str, np.ndarray]],
    scale: int = 1,
    gap: int = 4,
) -> Image.Image:
    """One block per pair: the real source, each named row of frames (n, S, H, W, 3), the real target."""
    n, size = len(first), first.shape[1]
    cell = size * scale
    label_width = 8 * max(len(name) for name, _ in rows) + 8 if len(rows) > 1 else 0
    steps = rows[0][1].shape[1]
    width = label_width + (steps + 2) * (cell + gap) + 2 * gap
    block = len(rows) * (cell + gap) + 2 * gap
    canvas = Image.new("RGB", (width, n * block), "white")
    draw = ImageDraw.Draw(canvas)
    for p in range(n):
        top = p * block + gap
        for r, (name, frames) in enumerate(rows):
            y = top + r * (cell + gap)
            if label_width:
                draw.text((4, y + cell // 2 - 6), name, fill="black")
            cells = [first[p], *frames[p], second[p]]
            for c, image in enumerate(cells):
                # Real images sit apart from the decoded frames by an extra gap.
                x = label_width + c * (cell + gap) + (gap if c > 0 else 0) + (gap if c == len(cells) - 1 else 0)
                canvas.paste(Image.fromarray(_upscale(image, scale)), (x, y))
    return canvas


def grid_image(blocks: list[np.ndarray], corners: np.ndarray, scale: int = 1, gap: int = 2) -> Image.Image:
    """Blocks (S, S, H, W, 3) side by side, the real corner images in each block's corners (paper's appendix)."""
    steps, size = blocks[0].shape[0], blocks[0].shape[2]
    cell = size * scale
    side = steps * (cell + gap)
    canvas = Image.new("RGB", (len(blocks) * (side + 4 * gap), side), "white")
    for b, frames in enumerate(blocks):
        frames = frames.copy()
        for (r, c), image in zip(((0, 0), (0, -1), (-1, 0), (-1, -1)), corners, strict=True):
            frames[r, c] = image
        for r in range(steps):
            for c in range(steps):
                xy = (b * (side + 4 * gap) + c * (cell + gap), r * (cell + gap))
                canvas.paste(Image.fromarray(_upscale(frames[r, c], scale)), xy)
    return canvas


def gif_frames(frames: np.ndarray, scale: int = 1) -> list[Image.Image]:
    """Frames (S, H, W, 3) from alpha 0 to 1 -> an animation there and back, without repeating the ends."""
    order = list(range(len(frames))) + list(range(len(frames) - 2, 0, -1))
    return [Image.fromarray(_upscale(frames[k], scale)) for k in order]


def save_image(image: Image.Image, path: Path) -> Path:
    """PNG (or anything PIL knows from the suffix), written atomically."""
    path = Path(path)
    with atomic_write(path) as tmp:
        image.save(tmp, format=Image.registered_extensions().get(path.suffix.lower(), "PNG"))
    return path


def save_gif(frames: list[Image.Image], path: Path, frame_ms: int = 80) -> Path:
    """An endlessly looping animated GIF, written atomically."""
    path = Path(path)
    with atomic_write(path) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=frame_ms, loop=0)
    return path


def dissolve_pairs(first: np.ndarray, second: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """The pixel-space cross-dissolve of each pair: uint8 (n, S, H, W, 3)."""
    return decode_pairs(PixelDissolve(), first, second, alphas, "cpu")


def dissolve_bilinear(corners: np.ndarray, steps: int) -> np.ndarray:
    """The pixel-space bilinear blend of 4 corners: uint8 (S, S, H, W, 3)."""
    return decode_bilinear(PixelDissolve(), corners, steps, "cpu")
