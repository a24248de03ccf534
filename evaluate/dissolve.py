"""The pixel cross-dissolve (the paper's figure 1, top row): the reference every interpolator must beat."""

from __future__ import annotations

import torch
from torch import Tensor


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
