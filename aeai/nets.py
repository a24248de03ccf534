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


_bn_backward = torch.ops.aten.native_batch_norm_backward


def _channel_shape(x: Tensor) -> list[int]:
    return [1, -1] + [1] * (x.ndim - 2)  # a per-channel vector broadcast over x


class _BatchNormWithTangent(torch.autograd.Function):
    """Training-mode BatchNorm of x and its exact tangent J(x) t, x over t stacked along the batch in and out.

    Forward: J(x) t at unit weight is BatchNorm's own input gradient applied to t (the Jacobian is symmetric),
    so the tangent is one `native_batch_norm_backward` call. Backward: written out below (autograd's double
    backward of that call was slower than a composite of small ops): three fused passes and a few in-place
    multiply-adds. Checked against float64 finite differences in test_nets.
    """

    @staticmethod
    def forward(ctx, xt: Tensor, weight: Tensor, bias: Tensor, eps: float):
        n, shape = len(xt) // 2, _channel_shape(xt)
        x, t = xt[:n], xt[n:]
        y, mean, rstd = torch.native_batch_norm(x, weight, bias, None, None, True, 0.0, eps)
        d1, sum_xh_t, sum_t = _bn_backward(t, x, None, None, None, mean, rstd, True, eps, [True, True, True])
        ctx.save_for_backward(x, t, weight, mean, rstd, d1, sum_xh_t, sum_t)
        ctx.eps = eps
        ctx.mark_non_differentiable(mean, rstd)
        return torch.cat([y, d1 * weight.view(shape)]), mean, rstd

    @staticmethod
    def backward(ctx, g: Tensor, _g_mean: None, _g_rstd: None):
        # With xh = (x - mean) rstd, c = mean(xh t) and tm = mean(t): y = w xh + b, dy = w d1, d1 = rstd u
        # and u = t - tm - xh c. g is y's gradient over dy's; the per-channel sums come from fused passes.
        x, t, weight, mean, rstd, d1, sum_xh_t, sum_t = ctx.saved_tensors
        eps, count, shape = ctx.eps, x.numel() // x.shape[1], _channel_shape(x)
        g_y, g_d = g[: len(x)], g[len(x) :]
        _, sum_gy_xh, sum_gy = _bn_backward(g_y, x, None, None, None, mean, rstd, True, eps, [False, True, True])
        p, sum_gd_xh, sum_gd = _bn_backward(g_d, x, None, None, None, mean, rstd, True, eps, [True, True, True])
        zero, one = torch.zeros_like(mean), torch.ones_like(rstd)
        sum_gd_t = _bn_backward(g_d, t, None, None, None, zero, one, True, eps, [False, True, False])[1]
        c, tm = sum_xh_t / count, sum_t / count
        q = sum_gd_t - tm * sum_gd - c * sum_gd_xh  # sum(g_d u)
        # g_x = w rstd (g_y - mean(g_y) - xh mean(g_y xh))        (y's share, BatchNorm's own backward)
        #       - w rstd c p - (w rstd sum(g_d xh) / count) d1 - k (x - mean)   (dy's, through xh, c and rstd)
        # with p = rstd (g_d - mean(g_d) - xh mean(g_d xh)) and k = w q rstd^3 / count.
        w_rstd = weight * rstd
        k = (weight * q * rstd.pow(3) + w_rstd * rstd * sum_gy_xh) / count  # both shares' xh terms
        g_xt = torch.empty_like(g)
        g_x = torch.mul(g_y, w_rstd.view(shape), out=g_xt[: len(x)])
        g_x.addcmul_(p, (-w_rstd * c).view(shape)).addcmul_(d1, (-w_rstd * sum_gd_xh / count).view(shape))
        g_x.addcmul_(x, -k.view(shape)).add_((k * mean - w_rstd * sum_gy / count).view(shape))
        torch.mul(p, weight.view(shape), out=g_xt[len(x) :])
        return g_xt, sum_gy_xh + rstd * q, sum_gy, None


def _batchnorm_jvp(bn: nn.modules.batchnorm._BatchNorm, xt: Tensor) -> Tensor:
    """BatchNorm of x and its exact tangent along t (x over t, stacked); in training the batch statistics move too.

    The running statistics are updated from x alone, as a plain forward pass would.
    """
    n, shape = len(xt) // 2, _channel_shape(xt)
    if not bn.training:
        scale = torch.rsqrt(bn.running_var.view(shape) + bn.eps) * bn.weight.view(shape)
        out = xt * scale
        out[:n] += bn.bias.view(shape) - bn.running_mean.view(shape) * scale
        return out
    precise = torch.promote_types(xt.dtype, torch.float32)  # float32 statistics under bf16 autocast
    out, mean, rstd = _BatchNormWithTangent.apply(xt.to(precise), bn.weight, bn.bias, bn.eps)
    if bn.track_running_stats:
        with torch.no_grad():
            bn.num_batches_tracked += 1
            factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
            count = n * xt[0].numel() / xt.shape[1]
            var = (rstd.square().reciprocal() - bn.eps) * count / max(count - 1, 1)  # unbiased, as torch keeps it
            # New tensors, not in-place: a fused BatchNorm of an earlier pass saved these for its backward.
            bn.running_mean = torch.lerp(bn.running_mean, mean, factor)
            bn.running_var = torch.lerp(bn.running_var, var, factor)
    return out


def _layer_jvp(layer: nn.Module, xt: Tensor) -> Tensor:
    """A Decoder layer on x and its tangent t, stacked along the batch: (layer(x) over J_layer(x) t)."""
    n = len(xt) // 2
    if isinstance(layer, nn.Linear | nn.Conv2d):
        out = (
            F.linear(xt, layer.weight) if isinstance(layer, nn.Linear) else layer._conv_forward(xt, layer.weight, None)
        )
        if layer.bias is not None:  # the bias moves x, not its tangent
            out[:n] += layer.bias.view(_channel_shape(out))
        return out
    if isinstance(layer, nn.Upsample):
        return layer(xt)
    if isinstance(layer, nn.ReLU):
        # x where x > 0 over t where x > 0: one kernel for both, the mask from x (and without a gradient).
        halves = xt.view(2, n, *xt.shape[1:])
        return torch.ops.aten.threshold_backward(halves, halves[:1].detach(), 0.0).view(xt.shape)
    if isinstance(layer, nn.Sigmoid):
        x, t = xt.view(2, n, *xt.shape[1:]).unbind(0)  # views whose backward is one stack, not zero-filled slices
        y = torch.sigmoid(x)
        return torch.cat([y, torch.ops.aten.sigmoid_backward(t, y)])  # t y (1 - y), one kernel
    if isinstance(layer, nn.modules.batchnorm._BatchNorm):
        return _batchnorm_jvp(layer, xt)
    raise TypeError(f"no tangent rule for {type(layer).__name__}")


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
            xt = _layer_jvp(layer, xt)
        xt = xt.view(-1, self.c0, self.side, self.side)
        for layer in self.features:
            xt = _layer_jvp(layer, xt)
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
