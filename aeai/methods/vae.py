"""beta-VAE: Higgins et al. (2016), "beta-VAE: Learning Basic Visual Concepts with a Constrained Variational
Framework"; followed: the paper's objective with a Gaussian decoder, as 1Konny/Beta-VAE (PyTorch) writes it
(reconstruction summed over pixels, KL summed over latent dimensions, both averaged over the batch).

  (mu, log sigma^2) = f(x), z = mu + sigma eps, eps ~ N(0, I)
  L = mean over images of [ ||x - g(z)||^2 + beta KL(N(mu, sigma^2) || N(0, I)) ],  beta = 4 by default

Summing both terms keeps beta what the paper means: a mean reconstruction against a summed KL would divide
the reconstruction's weight by the pixel count (12288 at 64x64) and silently rescale beta with it. The
encoder's last layer holds both heads; `encode` returns the posterior mean, which is what is interpolated.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from toolkit.aeai.config import DEFAULT_LRS, TrainConfig
from toolkit.aeai.methods.base import Method
from toolkit.aeai.nets import Autoencoder, Encoder


class GaussianAutoencoder(Autoencoder):
    """The shared autoencoder with a Gaussian posterior: `encode` is its mean, `posterior` gives (mu, log sigma^2)."""

    def __init__(self, image_size: int, latent: int = 256, width: int = 16) -> None:
        super().__init__(image_size, latent, width)
        # Two linear heads written as one layer twice as wide: [mu, log sigma^2] side by side.
        self.encoder = Encoder(image_size, 2 * latent, width)

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Images (B, 3, S, S) -> mu, log sigma^2, each (B, latent)."""
        mu, log_var = self.encoder(x).chunk(2, dim=1)
        return mu, log_var

    def encode(self, x: Tensor) -> Tensor:
        """Images (B, 3, S, S) -> the posterior means (B, latent): deterministic, for interpolation and evaluation."""
        return self.posterior(x)[0]


def gaussian_kl(mu: Tensor, log_var: Tensor) -> Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) per image, summed over the latent: (B, latent) x2 -> (B,)."""
    mu, log_var = mu.float(), log_var.float()
    return 0.5 * (mu.square() + log_var.exp() - 1 - log_var).sum(1)


class BetaVAE(Method):
    """beta-VAE on the shared encoder/decoder (see the module doc for the loss); no adversary."""

    name = "vae"
    default_lr = DEFAULT_LRS["vae"]  # the same as AEAI's

    @classmethod
    def build_model(cls, config: TrainConfig, image_size: int) -> nn.Module:
        return GaussianAutoencoder(image_size, config.latent, config.width)

    def losses(self, x: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """The logged terms (averaged over the batch) and the tensors they came from (mu, log_var, g(z))."""
        mu, log_var = self.model.posterior(x)  # (B, latent) x2
        z = mu + (0.5 * log_var).exp() * torch.randn_like(mu)  # (B, latent): reparameterised sample
        x_hat = self.model.decode(z)  # (B, 3, S, S)
        recon = self.reconstruction_error(x, x_hat).mean()  # summed over pixels, mean over images
        kl = gaussian_kl(mu, log_var).mean()  # summed over the latent, mean over images
        terms = {"loss": recon + self.config.beta * kl, "L_R": recon, "KL": kl}
        return terms, {"mu": mu, "log_var": log_var, "x_hat": x_hat}

    def training_step(self, x: Tensor, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, Tensor]:
        with self.autocast():
            terms, _ = self.losses(x)
        self.update(optimizers, {"model": terms["loss"]})
        return {name: value.detach() for name, value in terms.items()}
