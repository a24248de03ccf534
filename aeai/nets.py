"""The networks every method shares: the paper's VGG-inspired encoder, its mirrored decoder, a discriminator.

Paper, section 2.3: conv blocks from 16 to 128 feature maps, max-pooling after each block, BatchNorm + ReLU
after each learned layer, fully connected layers down to the latent (256 by default); the decoder mirrors it.
Four blocks (w, 2w, 4w, 8w with w = 16) of one 3x3 conv each halve the image four times, so 32, 64 and 128
pixel images leave 2x2, 4x4 and 8x8 feature maps before the fully connected layers. One conv per block, not
VGG's two: on a 2-core CPU that is 190 instead of 115 training images/s at 64x64, and the nets still
reconstruct the pole set well.
"""

from __future__ import annotations

import torch
import torch.autograd.forward_ad as fwAD
from torch import Tensor, nn

from toolkit.errors import UserError

IMAGE_SIZES = (32, 64, 128)
N_BLOCKS = 4
HIDDEN = 512  # width of the fully connected layer between the conv features and the latent


def check_image_size(size: int) -> None:
    """Raise a UserError unless the nets are built for `size` pixel images."""
    if size not in IMAGE_SIZES:
        raise UserError(
            f"image size {size} is not supported; the networks are built for {', '.join(map(str, IMAGE_SIZES))}"
        )


def block_channels(width: int) -> list[int]:
    """Feature maps per conv block: width, 2 width, ... (16 -> 128 in the paper)."""
    return [width * 2**k for k in range(N_BLOCKS)]


class _TangentSafeBatchNorm:
    """BatchNorm whose training-mode forward, when given a forward-AD dual tensor, uses plain tensor ops.

    torch's fused batch_norm has a forward-AD (JVP) formula, but backpropagating through that tangent gives
    wrong parameter gradients in training mode (measured with torch 2.14 against central differences: the
    batch statistics' dependence is dropped), which wrecks the smoothness loss L_S. Written out as
    mean / variance / normalise, the tangent and its backward are exact. Everything else (eval mode, inputs
    without a tangent) takes the fused kernel. A mixin, so state_dict keys stay those of nn.BatchNorm*.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or fwAD.unpack_dual(x).tangent is None:
            return super().forward(x)
        dims = [0, *range(2, x.ndim)]  # every dim but the channels
        shape = [1, -1] + [1] * (x.ndim - 2)
        mean = x.mean(dims, keepdim=True)
        centered = x - mean
        var = centered.square().mean(dims, keepdim=True)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                n = x.numel() / x.shape[1]
                batch_mean = fwAD.unpack_dual(mean).primal.view(-1)
                batch_var = fwAD.unpack_dual(var).primal.view(-1) * n / max(n - 1, 1)  # unbiased, as torch keeps it
                # New tensors, not in-place: the fused BatchNorm of an earlier pass saved these for its backward.
                self.running_mean = torch.lerp(self.running_mean, batch_mean, factor)
                self.running_var = torch.lerp(self.running_var, batch_var, factor)
        y = centered * torch.rsqrt(var + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape) if self.affine else y


class BatchNorm1d(_TangentSafeBatchNorm, nn.BatchNorm1d):
    """nn.BatchNorm1d with an exact tangent backward in training mode (see _TangentSafeBatchNorm)."""


class BatchNorm2d(_TangentSafeBatchNorm, nn.BatchNorm2d):
    """nn.BatchNorm2d with an exact tangent backward in training mode (see _TangentSafeBatchNorm)."""


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    # No conv bias: the BatchNorm right after it has its own shift.
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class Encoder(nn.Module):
    """x (B, 3, S, S) in [0, 1] -> z (B, latent); the latent layer is linear (no BN/ReLU) so codes can take any sign."""

    def __init__(self, image_size: int, latent: int = 256, width: int = 16) -> None:
        super().__init__()
        check_image_size(image_size)
        layers: list[nn.Module] = []
        c_in = 3
        for c in block_channels(width):
            layers += [*_conv_bn_relu(c_in, c), nn.MaxPool2d(2)]
            c_in = c
        self.features = nn.Sequential(*layers)
        side = image_size // 2**N_BLOCKS
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c_in * side * side, HIDDEN, bias=False),
            nn.BatchNorm1d(HIDDEN),
            nn.ReLU(inplace=True),
            nn.Linear(HIDDEN, latent),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class Decoder(nn.Module):
    """z (B, latent) -> x (B, 3, S, S) in [0, 1]: the encoder mirrored, nearest upsampling where it max-pools."""

    def __init__(self, image_size: int, latent: int = 256, width: int = 16) -> None:
        super().__init__()
        check_image_size(image_size)
        channels = block_channels(width)[::-1]  # 128, 64, 32, 16
        self.side = image_size // 2**N_BLOCKS
        self.c0 = channels[0]
        self.head = nn.Sequential(
            nn.Linear(latent, HIDDEN, bias=False),
            BatchNorm1d(HIDDEN),
            nn.ReLU(inplace=True),
            nn.Linear(HIDDEN, self.c0 * self.side * self.side, bias=False),
            BatchNorm1d(self.c0 * self.side * self.side),
            nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        c_in = self.c0
        for c in channels:
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), *_conv_bn_relu(c_in, c)]
            c_in = c
        layers += [nn.Conv2d(c_in, 3, 3, padding=1), nn.Sigmoid()]
        self.features = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        h = self.head(z).view(-1, self.c0, self.side, self.side)
        return self.features(h)


class Autoencoder(nn.Module):
    """Encoder + decoder with the interface the rest of the toolkit uses: encode, decode, interpolate."""

    def __init__(self, image_size: int, latent: int = 256, width: int = 16) -> None:
        super().__init__()
        self.image_size = image_size
        self.latent = latent
        self.encoder = Encoder(image_size, latent, width)
        self.decoder = Decoder(image_size, latent, width)

    def encode(self, x: Tensor) -> Tensor:
        """Images (B, 3, S, S) in [0, 1] -> codes (B, latent)."""
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        """Codes (B, latent) -> images (B, 3, S, S) in [0, 1]."""
        return self.decoder(z)

    @staticmethod
    def interpolate(z_i: Tensor, z_j: Tensor, alpha: Tensor | float) -> Tensor:
        """z(alpha) = (1 - alpha) z_i + alpha z_j; alpha a scalar or (B,), codes (B, latent)."""
        alpha = torch.as_tensor(alpha, dtype=z_i.dtype, device=z_i.device)
        if alpha.ndim == 1:
            alpha = alpha[:, None]  # (B, 1): one alpha per pair, broadcast over the latent
        return z_i + alpha * (z_j - z_i)

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))


class Discriminator(nn.Module):
    """x (B, 3, S, S) -> one logit per image; the encoder's conv layout with LeakyReLU and no BatchNorm.

    No BatchNorm on purpose: with batch statistics, D's verdict on one image would depend on the rest of
    its batch, and a batch of all-real or all-fake images could be told apart by its statistics alone.
    """

    def __init__(self, image_size: int, width: int = 16) -> None:
        super().__init__()
        check_image_size(image_size)
        layers: list[nn.Module] = []
        c_in = 3
        for c in block_channels(width):
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.LeakyReLU(0.2, inplace=True), nn.MaxPool2d(2)]
            c_in = c
        side = image_size // 2**N_BLOCKS
        layers += [nn.Flatten(), nn.Linear(c_in * side * side, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)  # (B,)
