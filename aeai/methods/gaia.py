"""GAIA: Sainburg, Thielk, Theilman, Migliori & Gentner (2018), "Generative Adversarial Interpolative
Autoencoding"; followed: the official code, timsainb/GAIA, network.py (TF, 2018, the `GAIA` class).

D is itself an autoencoder (BEGAN-style) and judges an image by how badly it reconstructs it, R(y) = |y - D(y)|
(mean L1). With the batch's halves A and B, two mixes per pair of rows as the authors' get_midpoints:
z_mix = [a1 z_A + (1 - a1) z_B, a2 reversed(z_A) + (1 - a2) z_B], a1, a2 ~ N(0.5, 0.25^2), not clipped.

  R_r = |x - D(x)|,  R_fr = |x - D(g(z))| (against x, as network.py),  R_fs = |g(z_mix) - D(g(z_mix))|
  R_f = (R_fr + R_fs) / 2
  L_D = clip(R_r - p_f R_f, -1, 1),   p_f = clip(sigmoid(s (0.5 R_fs - R_r)), 0, 0.9)
  L_G = clip(p_s R_fs + (1 - p_s) R_fr + w L_dist, -1, 1),   p_s = sigmoid(s (R_fs - R_fr))
  L_dist = mean((log(1 + d_x) - log(1 + d_z))^2), d the pairwise mean squared distances over their mean
  lr_D = sigmoid(s (R_r - R_f)) lr,  lr_G = lr - lr_D          (s = gaia_slope = 20, w = gaia_distance = 5e-5)

As in network.py, p_f and p_s are not held constant: gradients flow through them. G is the shared autoencoder;
D is the authors' own kind (network.py lines 171-204, built with `discriminator=True`): a fully convolutional
autoencoder with no linear bottleneck (`ConvAutoencoder`), which can learn to reproduce any image and tells
real from fake only by what it learns to reproduce worse. Adam with epsilon 1e-8: the class's default is 1.0,
but the authors' "GAIA simple example" notebook trains with adam_eps = 1e-8 (and lr_max 1e-4, slope 20,
latent_loss_weights lr_max / 2 = 5e-5, as ours). Their layers' l2 kernel regularizers (network.py line 7)
never enter L_d or L_g, so they have no effect.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from toolkit.aeai.config import DEFAULT_LRS, TrainConfig
from toolkit.aeai.methods.base import Method, adam
from toolkit.aeai.nets import ConvAutoencoder


def pairwise_sq_dist(v: Tensor) -> Tensor:
    """Mean squared difference between every two rows: (N, F) -> (N, N), as network.py's squared_dist."""
    v = v.flatten(1).float()
    sq = v.square().sum(1)  # (N,)
    # The Gram form instead of (N, N, F) differences; clamped because rounding can dip below 0 on the diagonal.
    return (sq[:, None] + sq[None, :] - 2 * v @ v.T).clamp_min(0) / v.shape[1]


def distance_loss(x: Tensor, z: Tensor) -> Tensor:
    """GAIA's L_dist: keep the batch's relative pairwise distances alike in image and latent space (scalar)."""
    d_x, d_z = pairwise_sq_dist(x), pairwise_sq_dist(z)  # (B, B) each
    d_x, d_z = d_x / d_x.mean(), d_z / d_z.mean()
    return (torch.log1p(d_x) - torch.log1p(d_z)).square().mean()


def balanced_lrs(r_real: Tensor | float, r_fake: Tensor | float, lr: float, slope: float) -> tuple[float, float]:
    """(lr_D, lr_G): D learns faster while it reconstructs real images worse than fakes; they always sum to lr."""
    share = torch.sigmoid(slope * (torch.as_tensor(r_real) - torch.as_tensor(r_fake))).item()
    return share * lr, (1.0 - share) * lr


class GAIA(Method):
    """Generative Adversarial Interpolative Autoencoding (see the module doc for the losses)."""

    name = "gaia"
    default_lr = DEFAULT_LRS["gaia"]  # 1e-4: network.py's lr_max: the sum of the two balanced rates

    def __init__(self, config: TrainConfig, image_size: int) -> None:
        super().__init__(config, image_size)
        # The style code as large as the generator's code, as the authors' notebook sets style_dim = n_hidden.
        self.discriminator = ConvAutoencoder(image_size, config.width, style=config.latent)

    @property
    def extras(self) -> dict[str, nn.Module]:
        return {"discriminator": self.discriminator}

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        # Each step sets both rates (see training_step); half and half is where the balance starts.
        half = self.config.lr / 2
        return {
            "model": adam(self.model, lr=half),
            "discriminator": adam(self.discriminator, lr=half),
        }

    def mix(self, z: Tensor) -> Tensor:
        """(B, latent) -> (2 (B // 2), latent): network.py's get_midpoints, two Gaussian mixes per row of A."""
        h = z.shape[0] // 2
        z_a, z_b = z[:h], z[h : 2 * h]  # (h, latent) each
        a1, a2 = (0.5 + 0.25 * torch.randn(2, h, 1, device=z.device, dtype=z.dtype)).unbind(0)  # (h, 1) each
        return torch.cat([a1 * z_a + (1 - a1) * z_b, a2 * z_a.flip(0) + (1 - a2) * z_b])

    def losses(self, x: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """The logged terms (L_D, L_G, the R's and balances) and the tensors they came from."""
        c = self.config
        b = x.shape[0]
        z = self.model.encode(x)  # (B, latent)
        x_hat = self.model.decode(z)  # (B, 3, S, S)
        x_mix = self.model.decode(self.mix(z))  # (2 (B // 2), 3, S, S)
        # One D pass for all three (D normalises each image on its own, so batching them changes nothing).
        d_out = self.discriminator(torch.cat([x.to(x_hat.dtype), x_hat, x_mix])).float()  # (2B + 2 (B // 2), ...)
        d_real, d_recon, d_mix = d_out[:b], d_out[b : 2 * b], d_out[2 * b :]
        x32 = x.float()
        r_real = (x32 - d_real).abs().mean()
        r_recon = (x32 - d_recon).abs().mean()  # against x, not g(z): network.py's x_fake_from_real_recon_loss
        r_mix = (x_mix.float() - d_mix).abs().mean()
        r_fake = (r_recon + r_mix) / 2
        s = c.gaia_slope
        p_fake = torch.sigmoid(s * (0.5 * r_mix - r_real)).clamp(0.0, 0.9)
        p_mix = torch.sigmoid(s * (r_mix - r_recon))
        dist = distance_loss(x, z)
        terms = {
            "L_D": (r_real - p_fake * r_fake).clamp(-1, 1),
            "L_G": (p_mix * r_mix + (1 - p_mix) * r_recon + c.gaia_distance * dist).clamp(-1, 1),
            "R_real": r_real,
            "R_fake_recon": r_recon,
            "R_fake_mix": r_mix,
            "L_dist": dist,
            "p_fake": p_fake,
            "p_mix": p_mix,
        }
        return terms, {"x_hat": x_hat, "x_mix": x_mix}

    def training_step(self, x: Tensor, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, Tensor]:
        with self.autocast():
            terms, _ = self.losses(x)
        # The rates come from this batch's errors, as network.py feeds lr_D and lr_G into the same session run.
        # (.item() syncs a GPU once per step; GAIA's rates are needed on the host by the optimizers anyway.)
        lr_d, lr_g = balanced_lrs(
            terms["R_real"].detach(),
            ((terms["R_fake_recon"] + terms["R_fake_mix"]) / 2).detach(),
            self.config.lr,
            self.config.gaia_slope,
        )
        for name, lr in (("discriminator", lr_d), ("model", lr_g)):
            for group in optimizers[name].param_groups:
                group["lr"] = lr
        self.update(optimizers, {"model": terms["L_G"], "discriminator": terms["L_D"]})
        logged = {name: value.detach() for name, value in terms.items()}
        lrs = {"lr_D": torch.tensor(lr_d, device=x.device), "lr_G": torch.tensor(lr_g, device=x.device)}
        return {"loss": logged["L_G"], **logged, **lrs}
