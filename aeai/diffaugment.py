"""Differentiable augmentation for the discriminator (Zhao et al. 2020, "DiffAugment"): translation and cutout.

With a hundred or so training images D can memorise the real set and win outright. Augmenting what it sees,
real and fake alike and differentiably, so that the generator's gradient passes through, is their remedy for
small data. Colour jitter is left out on purpose: lighting is a factor of our datasets, and D should judge it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

TRANSLATION = 1 / 8  # largest shift, as a fraction of the side (theirs)
CUTOUT = 1 / 2  # side of the erased square, as a fraction of the image side (theirs)


def translate(x: Tensor, ratio: float = TRANSLATION) -> Tensor:
    """Shift each image (B, C, S, S) by up to `ratio` of its side in x and y, zero-filling what comes in."""
    b, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sy, sy + 1, (b, 1, 1), device=x.device)
    dx = torch.randint(-sx, sx + 1, (b, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device)[None, :, None] - dy  # (B, H, 1): the source row of each output row
    cols = torch.arange(w, device=x.device)[None, None, :] - dx  # (B, 1, W)
    padded = F.pad(x, (1, 1, 1, 1))  # index 0 and S + 1 are the zero border
    rows, cols = (rows.clamp(-1, h) + 1).expand(b, h, w), (cols.clamp(-1, w) + 1).expand(b, h, w)
    flat = padded.permute(0, 2, 3, 1)[torch.arange(b, device=x.device)[:, None, None], rows, cols]  # (B, H, W, C)
    return flat.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)


def cutout(x: Tensor, ratio: float = CUTOUT) -> Tensor:
    """Zero one square of `ratio` times the side at a random place in each image (B, C, S, S)."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    y0 = torch.randint(0, h + 1 - ch, (b, 1, 1), device=x.device)
    x0 = torch.randint(0, w + 1 - cw, (b, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device)[None, :, None]
    cols = torch.arange(w, device=x.device)[None, None, :]
    inside = (rows >= y0) & (rows < y0 + ch) & (cols >= x0) & (cols < x0 + cw)  # (B, H, W)
    return x * (~inside)[:, None].to(x.dtype)


def diff_augment(x: Tensor) -> Tensor:
    """Translation then cutout, drawn independently per image; differentiable in x."""
    return cutout(translate(x))
