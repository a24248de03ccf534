"""The paper's loss terms (section 2.1), per pair or per image (the alpha-derivative comes from `Decoder`).

`squared_error` is the paper's squared L2 distance, summed over the pixels (the baselines' losses build on
it). AEAI's own terms are per-element means (the TF/Keras default that the paper's lambdas suggest), so that
their balance does not depend on the image size: a sum over pixels would weigh L_R 3072 times (32x32) or
12288 times (64x64) more than the per-image -log D. The cycle term is measured relative to the latent's
scale (`relative_cycle_loss`), so that shrinking the codes cannot satisfy it. Functions return one value per
image or pair; the method sums over the alphas of a pair and averages over pairs.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from toolkit.errors import UserError


def squared_error(x: Tensor, x_hat: Tensor) -> Tensor:
    """Per-image squared L2 distance: (B, ...) x2 -> (B,), summed over all but the first dim."""
    return (x_hat.float() - x.float()).square().flatten(1).sum(1)


def adversarial_loss(logits_fake: Tensor) -> Tensor:
    """Non-saturating generator loss -log D(x) per image, from D's logits (N,) -> (N,)."""
    # softplus(-l) = -log(sigmoid(l)), without the log(0) of a saturated sigmoid.
    return F.softplus(-logits_fake.float())


def mean_squared_error(x: Tensor, x_hat: Tensor) -> Tensor:
    """Per-image mean squared error over the pixels: (B, ...) x2 -> (B,)."""
    return (x_hat.float() - x.float()).square().flatten(1).mean(1)


def latent_scale(z: Tensor) -> Tensor:
    """The codes' variance over the batch, averaged over the dimensions: `relative_cycle_loss`'s unit.

    Not detached: detached, the unit made the loss's value blind to the codes' scale but not its gradient, which
    still pointed at smaller codes (the loss is c^2 / c^2 in value, c^2 / const in gradient), and the codes' spread
    fell 3.6x over a pole run (latent_std 0.158 with L_C, 0.563 without; README, "AEAI's objective").
    """
    return z.float().var(0).mean()


def relative_cycle_loss(z_alpha: Tensor, z_cycle: Tensor, scale: Tensor) -> Tensor:
    """mean (z(alpha) - f(g(z(alpha))))^2 / scale per interpolation: (N, latent) x2 -> (N,).

    In training mode the decoder opens with Linear (no bias) + BatchNorm, which is blind to the codes' scale:
    g(c z) = g(z). Unnormalised, the cycle error would then shrink as c^2 with the encoder's output, whatever
    the decoder does. Divided by the codes' spread (their variance over the batch) it does not, in value or in
    gradient, and nor does a shared offset of the codes change it.
    """
    return (z_cycle.float() - z_alpha.float()).square().mean(1) / scale.clamp_min(1e-12)


def smoothness_loss(dx_dalpha: Tensor) -> Tensor:
    """mean (d x(alpha) / d alpha)^2 over the pixels, per interpolation: (N, 3, H, W) -> (N,)."""
    return dx_dalpha.float().square().flatten(1).mean(1)


def discriminator_loss(logits_real: Tensor, logits_fake: Tensor) -> Tensor:
    """Standard GAN loss for D: real images labelled 1, decoded interpolations 0 (mean over both)."""
    real = F.binary_cross_entropy_with_logits(logits_real.float(), torch.ones_like(logits_real, dtype=torch.float))
    fake = F.binary_cross_entropy_with_logits(logits_fake.float(), torch.zeros_like(logits_fake, dtype=torch.float))
    return real + fake


def r1_penalty(logits_real: Tensor, real: Tensor) -> Tensor:
    """Mescheder et al. (2018): half the mean over real images of ||grad_x D(x)||^2 (differentiable in D)."""
    (grad,) = torch.autograd.grad(logits_real.float().sum(), real, create_graph=True)
    return 0.5 * grad.float().square().flatten(1).sum(1).mean()


class PerceptualLoss(nn.Module):
    """Johnson et al. (2016) feature reconstruction loss: squared distance of VGG16 relu2_2 features.

    The weights come from a file (torchvision's vgg16 state dict, or just its `features.*` entries), since
    nothing can be downloaded at run time. Frozen; images in [0, 1] are normalised as ImageNet's were.
    """

    CUT = 9  # vgg16.features[:9] ends at relu2_2

    def __init__(self, weights_path: str | Path) -> None:
        super().__init__()
        from torchvision.models import vgg16

        path = Path(weights_path)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # a missing, truncated or pickled file: one line, not a traceback
            raise UserError(f"{path}: not a readable VGG16 weights file ({type(e).__name__})") from None
        if not isinstance(state, dict):
            raise UserError(f"{path}: expected a VGG16 state dict")
        self.features = vgg16(weights=None).features[: self.CUT]
        wanted = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
        wanted = {k: v for k, v in wanted.items() if int(k.split(".")[0]) < self.CUT}
        try:
            self.features.load_state_dict(wanted)
        except RuntimeError as e:
            raise UserError(f"{path}: not VGG16 weights ({str(e).splitlines()[0]})") from None
        self.features.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> PerceptualLoss:
        # The VGG features stay frozen in eval mode whatever the surrounding module does.
        super().train(mode)
        self.features.eval()
        return self

    def forward(self, x: Tensor, x_hat: Tensor) -> Tensor:
        """Per-image loss (B,): squared distance of the relu2_2 features over their size C H W (Johnson et al.)."""
        both = (torch.cat([x, x_hat]) - self.mean) / self.std
        feats, feats_hat = self.features(both).float().chunk(2)
        return (feats_hat - feats).square().flatten(1).mean(1)
