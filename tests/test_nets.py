"""The shared networks: shapes for every supported image size, outputs in [0, 1], interpolation."""

from __future__ import annotations

import pytest
import torch
import torch.autograd.forward_ad as fwAD

from toolkit.aeai.nets import Autoencoder, BatchNorm1d, BatchNorm2d, Discriminator
from toolkit.errors import UserError


@pytest.mark.parametrize("size", [32, 64, 128])
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


def test_discriminator_gives_one_logit_per_image() -> None:
    assert Discriminator(32, width=4)(torch.rand(5, 3, 32, 32)).shape == (5,)


def test_unsupported_image_size_is_a_user_error() -> None:
    with pytest.raises(UserError, match="image size 48"):
        Autoencoder(48)


def test_interpolate_endpoints_and_per_pair_alpha() -> None:
    z_i, z_j = torch.zeros(2, 4), torch.ones(2, 4)
    assert torch.equal(Autoencoder.interpolate(z_i, z_j, 0.0), z_i)
    assert torch.equal(Autoencoder.interpolate(z_i, z_j, 1.0), z_j)
    z = Autoencoder.interpolate(z_i, z_j, torch.tensor([0.25, 0.75]))
    assert torch.allclose(z[:, 0], torch.tensor([0.25, 0.75]))


@pytest.mark.parametrize("cls, shape", [(BatchNorm2d, (8, 4, 5, 5)), (BatchNorm1d, (8, 4))])
def test_tangent_safe_batchnorm_matches_torch(cls: type, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    ours, reference = cls(4), getattr(torch.nn, cls.__name__)(4)
    x, t = torch.randn(shape), torch.randn(shape)
    with fwAD.dual_level():
        y, dy = fwAD.unpack_dual(ours(fwAD.make_dual(x, t)))
        y_ref, dy_ref = fwAD.unpack_dual(reference(fwAD.make_dual(x, t)))
    assert torch.allclose(y, y_ref, atol=1e-5) and torch.allclose(dy, dy_ref, atol=1e-4)
    assert torch.allclose(ours.running_mean, reference.running_mean)
    assert torch.allclose(ours.running_var, reference.running_var)
    assert ours.num_batches_tracked == reference.num_batches_tracked == 1
