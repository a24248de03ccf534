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
import torch.nn.functional as F
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


def _batchnorm_jvp(bn: nn.modules.batchnorm._BatchNorm, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    """BatchNorm on x and its exact tangent along t; in training mode the batch statistics move with x too.

    Written out (torch's fused kernel has no tangent that can be differentiated), as per-channel scales and
    shifts so that each full-size output costs one or two fused multiply-adds. The running statistics are
    updated from x alone, as a plain forward pass would.
    """
    dims = [0, *range(2, x.ndim)]  # every dim but the channels
    shape = [1, -1] + [1] * (x.ndim - 2)
    weight = bn.weight.view(shape) if bn.affine else 1.0
    bias = bn.bias.view(shape) if bn.affine else 0.0
    if not bn.training:
        scale = torch.rsqrt(bn.running_var.view(shape) + bn.eps) * weight
        return torch.addcmul(bias - bn.running_mean.view(shape) * scale, x, scale), t * scale
    precise = torch.promote_types(x.dtype, torch.float32)  # float32 statistics under bf16 autocast
    mean = x.to(precise).mean(dims, keepdim=True)
    var = (x - mean).square().mean(dims, keepdim=True)  # 3x faster than torch.var_mean on channels-last input
    if bn.track_running_stats:
        with torch.no_grad():
            bn.num_batches_tracked += 1
            factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
            n = x.numel() / x.shape[1]
            # New tensors, not in-place: a fused BatchNorm of an earlier pass saved these for its backward.
            bn.running_mean = torch.lerp(bn.running_mean, mean.detach().view(-1), factor)
            bn.running_var = torch.lerp(bn.running_var, var.detach().view(-1) * n / max(n - 1, 1), factor)
    rstd = torch.rsqrt(var + bn.eps)
    scale = rstd * weight
    # With x_hat = (x - mean) rstd and the tangents of mean and var themselves:
    #   d x_hat = (t - mean(t) - x_hat cov(x, t) rstd) rstd,   cov(x, t) = mean(x t) - mean(x) mean(t).
    t_mean = t.to(precise).mean(dims, keepdim=True)
    cov = (x.to(precise) * t.to(precise)).mean(dims, keepdim=True) - mean * t_mean
    k = cov * rstd.square() * scale  # d y = t scale - (x - mean) k - mean(t) scale
    y = torch.addcmul(bias - mean * scale, x, scale)
    return y, torch.addcmul(torch.addcmul(mean * k - t_mean * scale, x, k, value=-1), t, scale)


_LINEAR = (nn.Linear, nn.Conv2d, nn.Upsample)


def _linear_no_bias(layer: nn.Module, x: Tensor) -> Tensor:
    """A linear layer's map without its bias: what it does to a tangent (and, plus the bias, to x)."""
    if isinstance(layer, nn.Linear):
        return F.linear(x, layer.weight)
    if isinstance(layer, nn.Conv2d):
        return layer._conv_forward(x, layer.weight, None)
    return layer(x)  # Upsample: no parameters


def _nonlinear_jvp(layer: nn.Module, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    """(layer(x), J_layer(x) t) for a Decoder's BatchNorm, ReLU and Sigmoid layers."""
    if isinstance(layer, nn.ReLU):
        return F.relu(x), torch.ops.aten.threshold_backward(t, x, 0.0)  # t where x > 0: ReLU's own kernel
    if isinstance(layer, nn.Sigmoid):
        y = torch.sigmoid(x)
        return y, t * (y - y.square())
    if isinstance(layer, nn.modules.batchnorm._BatchNorm):
        return _batchnorm_jvp(layer, x, t)
    raise TypeError(f"no tangent rule for {type(layer).__name__}")


def _sequential_jvp(layers: nn.Sequential, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    """(layers(x), J(x) t), both differentiable: linear layers run once on x and t stacked along the batch."""
    n = len(x)
    stacked: Tensor | None = None  # x over t, kept stacked through consecutive linear layers
    for layer in layers:
        if isinstance(layer, _LINEAR):
            stacked = _linear_no_bias(layer, torch.cat([x, t]) if stacked is None else stacked)
            if getattr(layer, "bias", None) is None:
                continue
        if stacked is not None:  # views; their backward is one stack, no zero-filled slices
            x, t = stacked.view(2, n, *stacked.shape[1:]).unbind(0)
            stacked = None
        if isinstance(layer, _LINEAR):
            x = x + layer.bias.view(1, -1, *[1] * (x.ndim - 2))  # the bias moves x, not its tangent
        else:
            x, t = _nonlinear_jvp(layer, x, t)
    return (x, t) if stacked is None else stacked.view(2, n, *stacked.shape[1:]).unbind(0)


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    # No conv bias: the BatchNorm right after it has its own shift.
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


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
            nn.BatchNorm1d(HIDDEN),
            nn.ReLU(inplace=True),
            nn.Linear(HIDDEN, self.c0 * self.side * self.side, bias=False),
            nn.BatchNorm1d(self.c0 * self.side * self.side),
            nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        c_in = self.c0
        for c in channels:
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), *_conv_bn_relu(c_in, c)]
            c_in = c
        layers += [nn.Conv2d(c_in, 3, 3, padding=1), nn.Sigmoid()]
        self.features = nn.Sequential(*layers)

    def forward(self, z: Tensor, dz: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:
        """x = g(z); given a tangent dz (B, latent) too, (x, J_g(z) dz): the exact directional derivative.

        The derivative is propagated layer by layer beside x in the same batched calls (torch's forward-mode
        AD took 1.3x as long, forward and backward, on a 2-core CPU), and stays differentiable for L_S's
        backward pass. In training mode BatchNorm's batch statistics move with z, so it is the derivative of
        the batch's output when every code of the batch moves along its dz together (what a finite difference
        on the batch measures).
        """
        if dz is None:
            return self.features(self.head(z).view(-1, self.c0, self.side, self.side))
        h, dh = _sequential_jvp(self.head, z, dz)
        grid = (-1, self.c0, self.side, self.side)
        return _sequential_jvp(self.features, h.view(grid), dh.view(grid))


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
