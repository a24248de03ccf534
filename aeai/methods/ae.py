"""The plain autoencoder: reconstruction only, the reference every interpolation regulariser must beat."""

from __future__ import annotations

import torch
from torch import Tensor

from toolkit.aeai.config import DEFAULT_LRS
from toolkit.aeai.methods.base import Method


class PlainAE(Method):
    """L = mean over images of L(x, g(f(x))); no pairs, no interpolation during training."""

    name = "ae"
    default_lr = DEFAULT_LRS["ae"]  # the same as AEAI's: the reference it must beat, trained alike

    def training_step(self, x: Tensor, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, Tensor]:
        with self.autocast():
            x_hat = self.model(x)
        loss = self.reconstruction_error(x, x_hat).mean()
        opt = optimizers["model"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.detach(), "L_R": loss.detach()}
