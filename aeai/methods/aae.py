"""AAE: Makhzani, Shlens, Jaitly, Goodfellow & Frey (2015), "Adversarial Autoencoders"; followed: the version in
the ACAI authors' code, brain-research/acai, aae.py (TF, 2018), which the AEAI paper's comparison also follows.

A discriminator on codes tells prior samples N(0, I) from the encoder's codes; the encoder learns to fool it:

  L_D  = BCE(D(z_p), 1) + BCE(D(z), 0),  z_p ~ N(0, I)
  L_AE = MSE(x, g(z)) + BCE(D(z), 1)

D is an MLP on z (two hidden layers of 100, leaky ReLU 0.2 as tf.nn.leaky_relu, one logit). Adam 1e-4 for
both. Interpolation is between the deterministic codes, as for the plain autoencoder.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from toolkit.aeai.config import DEFAULT_LRS, TrainConfig
from toolkit.aeai.methods.base import Method, adam, bce

HIDDEN = (100, 100)  # aae.py, disc_layer_sizes


class LatentDiscriminator(nn.Module):
    """Codes (B, latent) -> one logit each (B,)."""

    def __init__(self, latent: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        n_in = latent
        for n in HIDDEN:
            layers += [nn.Linear(n_in, n), nn.LeakyReLU(0.2)]
            n_in = n
        self.net = nn.Sequential(*layers, nn.Linear(n_in, 1))

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).squeeze(1)


class AAE(Method):
    """Adversarial autoencoder with a Gaussian prior on the codes (see the module doc for the losses)."""

    name = "aae"
    default_lr = DEFAULT_LRS["aae"]  # 1e-4: aae.py: FLAGS.lr and adversary_lr

    def __init__(self, config: TrainConfig, image_size: int) -> None:
        super().__init__(config, image_size)
        self.discriminator = LatentDiscriminator(config.latent)

    @property
    def extras(self) -> dict[str, nn.Module]:
        return {"discriminator": self.discriminator}

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        d = adam(self.discriminator, lr=self.config.lr)
        return super().configure_optimizers() | {"discriminator": d}

    def losses(self, x: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """The logged terms and the tensors they came from (z, z_p, g(z))."""
        z = self.model.encode(x)  # (B, latent)
        x_hat = self.model.decode(z)  # (B, 3, S, S)
        z_p = torch.randn_like(z)  # (B, latent): the prior, as many samples as codes
        logits = self.discriminator(torch.cat([z_p, z]).float())  # (2B,)
        real, fake = logits[: x.shape[0]], logits[x.shape[0] :]
        mse = self.mean_reconstruction_error(x, x_hat)
        fool = bce(fake, 1.0)
        terms = {
            "L_AE": mse + fool,
            "L_R": mse,
            "L_AE_adv": fool,
            "D_loss": bce(real, 1.0) + bce(fake, 0.0),
            "D_acc": ((real.detach() > 0).float().mean() + (fake.detach() < 0).float().mean()) / 2,
        }
        return terms, {"z": z, "z_prior": z_p, "x_hat": x_hat}

    def training_step(self, x: Tensor, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, Tensor]:
        with self.autocast():
            terms, _ = self.losses(x)
        self.update(optimizers, {"model": terms["L_AE"], "discriminator": terms["D_loss"]})
        return {"loss": terms["L_AE"].detach(), **{name: value.detach() for name, value in terms.items()}}
