"""AMR: Beckham, Honari, Verma, Lamb, Ghadiri, Hjelm, Bengio & Pal (2019), "On Adversarial Mixup
Resynthesis"; followed: the official code, christopher-beckham/amr (PyTorch), the k = 2 mixup version with
a BCE GAN loss (no class-conditional mixing, no Bernoulli mixer).

  perm a random permutation of the batch, alpha ~ U(0, 1) per image, z_mix = alpha z + (1 - alpha) z[perm]
  L_G = lambda L1(g(z), x) + BCE(D(g(z)), 1) + BCE(D(g(z_mix)), 1) + beta L1(f(g(z_mix)), z_mix)
  L_D = BCE(D(x), 1) + BCE(D(g(z)), 0) + BCE(D(g(z_mix)), 0)     (reconstructions count as fake)

lambda = amr_lambda = 10, beta = amr_beta = 0. D is the encoder's conv layout with spectral norm on every
layer. Adam 1e-4, betas (0.5, 0.99), for both. The update schedule is in the class doc.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from toolkit.aeai.config import DEFAULT_LRS, TrainConfig
from toolkit.aeai.methods.base import Method, adam, bce
from toolkit.aeai.nets import Discriminator

BETAS = (0.5, 0.99)
D_TERMS = ("D_real", "D_recon", "D_mix", "D_loss", "D_acc")  # logged as their mean over a step's D updates


def spectral_discriminator(image_size: int, width: int) -> Discriminator:
    """The shared discriminator with spectral norm on each conv and linear layer, as AMR's D has."""
    d = Discriminator(image_size, width)
    for k, layer in enumerate(d.net):
        if isinstance(layer, nn.Conv2d | nn.Linear):
            d.net[k] = spectral_norm(layer)
    return d


class AMR(Method):
    """Adversarial Mixup Resynthesis (see the module doc for the losses).

    The authors (models/swapgan.py, `train_on_instance`, lines 223-288) step D on every batch of their data
    loader and the autoencoder on every update_g_every-th (5) batch only (line 263: `(iter - 1) %
    update_g_every == 0`); on that batch both step on the same fakes. So each autoencoder update has 5 D
    updates around it, each on its own freshly drawn batch (task_launcher.py's shuffled DataLoader) with its
    own permutation and alphas (models/twogan.py, `mix`, lines 170-184), judging the unchanged autoencoder's
    fakes.

    Here one trainer step is one autoencoder update, as for every other method, so that N steps train AMR's
    autoencoder as long as any other's: `training_step` makes amr_d_steps D updates on its one batch, the
    last of them together with the autoencoder's update on the same fakes, as the authors' G batch. Every D
    update draws its own permutation and alphas (fresh mixes); the real images and reconstructions are the
    step's batch each time, since the loop hands one batch per step (disjoint slices of it would shrink D's
    batches, and the autoencoder's BatchNorm batches, to B / amr_d_steps images: 6 of 32). The logged D terms
    are their mean over the amr_d_steps D updates; the autoencoder's terms are those of its update.
    """

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
        z = self.model.encode(x)  # (B, latent)
        return {"x_hat": self.model.decode(z), **self.mixes(z)}

    def mixes(self, z: Tensor, consistency: bool = True) -> dict[str, Tensor]:
        """Fresh perm (B,) and alpha (B,), g(z_mix) (B, 3, S, S) and, when beta > 0 and asked, L_consist."""
        b = z.shape[0]
        perm = torch.randperm(b, device=z.device)
        alpha = torch.rand(b, 1, device=z.device)  # (B, 1)
        z_mix = alpha * z + (1 - alpha) * z[perm]  # (B, latent)
        out = {"alpha": alpha.squeeze(1), "perm": perm, "x_mix": self.model.decode(z_mix)}
        if consistency and self.config.amr_beta > 0:
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
        with self.autocast():
            z = self.model.encode(x)  # (B, latent), its graph kept for the autoencoder's update at the end
            x_hat = self.model.decode(z)
        d_terms: dict[str, list[Tensor]] = {name: [] for name in D_TERMS}
        for _ in range(self.config.amr_d_steps - 1):
            # D alone: the autoencoder does not change until the last update, so g(z) is the same each time and
            # only the mixes are drawn afresh, without a graph through the autoencoder.
            with self.autocast():
                with torch.no_grad():
                    fakes = {"x_hat": x_hat.detach(), **self.mixes(z.detach(), consistency=False)}
                terms = self.judge(x, fakes)
            self.update(optimizers, {"discriminator": terms["D_loss"]})
            for name in D_TERMS:
                d_terms[name].append(terms[name].detach())
        with self.autocast():
            terms = self.judge(x, {"x_hat": x_hat, **self.mixes(z)})
        self.update(optimizers, {"model": terms["L_G"], "discriminator": terms["D_loss"]})
        logged = {name: value.detach() for name, value in terms.items()}
        for name in D_TERMS:
            logged[name] = torch.stack([*d_terms[name], logged[name]]).mean()
        return {"loss": logged["L_G"], **logged}
