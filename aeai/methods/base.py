"""What a method is to the trainer: the shared autoencoder, its extra networks, optimizers and one training step."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from toolkit.aeai.config import DEFAULT_LRS, TrainConfig
from toolkit.aeai.losses import PerceptualLoss, squared_error
from toolkit.aeai.nets import Autoencoder


def bce(logits: Tensor, target: float) -> Tensor:
    """Mean sigmoid cross-entropy of logits (N,) against one label for all (1 real, 0 fake)."""
    logits = logits.float()
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def adam(network: nn.Module, lr: float, **options) -> torch.optim.Adam:
    """Adam for one network, fused: one kernel for all its parameters (on 2 CPU cores 1 ms a step, not 9)."""
    return torch.optim.Adam(network.parameters(), lr=lr, fused=True, **options)


class Method(nn.Module):
    """A training method: `model` is the autoencoder every method shares, `extras` its other networks.

    The trainer owns devices, AMP, checkpoints and logging; a method only says how one batch updates its
    networks. `training_step` returns detached 0-d tensors (one per logged term) so that the trainer can
    accumulate them on the device and synchronise once in a while, not every step.
    """

    name: ClassVar[str]
    default_lr: ClassVar[float] = DEFAULT_LRS["aeai"]  # Adam rate when --lr is not given (the toolkit's AEAI setting)

    def __init__(self, config: TrainConfig, image_size: int) -> None:
        super().__init__()
        self.config = config
        self.model = self.build_model(config, image_size)
        self.perceptual = PerceptualLoss(config.perceptual) if config.perceptual else None
        # The trainer swaps in bf16 autocast on CUDA; a plain attribute, so it is not part of the state.
        self.autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext

    @classmethod
    def build_model(cls, config: TrainConfig, image_size: int) -> nn.Module:
        """The network `load_run` rebuilds from a saved config (encode, decode, interpolate)."""
        return Autoencoder(image_size, config.latent, config.width)

    @property
    def extras(self) -> dict[str, nn.Module]:
        """Networks besides the autoencoder that are trained and checkpointed (a discriminator, ...)."""
        return {}

    def training_state(self) -> dict:
        """What a resumed run continues from besides weights and optimizers (tensors by name); most have none."""
        return {}

    def load_training_state(self, state: dict) -> None:
        """Restore what `training_state` returned."""

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One optimizer per independently updated network, by name (their states go into checkpoints)."""
        return {"model": adam(self.model, self.config.lr)}

    def reconstruction_error(self, x: Tensor, x_hat: Tensor) -> Tensor:
        """Per-image reconstruction loss (B,): L2 by default, the perceptual loss when configured."""
        if self.perceptual is not None:
            return self.perceptual(x.float(), x_hat.float())
        return squared_error(x, x_hat)

    def mean_reconstruction_error(self, x: Tensor, x_hat: Tensor) -> Tensor:
        """The per-pixel mean of `reconstruction_error` over the batch: MSE for L2, as the baselines' authors use."""
        # Their weights (ACAI's 0.5, AAE's 1) balance a mean over pixels; the toolkit's L2 sums over them.
        return self.reconstruction_error(x, x_hat).mean() / x[0].numel()

    def update(self, optimizers: dict[str, torch.optim.Optimizer], losses: dict[str, Tensor]) -> None:
        """Backpropagate each loss into its own network only ("model" or an extra's name), then step them all."""
        # Every gradient before any step: the adversary's loss must judge the autoencoder that produced its
        # inputs, and `inputs=` keeps one network's loss from reaching the other's parameters (no detach needed).
        networks = {"model": self.model, **self.extras}
        for name in losses:
            optimizers[name].zero_grad(set_to_none=True)
        last = len(losses) - 1
        for k, (name, loss) in enumerate(losses.items()):
            loss.backward(inputs=list(networks[name].parameters()), retain_graph=k < last)
        for name in losses:
            optimizers[name].step()

    def training_step(self, x: Tensor, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, Tensor]:
        """Update the networks on one batch of images (B, 3, S, S) in [0, 1]; return the logged terms."""
        raise NotImplementedError
