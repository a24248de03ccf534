"""ACAI: Berthelot, Raffel, Roy & Goodfellow (2018), "Understanding and Improving Interpolation in Autoencoders
via an Adversarial Regularizer"; followed: the official code, brain-research/acai, acai.py (TF, 2018).

A critic C regresses the mixing coefficient of decoded interpolations; the autoencoder learns to make C say 0:

  alpha ~ U(0, 1) folded to [0, 0.5], z_mix = alpha z + (1 - alpha) z[reversed batch]
  L_AE = MSE(x, g(z)) + lambda mean(C(g(z_mix))^2)                          (lambda = acai_lambda = 0.5)
  L_C  = mean((C(g(z_mix)) - alpha)^2) + mean(C(gamma x + (1 - gamma) g(z))^2)  (gamma = acai_gamma = 0.2)

The critic is the encoder's conv layout (no BatchNorm, as the authors' encoder has none) whose outputs are
averaged to one number, with no sigmoid. Adam 1e-4 for both networks. The authors' images are in [-1, 1],
ours in [0, 1] (the shared decoder ends in a sigmoid); the MSE is a mean over pixels, as theirs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from toolkit.aeai.config import DEFAULT_LRS, TrainConfig
from toolkit.aeai.methods.base import Method, adam
from toolkit.aeai.nets import Discriminator


class Critic(Discriminator):
    """Images (B, 3, S, S) -> one unbounded number each: the conv layout, `latent` outputs averaged (ACAI's disc)."""

    def __init__(self, image_size: int, width: int, latent: int) -> None:
        super().__init__(image_size, width)
        self.net[-1] = nn.Linear(self.net[-1].in_features, latent)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).mean(1)  # (B,)


def fold(alpha: Tensor) -> Tensor:
    """alpha in [0, 1] -> 0.5 - |alpha - 0.5| in [0, 0.5]: alpha and 1 - alpha give the same mix, so one target."""
    return 0.5 - (alpha - 0.5).abs()


class ACAI(Method):
    """Adversarially Constrained Autoencoder Interpolation (see the module doc for the losses)."""

    name = "acai"
    default_lr = DEFAULT_LRS["acai"]  # 1e-4: acai.py: one FLAGS.lr for the autoencoder and the critic

    def __init__(self, config: TrainConfig, image_size: int) -> None:
        super().__init__(config, image_size)
        self.critic = Critic(image_size, config.width, config.latent)

    @property
    def extras(self) -> dict[str, nn.Module]:
        return {"critic": self.critic}

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return super().configure_optimizers() | {"critic": adam(self.critic, lr=self.config.lr)}

    def draw_alpha(self, n: int, device: torch.device) -> Tensor:
        """(n,) draws from U(0, 1), before folding (a method of its own so tests can choose them)."""
        return torch.rand(n, device=device)

    def losses(self, x: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """The logged terms (L_AE, L_C and their parts) and the tensors they came from (alpha, g(z), g(z_mix))."""
        c = self.config
        z = self.model.encode(x)  # (B, latent)
        alpha = fold(self.draw_alpha(x.shape[0], x.device))  # (B,) in [0, 0.5]
        z_mix = alpha[:, None] * z + (1 - alpha[:, None]) * z.flip(0)  # (B, latent): each code with its mirror
        x_hat = self.model.decode(z)  # (B, 3, S, S)
        x_mix = self.model.decode(z_mix)  # (B, 3, S, S)
        blend = c.acai_gamma * x + (1 - c.acai_gamma) * x_hat  # (B, 3, S, S): real and reconstruction, "alpha 0"
        # One critic pass for both inputs (it has no BatchNorm, so batching them together changes nothing).
        scores = self.critic(torch.cat([x_mix, blend.to(x_mix.dtype)])).float()  # (2B,)
        c_mix, c_blend = scores[: x.shape[0]], scores[x.shape[0] :]  # (B,), (B,)
        mse = self.mean_reconstruction_error(x, x_hat)
        ae_critic = c_mix.square().mean()
        critic_mix = (c_mix - alpha).square().mean()
        critic_blend = c_blend.square().mean()
        terms = {
            "L_AE": mse + c.acai_lambda * ae_critic,
            "L_R": mse,
            "L_AE_critic": ae_critic,
            "L_C": critic_mix + critic_blend,
            "L_C_mix": critic_mix,
            "L_C_blend": critic_blend,
        }
        return terms, {"alpha": alpha, "x_hat": x_hat, "x_mix": x_mix}

    def training_step(self, x: Tensor, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, Tensor]:
        with self.autocast():
            terms, _ = self.losses(x)
        # The critic's loss reaches only the critic: as the authors' var_list, g(z) and g(z_mix) act as detached.
        self.update(optimizers, {"model": terms["L_AE"], "critic": terms["L_C"]})
        return {"loss": terms["L_AE"].detach(), **{name: value.detach() for name, value in terms.items()}}
