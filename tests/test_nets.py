"""The shared networks: shapes for every supported image size, outputs in [0, 1], interpolation."""

from __future__ import annotations

import copy

import pytest
import torch

from toolkit.aeai.nets import Autoencoder, ConvAutoencoder, Decoder, Discriminator
from toolkit.aeai.tangent import BatchNormWithTangent
from toolkit.errors import UserError


@pytest.mark.parametrize("size", [16, 32, 48, 64, 80, 128])
def test_autoencoder_shapes_and_range(size: int) -> None:
    model = Autoencoder(size, latent=8, width=4).eval()
    x = torch.rand(3, 3, size, size)
    z = model.encode(x)
    assert z.shape == (3, 8)
    x_hat = model.decode(z)
    assert x_hat.shape == (3, 3, size, size)
    assert x_hat.min() >= 0 and x_hat.max() <= 1


def test_paper_feature_maps_go_from_16_to_128() -> None:
    model = Autoencoder(64)
    convs = [m.out_channels for m in model.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs == [16, 32, 64, 128]
    assert model.latent == 256
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in model.encoder.modules()) == 4


@pytest.mark.parametrize("size", [16, 48])
def test_discriminators_take_any_multiple_of_16(size: int) -> None:
    x = torch.rand(5, 3, size, size)
    assert Discriminator(size, width=4)(x).shape == (5,)
    assert ConvAutoencoder(size, width=4, style=8)(x).shape == x.shape


@pytest.mark.parametrize("size", [40, 8, 1024])
def test_unsupported_image_size_is_a_user_error(size: int) -> None:
    with pytest.raises(UserError, match=f"image size {size} .*multiple of 16.*--size"):
        Autoencoder(size)


def test_interpolate_endpoints_and_per_pair_alpha() -> None:
    z_i, z_j = torch.zeros(2, 4), torch.ones(2, 4)
    assert torch.equal(Autoencoder.interpolate(z_i, z_j, 0.0), z_i)
    assert torch.equal(Autoencoder.interpolate(z_i, z_j, 1.0), z_j)
    z = Autoencoder.interpolate(z_i, z_j, torch.tensor([0.25, 0.75]))
    assert torch.allclose(z[:, 0], torch.tensor([0.25, 0.75]))


@pytest.mark.filterwarnings("ignore:.*torch.jit.script:FutureWarning")  # torch.func.jvp, inside torch
@pytest.mark.parametrize("size", [32, 64])
def test_decoder_tangent_matches_torch_jvp_in_eval_mode(size: int) -> None:
    # In eval mode torch.func.jvp is a trustworthy reference (no batch statistics); train mode is checked
    # against central differences in test_losses.
    torch.manual_seed(0)
    decoder = Decoder(size, latent=8, width=4).eval()
    for m in decoder.modules():
        if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):  # non-trivial running stats and affine
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2), m.weight.data.uniform_(0.5, 2)
    z, dz = torch.randn(5, 8), torch.randn(5, 8)
    x, dx = decoder(z, dz)
    x_ref, dx_ref = torch.func.jvp(decoder, (z,), (dz,))
    assert dx.abs().max() > 1e-3
    assert torch.allclose(x, x_ref, atol=1e-6) and torch.allclose(dx, dx_ref, atol=1e-5)


def test_decoder_tangent_pass_trains_batchnorm_like_a_plain_pass() -> None:
    torch.manual_seed(0)
    plain = Decoder(32, latent=8, width=4).train()
    tangent = copy.deepcopy(plain)
    z = torch.randn(6, 8)
    x_plain = plain(z)
    x, _ = tangent(z, torch.randn(6, 8))
    assert torch.allclose(x, x_plain, atol=1e-5)  # same output, batch statistics of z alone
    for ours, ref in zip(tangent.modules(), plain.modules(), strict=True):
        if isinstance(ref, torch.nn.modules.batchnorm._BatchNorm):
            assert torch.allclose(ours.running_mean, ref.running_mean, atol=1e-6)
            assert torch.allclose(ours.running_var, ref.running_var, atol=1e-5)
            assert ours.num_batches_tracked == ref.num_batches_tracked == 1


@pytest.mark.parametrize("shape", [(7, 5), (6, 4, 5, 5)])
def test_batchnorm_tangent_and_its_hand_written_backward_are_exact(shape: tuple[int, ...]) -> None:
    # The training-mode BatchNorm tangent runs on torch's fused kernels with a backward written by hand:
    # its forward must equal forward-mode AD through F.batch_norm, its backward float64 finite differences.
    torch.manual_seed(0)
    x, t = torch.randn(2, *shape, dtype=torch.float64).unbind(0)
    weight, bias = torch.randn(2, shape[1], dtype=torch.float64).unbind(0)
    memory_format = torch.channels_last if len(shape) == 4 else torch.contiguous_format
    xt = torch.cat([x, t]).contiguous(memory_format=memory_format).requires_grad_()

    def batchnorm(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.batch_norm(x, None, None, weight, bias, training=True)

    y_ref, dy_ref = torch.func.jvp(batchnorm, (x,), (t,))
    out, _, _ = BatchNormWithTangent.apply(xt, weight, bias, 1e-5)
    assert torch.allclose(out, torch.cat([y_ref, dy_ref]), atol=1e-10)
    inputs = (xt, weight.clone().requires_grad_(), bias.clone().requires_grad_())
    assert torch.autograd.gradcheck(lambda *a: BatchNormWithTangent.apply(*a, 1e-5)[0], inputs)
