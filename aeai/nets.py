"""The networks every method shares: the paper's VGG-inspired encoder, its mirrored decoder, a discriminator.

Paper, section 2.3: conv blocks from 16 to 128 feature maps, max-pooling after each block, BatchNorm + ReLU
after each learned layer, fully connected layers down to the latent (256 by default); the decoder mirrors it.
Four blocks (w, 2w, 4w, 8w with w = 16) of one 3x3 conv each halve the image four times, so any square image
whose side is a multiple of 16 fits (32, 64 and 128 pixels leave 2x2, 4x4 and 8x8 feature maps before the
fully connected layers). One conv per block, not
VGG's two: on a 2-core CPU that is 190 instead of 115 training images/s at 64x64, and the nets still
reconstruct the pole set well.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from toolkit.aeai.tangent import layer_jvp
from toolkit.errors import UserError

N_BLOCKS = 4
SIZE_STEP = 2**N_BLOCKS  # every block halves the side: it must divide the image side
MAX_SIZE = 512  # the first fully connected layer grows with the side squared (8 width x (S/16)^2 x 512 weights)
HIDDEN = 512  # width of the fully connected layer between the conv features and the latent


def check_image_size(size: int) -> None:
    """Raise a UserError unless the nets can be built for `size` pixel images: a multiple of 16, up to 512."""
    if size % SIZE_STEP or not SIZE_STEP <= size <= MAX_SIZE:
        nearest = min(MAX_SIZE, max(SIZE_STEP, round(size / SIZE_STEP) * SIZE_STEP))
        raise UserError(
            f"image size {size} is not supported; the networks take square images whose side is a multiple of "
            f"{SIZE_STEP} from {SIZE_STEP} to {MAX_SIZE} (re-import with --size {nearest})"
        )


def block_channels(width: int) -> list[int]:
    """Feature maps per conv block: width, 2 width, ... (16 -> 128 in the paper)."""
    return [width * 2**k for k in range(N_BLOCKS)]


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
            conv, bn, relu = _conv_bn_relu(c_in, c)
            layers += [conv, bn, nn.MaxPool2d(2), relu]  # ReLU after the pooling: the same, on a quarter of the pixels
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
        xt = torch.cat([z, dz])  # every layer runs once on x and its tangent stacked along the batch
        for layer in self.head:
            xt = layer_jvp(layer, xt)
        xt = xt.view(-1, self.c0, self.side, self.side)
        for layer in self.features:
            xt = layer_jvp(layer, xt)
        return xt.view(2, len(z), *xt.shape[1:]).unbind(0)


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
            # LeakyReLU after the pooling: they commute (it is increasing), and it then sees a quarter of the pixels.
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.MaxPool2d(2), nn.LeakyReLU(0.2, inplace=True)]
            c_in = c
        side = image_size // 2**N_BLOCKS
        layers += [nn.Flatten(), nn.Linear(c_in * side * side, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)  # (B,)


def _conv(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    """A reflect-padded conv that keeps the size (stride 1) or halves it (kernel 4, stride 2), as GAIA's."""
    return nn.Conv2d(c_in, c_out, kernel, stride, padding=(kernel - 1) // 2, padding_mode="reflect")


def _adain(x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
    """Adaptive instance norm: each map normalised over its pixels, then scaled and shifted per image (B, C, 1, 1)."""
    return F.instance_norm(x, eps=1e-5) * gamma + beta


class _ResBlock(nn.Module):
    """x + [conv3, norm, ReLU, conv3, norm](x): InstanceNorm, or AdaIN when forward is given gamma and beta."""

    def __init__(self, channels: int, adaptive: bool) -> None:
        super().__init__()
        self.conv1, self.conv2 = _conv(channels, channels, 3), _conv(channels, channels, 3)
        self.adaptive = adaptive
        if not adaptive:
            self.norm1, self.norm2 = nn.InstanceNorm2d(channels, affine=True), nn.InstanceNorm2d(channels, affine=True)

    def forward(self, x: Tensor, gamma: Tensor | None = None, beta: Tensor | None = None) -> Tensor:
        if self.adaptive:
            h = _adain(self.conv2(F.relu(_adain(self.conv1(x), gamma, beta))), gamma, beta)
        else:
            h = self.norm2(self.conv2(F.relu(self.norm1(self.conv1(x)))))
        return x + h


class ConvAutoencoder(nn.Module):
    """x (B, 3, S, S) in [0, 1] -> its reconstruction (B, 3, S, S): GAIA's discriminator, fully convolutional.

    timsainb/GAIA network.py builds D from the same MUNIT-style encoder and decoder as its generator, with
    `discriminator=True` (lines 208-287): half the channels and no linear layer into or out of the content
    code (lines 230-231, 265-267), so the image passes through spatial maps only, at a quarter of its side:

      content: conv7 (c) ReLU; 2 x [conv4 stride 2, doubling, ReLU]; 4 residual blocks (conv3 IN ReLU conv3 IN)
      style:   conv7 (c) ReLU; 2 x [conv4 stride 2, doubling, ReLU]; 2 x [conv4 stride 2, ReLU]; global mean
               pool; 1x1 conv to the style code
      MLP:     style -> 4c -> 4c (ReLU) -> the AdaIN scale and shift (4c each), shared by all residual blocks
      decoder: 4 residual blocks with AdaIN; 2 x [nearest upsample, conv5 halving, LayerNorm, ReLU]; conv7 (3)
               sigmoid

    All convs reflect-padded with a bias, He-initialised as theirs. Their style MLP works on the pooled (B, C)
    vector; here it is the same layers as 1x1 convs on the pooled (B, C, 1, 1) map, so nothing in D flattens
    the image. Widths: theirs are c = 32 -> 128 with a generator of 64 -> 256; ours c = width -> 4 width
    (16 -> 64), half our encoder's deepest 8 width as theirs is half their generator's. `style` is the style
    code's size (their notebook sets it to the generator's code size, 512; GAIA passes our latent).
    No BatchNorm: instance and layer norms judge each image on its own.
    """

    def __init__(self, image_size: int, width: int = 16, style: int = 256, n_res: int = 4) -> None:
        super().__init__()
        check_image_size(image_size)
        c = width
        relu = nn.ReLU
        self.content = nn.Sequential(
            _conv(3, c, 7), relu(), _conv(c, 2 * c, 4, 2), relu(), _conv(2 * c, 4 * c, 4, 2), relu(),
            *(_ResBlock(4 * c, adaptive=False) for _ in range(n_res)),
        )  # fmt: skip
        self.style = nn.Sequential(
            _conv(3, c, 7), relu(), _conv(c, 2 * c, 4, 2), relu(), _conv(2 * c, 4 * c, 4, 2), relu(),
            _conv(4 * c, 4 * c, 4, 2), relu(), _conv(4 * c, 4 * c, 4, 2), relu(),
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(4 * c, style, 1),
        )  # fmt: skip
        self.mlp = nn.Sequential(nn.Conv2d(style, 4 * c, 1), relu(), nn.Conv2d(4 * c, 4 * c, 1), relu())
        self.gamma, self.beta = nn.Conv2d(4 * c, 4 * c, 1), nn.Conv2d(4 * c, 4 * c, 1)
        self.blocks = nn.ModuleList(_ResBlock(4 * c, adaptive=True) for _ in range(n_res))
        # GroupNorm(1, C) is tf's layer_norm there: over (C, H, W), with a scale and shift per channel.
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), _conv(4 * c, 2 * c, 5), nn.GroupNorm(1, 2 * c), relu(),
            nn.Upsample(scale_factor=2, mode="nearest"), _conv(2 * c, c, 5), nn.GroupNorm(1, c), relu(),
            _conv(c, 3, 7), nn.Sigmoid(),
        )  # fmt: skip
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # their variance_scaling_initializer: He normal on fan-in, zero biases
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        h = self.content(x)  # (B, 4c, S/4, S/4)
        m = self.mlp(self.style(x))  # (B, 4c, 1, 1)
        gamma, beta = self.gamma(m), self.beta(m)
        for block in self.blocks:
            h = block(h, gamma, beta)
        return self.up(h)
