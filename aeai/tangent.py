"""The decoder's exact tangent beside its output: each layer applied to x and to its JVP direction t at once.

AEAI's smoothness loss needs d x(alpha) / d alpha = J_g(z(alpha)) (z_j - z_i). Rather than forward-mode AD,
the decoder runs on x and t stacked along the batch, every layer applying its own linearisation to t, so
one kernel serves both halves; training-mode BatchNorm, whose batch statistics move with x, gets a fused
autograd function of its own (gradcheck-tested in tests/test_nets.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_bn_backward = torch.ops.aten.native_batch_norm_backward


def _channel_shape(x: Tensor) -> list[int]:
    return [1, -1] + [1] * (x.ndim - 2)  # a per-channel vector broadcast over x


class BatchNormWithTangent(torch.autograd.Function):
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


def batchnorm_jvp(bn: nn.modules.batchnorm._BatchNorm, xt: Tensor) -> Tensor:
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
    out, mean, rstd = BatchNormWithTangent.apply(xt.to(precise), bn.weight, bn.bias, bn.eps)
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


def layer_jvp(layer: nn.Module, xt: Tensor) -> Tensor:
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
        return batchnorm_jvp(layer, xt)
    raise TypeError(f"no tangent rule for {type(layer).__name__}")
