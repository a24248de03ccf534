"""AEAI (the paper, sections 2.1 and 2.3): reconstruction + adversarial + cycle-consistency + smoothness.

Pairs: the batch arrives shuffled, so its first half is paired with its second half; every image is one
endpoint of one pair, as in the paper's "at each iteration we sample two images". With P = B // 2 pairs and
K alphas per pair (K = 1 random alpha ~ U[0,1], or K = M + 1 grid alphas n/M):

  L = mean over pairs of  L_R + lambda_A sum_alpha L_A + lambda_C sum_alpha L_C + lambda_S sum_alpha L_S

every term a per-element mean (toolkit.aeai.losses), the cycle term relative to the codes' scale.

The endpoints and the interpolations are decoded in ONE pass, so that the decoder's BatchNorm sees in
training the same mix it averages into its running statistics for evaluation (two passes gave each its own
statistics, and an eval-mode reconstruction error several times the training one). That pass carries a
tangent when lambda_S > 0 (Decoder's dz; zero for the endpoints), so that it yields x(alpha) and its exact
derivative d x / d alpha = J_g(z(alpha)) (z_j - z_i) together. D is updated every iteration with the
standard GAN loss, real = the 2P training images of the batch, fake = the P K decoded interpolations
(detached, in effect: its loss only updates D), with R1 (default) and optionally DiffAugment, always or with
ADA's adaptive probability (D_augment_p in the metrics).

Diagnostics, every `diagnostics_every` steps: the norm of the gradient that each weighted term sends to the
decoder's parameters (grad_L_R, grad_L_A, ...), so that "does this term act?" has a number; and always D's
accuracy on real and on fake images apart, and the codes' spread (a collapsing latent shows there).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from toolkit.aeai.config import TrainConfig
from toolkit.aeai.diffaugment import AdaptiveProbability, diff_augment
from toolkit.aeai.losses import (
    adversarial_loss,
    discriminator_loss,
    latent_scale,
    mean_squared_error,
    r1_penalty,
    relative_cycle_loss,
    smoothness_loss,
)
from toolkit.aeai.methods.base import Method, adam
from toolkit.aeai.nets import Discriminator


def gradient_norms(terms: dict[str, Tensor], network: nn.Module) -> dict[str, Tensor]:
    """grad_<term>: the L2 norm of each (weighted) term's gradient with respect to `network`'s parameters."""
    params = [p for p in network.parameters() if p.requires_grad]
    norms = {}
    for name, value in terms.items():
        grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
        norms[f"grad_{name}"] = torch.sqrt(sum(g.float().square().sum() for g in grads if g is not None))
    return norms


class AEAI(Method):
    """Autoencoder Adversarial Interpolation; a lambda of 0 drops its term (the paper's ablations)."""

    name = "aeai"

    def __init__(self, config: TrainConfig, image_size: int) -> None:
        super().__init__(config, image_size)
        # Without the adversarial term there is nothing for D to train: the "without D" ablation has none.
        self.discriminator = None
        if config.lambda_a > 0:
            self.discriminator = Discriminator(image_size, config.width)
        self.augment_p = AdaptiveProbability(config.ada_target) if config.d_augment == "adaptive" else None
        self.steps = 0  # for the diagnostics' schedule; not checkpointed (a resumed run measures at other steps)

    @property
    def extras(self) -> dict[str, nn.Module]:
        return {"discriminator": self.discriminator} if self.discriminator is not None else {}

    def training_state(self) -> dict:
        return {"augment_p": self.augment_p.p} if self.augment_p is not None else {}

    def load_training_state(self, state: dict) -> None:
        if self.augment_p is not None:
            self.augment_p.p = state["augment_p"]

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        optimizers = super().configure_optimizers()
        if self.discriminator is not None:
            betas = (self.config.d_beta1, 0.999)
            optimizers["discriminator"] = adam(self.discriminator, lr=self.config.lr, betas=betas)
        return optimizers

    def sample_alphas(self, n_pairs: int, device: torch.device) -> Tensor:
        """(P, K) alphas: one U[0,1] draw per pair, or the grid n/M, n = 0..M, for every pair."""
        m = self.config.alpha_grid
        if m > 0:
            return torch.linspace(0.0, 1.0, m + 1, device=device).expand(n_pairs, m + 1)
        return torch.rand(n_pairs, 1, device=device)

    def reconstruction(self, x: Tensor, x_hat: Tensor) -> Tensor:
        """Per-image L_R (B,): the mean squared error over the pixels, or the perceptual loss (a mean too)."""
        if self.perceptual is not None:
            return self.perceptual(x.float(), x_hat.float())
        return mean_squared_error(x, x_hat)

    def loss_terms(self, x: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor], Tensor]:
        """The four terms (averaged over pairs), D's loss and diagnostics, the interpolations (P K, 3, S, S)."""
        c = self.config
        n_pairs = x.shape[0] // 2
        x = x[: 2 * n_pairs]  # an odd image out has no partner
        z = self.model.encode(x)  # (2P, latent): z_i = z[:P], z_j = z[P:]
        z_i, z_j = z[:n_pairs], z[n_pairs:]
        alpha = self.sample_alphas(n_pairs, x.device)  # (P, K)
        k = alpha.shape[1]
        dz = (z_j - z_i)[:, None, :].expand(-1, k, -1).reshape(n_pairs * k, -1)  # (P K, latent): d z(alpha)/d alpha
        z_alpha = z_i.repeat_interleave(k, 0) + alpha.reshape(-1, 1) * dz  # (P K, latent)
        codes = torch.cat([z, z_alpha])  # (2P + P K, latent): one decoder batch, one set of BatchNorm statistics
        if c.lambda_s > 0:
            decoded, tangents = self.model.decoder(codes, torch.cat([torch.zeros_like(z), dz]))
            dx_dalpha = tangents[2 * n_pairs :]  # (P K, 3, S, S)
        else:
            decoded, dx_dalpha = self.model.decode(codes), None
        x_hat, x_alpha = decoded[: 2 * n_pairs], decoded[2 * n_pairs :]

        recon = self.reconstruction(x, x_hat)  # (2P,)
        terms = {"L_R": (recon[:n_pairs] + recon[n_pairs:]).mean()}  # both endpoints of each pair
        scale = latent_scale(z)  # the spread of this batch's codes, the unit of L_C
        diagnostics = {"latent_std": scale.sqrt()}

        def per_pair(values: Tensor) -> Tensor:
            # (P K,) -> scalar: the paper's sum over the alphas of a pair, then the mean over pairs.
            return values.view(n_pairs, k).sum(1).mean()

        if self.discriminator is not None:
            seen_real, seen_fake = x.to(x_alpha.dtype), x_alpha
            if c.d_augment != "off":
                p = 1.0 if self.augment_p is None else self.augment_p.p.to(x.device)
                seen_real, seen_fake = diff_augment(seen_real, p), diff_augment(seen_fake, p)
                diagnostics["D_augment_p"] = torch.as_tensor(p, device=x.device)
            seen_real = seen_real.detach().requires_grad_(c.r1 > 0)
            real = self.discriminator(seen_real)  # (2P,)
            fake = self.discriminator(seen_fake)  # (P K,): L_A's backward runs through D for the fakes only
            terms["L_A"] = per_pair(adversarial_loss(fake))
            d_loss = discriminator_loss(real, fake)
            if c.r1 > 0:
                d_loss = d_loss + c.r1 * r1_penalty(real, seen_real)
            if self.augment_p is not None:
                self.augment_p.update(real)
            acc_real, acc_fake = (real.detach() > 0).float().mean(), (fake.detach() < 0).float().mean()
            diagnostics |= {"D_loss": d_loss, "D_acc": (acc_real + acc_fake) / 2}
            diagnostics |= {"D_acc_real": acc_real, "D_acc_fake": acc_fake}
        if c.lambda_c > 0:
            terms["L_C"] = per_pair(relative_cycle_loss(z_alpha, self.model.encode(x_alpha), scale))
        if dx_dalpha is not None:
            terms["L_S"] = per_pair(smoothness_loss(dx_dalpha))
        return terms, diagnostics, x_alpha

    def weighted(self, terms: dict[str, Tensor]) -> dict[str, Tensor]:
        """Each term times its lambda, as it enters the autoencoder's loss."""
        c = self.config
        weights = {"L_R": 1.0, "L_A": c.lambda_a, "L_C": c.lambda_c, "L_S": c.lambda_s}
        return {name: weights[name] * value for name, value in terms.items()}

    def training_step(self, x: Tensor, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, Tensor]:
        with self.autocast():
            terms, diagnostics, _ = self.loss_terms(x)
        weighted = self.weighted(terms)
        loss = sum(weighted.values())
        logged = {"loss": loss.detach(), **{name: value.detach() for name, value in terms.items()}}
        if self.steps % self.config.diagnostics_every == 0:
            logged |= gradient_norms(weighted, self.model.decoder)
        self.steps += 1
        # Each loss reaches only its own network: L_A trains the autoencoder through D but not D, and D's loss
        # stops at x(alpha) as if it were detached. Autograd skips the gradients nobody asked for.
        losses = {"model": loss} | ({"discriminator": diagnostics["D_loss"]} if self.discriminator is not None else {})
        self.update(optimizers, losses)
        return logged | {name: value.detach() for name, value in diagnostics.items()}
