"""Differentiable augmentation for the discriminator (Zhao et al. 2020, "DiffAugment"): translation and cutout.

With a hundred or so training images D can memorise the real set and win outright. Augmenting what it sees,
real and fake alike and differentiably, so that the generator's gradient passes through, is their remedy for
small data. Colour jitter is left out on purpose: lighting is a factor of our datasets, and D should judge it.

Each augmentation is applied to an image with probability p (Karras et al. 2020, "ADA"): p = 1 is DiffAugment,
and `AdaptiveProbability` moves p so that D's overfitting heuristic r_t = E[sign D(real)] stays at a target.
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


def maybe(augmented: Tensor, x: Tensor, p: float | Tensor) -> Tensor:
    """`augmented` for a random share p (a number or a 0-d tensor) of the images (B, C, S, S), `x` for the others."""
    if isinstance(p, float) and p >= 1:
        return augmented
    chosen = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < p
    return torch.where(chosen, augmented, x)


def diff_augment(x: Tensor, p: float | Tensor = 1.0) -> Tensor:
    """Translation then cutout, each applied with probability p, drawn independently per image; differentiable."""
    if isinstance(p, float) and p <= 0:
        return x
    shifted = maybe(translate(x), x, p)
    return maybe(cutout(shifted), shifted, p)


ADA_IMAGES = 5000  # real images seen while p can move by 1: a tenth of the pole's 120-epoch run (ADA: 500k of 25M)


class AdaptiveProbability:
    """ADA's controller: after each D step p moves by +-(batch / ADA_IMAGES), up while r_t > target, down below.

    r_t = E[sign D(real)] is 1 for a D that calls every real image real, 0 at chance; ADA's authors hold it at
    0.6. p is a 0-d tensor on the training device, so that no step waits for it; a checkpoint saves it.
    """

    def __init__(self, target: float) -> None:
        self.target = target
        self.p = torch.zeros(())

    def update(self, logits_real: Tensor) -> None:
        r_t = logits_real.detach().float().sign().mean()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # Every rank moves p alike: by the mean over all the ranks' real images.
            torch.distributed.all_reduce(r_t)
            r_t = r_t / torch.distributed.get_world_size()
        step = logits_real.shape[0] / ADA_IMAGES
        self.p = (self.p.to(r_t.device) + step * torch.sign(r_t - self.target)).clamp(0.0, 1.0)
