"""Pictures of interpolation: strips, bilinear grids and GIFs, decoded with any model that has encode /
decode / interpolate, with the pixel cross-dissolve beside it when asked (the paper's figure 1).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from toolkit.datasets.params import param_difference
from toolkit.datasets.torch_dataset import to_float, to_uint8
from toolkit.errors import UserError
from toolkit.evaluate.dissolve import PixelDissolve
from toolkit.files import atomic_write


def example_pairs(loaded, dataset, n: int, gap: float):
    """Up to n pairs (n, 2) of test images of one object about `gap` apart, spread over the test split."""
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


def interpolation_rows(
    models: list[tuple[str, object]], first: np.ndarray, second: np.ndarray, alphas: np.ndarray, device, dissolve: bool
) -> list[tuple[str, np.ndarray]]:
    """Named rows of frames (n, S, H, W, 3) for `strip_image`: one per model, then the pixel dissolve if asked."""
    rows = [(name, decode_pairs(model, first, second, alphas, device)) for name, model in models]
    if dissolve:
        rows.append(("dissolve", dissolve_pairs(first, second, alphas)))
    return rows


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
