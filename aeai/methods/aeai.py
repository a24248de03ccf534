"""AEAI (the paper, sections 2.1 and 2.3): reconstruction + adversarial + cycle-consistency + smoothness.

Pairs: the batch arrives shuffled, so its first half is paired with its second half; every image is one
endpoint of one pair, as in the paper's "at each iteration we sample two images". With P = B // 2 pairs and
K alphas per pair (K = 1 random alpha ~ U[0,1], or K = M + 1 grid alphas n/M):

  L = mean over pairs of  L_R + lambda_A sum_alpha L_A + lambda_C sum_alpha L_C + lambda_S sum_alpha L_S

As in section 2.3, the endpoints are decoded first and the interpolations after, in a second pass: that
one carries a tangent when lambda_S > 0 (Decoder's dz), so that it yields x(alpha) and its exact derivative
d x / d alpha = J_g(z(alpha)) (z_j - z_i) together. (One shared pass would carry zero tangents through the
decoder for the endpoints, and mix their BatchNorm statistics with the interpolations'.) D is updated every
iteration with the standard GAN loss, real = P training images of the batch, fake = the P K decoded
interpolations (detached, in effect: its loss only updates D).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from toolkit.aeai.config import TrainConfig
from toolkit.aeai.losses import (
    adversarial_loss,
    cycle_loss,
    discriminator_loss,
    smoothness_loss,
)
from toolkit.aeai.methods.base import Method, adam
from toolkit.aeai.nets import Discriminator


class AEAI(Method):
    """Autoencoder Adversarial Interpolation; a lambda of 0 drops its term (the paper's ablations)."""

    name = "aeai"

    def __init__(self, config: TrainConfig, image_size: int) -> None:
        super().__init__(config, image_size)
        # Without the adversarial term there is nothing for D to train: the "without D" ablation has none.
        self.discriminator = Discriminator(image_size, config.width) if config.lambda_a > 0 else None

    @property
    def extras(self) -> dict[str, nn.Module]:
        return {"discriminator": self.discriminator} if self.discriminator is not None else {}

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        optimizers = super().configure_optimizers()
        if self.discriminator is not None:
            optimizers["discriminator"] = adam(self.discriminator, lr=self.config.lr)
        return optimizers

    def sample_alphas(self, n_pairs: int, device: torch.device) -> Tensor:
        """(P, K) alphas: one U[0,1] draw per pair, or the grid n/M, n = 0..M, for every pair."""
        m = self.config.alpha_grid
        if m > 0:
            return torch.linspace(0.0, 1.0, m + 1, device=device).expand(n_pairs, m + 1)
        return torch.rand(n_pairs, 1, device=device)

    def loss_terms(self, x: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor], Tensor]:
        """The four terms (averaged over pairs), D's loss and accuracy, the interpolations (P K, 3, S, S)."""
        c = self.config
        n_pairs = x.shape[0] // 2
        x = x[: 2 * n_pairs]  # an odd image out has no partner
        z = self.model.encode(x)  # (2P, latent): z_i = z[:P], z_j = z[P:]
        z_i, z_j = z[:n_pairs], z[n_pairs:]
        alpha = self.sample_alphas(n_pairs, x.device)  # (P, K)
        k = alpha.shape[1]
        dz = (z_j - z_i)[:, None, :].expand(-1, k, -1)  # (P, K, latent): d z(alpha) / d alpha
        z_alpha = (z_i[:, None, :] + alpha[..., None] * dz).reshape(n_pairs * k, -1)  # (P K, latent)
        x_hat = self.model.decode(z)  # (2P, 3, S, S)
        if c.lambda_s > 0:
            # One pass gives x(alpha) and its exact derivative d x / d alpha along the direction z_j - z_i.
            x_alpha, dx_dalpha = self.model.decoder(z_alpha, dz.reshape(n_pairs * k, -1))
        else:
            x_alpha, dx_dalpha = self.model.decode(z_alpha), None  # (P K, 3, S, S)

        recon = self.reconstruction_error(x, x_hat)  # (2P,)
        terms = {"L_R": (recon[:n_pairs] + recon[n_pairs:]).mean()}  # both endpoints of each pair

        def per_pair(values: Tensor) -> Tensor:
            # (P K,) -> scalar: the paper's sum over the alphas of a pair, then the mean over pairs.
            return values.view(n_pairs, k).sum(1).mean()

        disc: dict[str, Tensor] = {}
        if self.discriminator is not None:
            # Real = the P images x_j, fake = the P K interpolations. Two D passes, not one on both: L_A's
            # backward then runs through D for the fakes only (D has no BatchNorm, so the verdicts are the same).
            real = self.discriminator(x[n_pairs:].to(x_alpha.dtype))  # (P,)
            fake = self.discriminator(x_alpha)  # (P K,)
            terms["L_A"] = per_pair(adversarial_loss(fake))
            disc["D_loss"] = discriminator_loss(real, fake)
            disc["D_acc"] = ((real.detach() > 0).sum() + (fake.detach() < 0).sum()) / (len(real) + len(fake))
        if c.lambda_c > 0:
            terms["L_C"] = per_pair(cycle_loss(z_alpha, self.model.encode(x_alpha)))
        if dx_dalpha is not None:
            terms["L_S"] = per_pair(smoothness_loss(dx_dalpha))
        return terms, disc, x_alpha

    def training_step(self, x: Tensor, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, Tensor]:
        c = self.config
        weights = {"L_R": 1.0, "L_A": c.lambda_a, "L_C": c.lambda_c, "L_S": c.lambda_s}
        with self.autocast():
            terms, disc, _ = self.loss_terms(x)
        loss = sum(weights[name] * value for name, value in terms.items())
        # Each loss reaches only its own network: L_A trains the autoencoder through D but not D, and D's loss
        # stops at x(alpha) as if it were detached. Autograd skips the gradients nobody asked for.
        losses = {"model": loss} | ({"discriminator": disc["D_loss"]} if self.discriminator is not None else {})
        self.update(optimizers, losses)
        logged = {"loss": loss.detach(), **{name: value.detach() for name, value in terms.items()}}
        return logged | {name: value.detach() for name, value in disc.items()}
