"""AMR: Beckham, Honari, Verma, Lamb, Ghadiri, Hjelm, Bengio & Pal (2019), "On Adversarial Mixup
Resynthesis"; followed: the official code, christopher-beckham/amr (PyTorch), the k = 2 mixup version with
a BCE GAN loss (no class-conditional mixing, no Bernoulli mixer).

  perm a random permutation of the batch, alpha ~ U(0, 1) per image, z_mix = alpha z + (1 - alpha) z[perm]
  L_G = lambda L1(g(z), x) + BCE(D(g(z)), 1) + BCE(D(g(z_mix)), 1) + beta L1(f(g(z_mix)), z_mix)
  L_D = BCE(D(x), 1) + BCE(D(g(z)), 0) + BCE(D(g(z_mix)), 0)     (reconstructions count as fake)

lambda = amr_lambda = 10, beta = amr_beta = 0. D is the encoder's conv layout with spectral norm on every
layer. Adam 1e-4, betas (0.5, 0.99), for both. D steps every batch; the autoencoder steps on every
amr_d_steps-th (5) batch, the first included, as `(iter - 1) % update_g_every == 0` in the authors' loop. On
the other batches the autoencoder's terms are still computed and logged, without a graph.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from toolkit.aeai.config import DEFAULT_LRS, TrainConfig
from toolkit.aeai.methods.base import Method, adam, bce
from toolkit.aeai.nets import Discriminator

BETAS = (0.5, 0.99)


def spectral_discriminator(image_size: int, width: int) -> Discriminator:
    """The shared discriminator with spectral norm on each conv and linear layer, as AMR's D has."""
    d = Discriminator(image_size, width)
    for k, layer in enumerate(d.net):
        if isinstance(layer, nn.Conv2d | nn.Linear):
            d.net[k] = spectral_norm(layer)
    return d


def optimizer_steps(optimizer: torch.optim.Optimizer) -> int:
    """How many steps an Adam optimizer has taken: its own (checkpointed) count, so a resumed run keeps the rhythm."""
    first = optimizer.param_groups[0]["params"][0]
    state = optimizer.state.get(first, {})
    return int(state["step"]) if "step" in state else 0


class AMR(Method):
    """Adversarial Mixup Resynthesis (see the module doc for the losses and the update schedule)."""

    name = "amr"
    default_lr = DEFAULT_LRS["amr"]  # 1e-4: amr README's runs: --lr=1e-4 --beta1=0.5 --beta2=0.99

    def __init__(self, config: TrainConfig, image_size: int) -> None:
        super().__init__(config, image_size)
        self.discriminator = spectral_discriminator(image_size, config.width)

    @property
    def extras(self) -> dict[str, nn.Module]:
        return {"discriminator": self.discriminator}

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        lr = self.config.lr
        return {
            "model": adam(self.model, lr=lr, betas=BETAS),
            "discriminator": adam(self.discriminator, lr=lr, betas=BETAS),
        }

    def generate(self, x: Tensor) -> dict[str, Tensor]:
        """The autoencoder's side: alpha (B,), perm (B,), g(z) and g(z_mix) (B, 3, S, S), the consistency term."""
        b = x.shape[0]
        z = self.model.encode(x)  # (B, latent)
        perm = torch.randperm(b, device=x.device)
        alpha = torch.rand(b, 1, device=x.device)  # (B, 1)
        z_mix = alpha * z + (1 - alpha) * z[perm]  # (B, latent)
        out = {
            "alpha": alpha.squeeze(1),
            "perm": perm,
            "x_hat": self.model.decode(z),
            "x_mix": self.model.decode(z_mix),
        }
        if self.config.amr_beta > 0:
            out["L_consist"] = F.l1_loss(self.model.encode(out["x_mix"]).float(), z_mix.float())
        return out

    def judge(self, x: Tensor, fakes: dict[str, Tensor]) -> dict[str, Tensor]:
        """Every logged term (L_G, L_D and their parts) from one D pass over x, g(z) and g(z_mix)."""
        c = self.config
        b = x.shape[0]
        x_hat, x_mix = fakes["x_hat"], fakes["x_mix"]
        # One D pass (no BatchNorm in D, so batching them together changes nothing): real, reconstructions, mixes.
        logits = self.discriminator(torch.cat([x.to(x_hat.dtype), x_hat, x_mix])).float()  # (3B,)
        d_real, d_recon, d_mix = logits[:b], logits[b : 2 * b], logits[2 * b :]  # (B,) each
        terms = {"L_R": F.l1_loss(x_hat.float(), x.float()), "L_G_recon": bce(d_recon, 1.0), "L_G_mix": bce(d_mix, 1.0)}
        generator = c.amr_lambda * terms["L_R"] + terms["L_G_recon"] + terms["L_G_mix"]
        if "L_consist" in fakes:
            terms["L_consist"] = fakes["L_consist"]
            generator = generator + c.amr_beta * fakes["L_consist"]
        terms["L_G"] = generator
        terms["D_real"], terms["D_recon"], terms["D_mix"] = bce(d_real, 1.0), bce(d_recon, 0.0), bce(d_mix, 0.0)
        terms["D_loss"] = terms["D_real"] + terms["D_recon"] + terms["D_mix"]
        right = (d_real.detach() > 0).float().sum() + (logits[b:].detach() < 0).float().sum()
        terms["D_acc"] = right / logits.shape[0]
        return terms

    def training_step(self, x: Tensor, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, Tensor]:
        steps_g = optimizer_steps(optimizers["discriminator"]) % self.config.amr_d_steps == 0
        with self.autocast():
            # Off-beat batches need no graph through the autoencoder: D's loss stops at its (detached) inputs.
            with contextlib.nullcontext() if steps_g else torch.no_grad():
                fakes = self.generate(x)
            terms = self.judge(x, fakes)
        losses = {"model": terms["L_G"]} if steps_g else {}
        self.update(optimizers, losses | {"discriminator": terms["D_loss"]})
        return {"loss": terms["L_G"].detach(), **{name: value.detach() for name, value in terms.items()}}
