"""AEAI's four loss terms: finite, of the right shape and sign; L_S's forward-mode derivative is exact."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from toolkit.aeai.config import TrainConfig
from toolkit.aeai.losses import (
    PerceptualLoss,
    adversarial_loss,
    discriminator_loss,
    latent_scale,
    mean_squared_error,
    r1_penalty,
    relative_cycle_loss,
    smoothness_loss,
    squared_error,
)
from toolkit.aeai.methods import METHODS
from toolkit.aeai.methods.aeai import gradient_norms
from toolkit.aeai.nets import Decoder
from toolkit.errors import UserError

TINY = {"latent": 8, "width": 4}


def aeai(**overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    return METHODS["aeai"](TrainConfig(**TINY, **overrides), 32)


def test_every_term_is_a_finite_non_negative_scalar() -> None:
    terms, disc, x_alpha = aeai().loss_terms(torch.rand(8, 3, 32, 32))
    assert set(terms) == {"L_R", "L_A", "L_C", "L_S"}
    for name, value in (terms | disc).items():
        assert value.shape == (), name
        assert torch.isfinite(value) and value >= 0, name
    assert all(terms[name] > 0 for name in terms)
    for name in ("D_acc", "D_acc_real", "D_acc_fake"):
        assert 0 <= disc[name] <= 1, name
    assert x_alpha.shape == (4, 3, 32, 32)  # 8 images -> 4 pairs, one alpha each


def test_per_item_losses_have_one_value_per_item() -> None:
    x, y = torch.rand(5, 3, 32, 32), torch.rand(5, 3, 32, 32)
    assert squared_error(x, y).shape == (5,) and torch.all(squared_error(x, y) > 0)
    assert torch.all(squared_error(x, x) == 0)
    assert torch.allclose(mean_squared_error(x, y), squared_error(x, y) / x[0].numel())
    z = torch.randn(5, 8)
    assert relative_cycle_loss(z, torch.randn(5, 8), latent_scale(z)).shape == (5,)
    assert smoothness_loss(torch.randn(5, 3, 32, 32)).shape == (5,)


def test_cycle_loss_cannot_be_met_by_shrinking_the_latent() -> None:
    # The decoder's Linear + BatchNorm head is blind to the codes' scale in training: an encoder that shrinks
    # its output c times shrinks an unnormalised cycle error c^2 times, with nothing learnt.
    z, z_cycle = torch.randn(6, 8), torch.randn(6, 8)
    full = relative_cycle_loss(z, z_cycle, latent_scale(z))
    shrunk = relative_cycle_loss(z / 100, z_cycle / 100, latent_scale(z / 100))
    assert torch.allclose(full, shrunk)
    # Nor by moving every code far from the origin: the unit is the codes' spread, not their mean square.
    shifted = relative_cycle_loss(z + 100, z_cycle + 100, latent_scale(z + 100))
    assert torch.allclose(full, shifted, rtol=1e-3)
    assert torch.allclose(relative_cycle_loss(z, z, latent_scale(z)), torch.zeros(6))


def test_cycle_loss_gradient_does_not_push_the_codes_smaller() -> None:
    # Invariant in value is not enough: with a detached unit the gradient along the codes' scale c was 2 L / c,
    # and training shrank the latent 3.6x. With the unit in the graph, d L / d c = 0 at every c.
    z, z_cycle = torch.randn(6, 8), torch.randn(6, 8)
    c = torch.tensor(1.0, requires_grad=True)
    loss = relative_cycle_loss(c * z, c * z_cycle, latent_scale(c * z)).sum()
    (grad,) = torch.autograd.grad(loss, c)
    assert loss > 1
    assert abs(grad) < 1e-5 * loss


def test_r1_penalty_is_half_the_squared_input_gradient() -> None:
    # D(x) = w . x has input gradient w for every image: R1 = ||w||^2 / 2, and it trains w.
    w = torch.tensor([3.0, 4.0], requires_grad=True)
    x = torch.randn(5, 2, requires_grad=True)
    penalty = r1_penalty(x @ w, x)
    assert torch.allclose(penalty, torch.tensor(12.5))
    penalty.backward()
    assert torch.allclose(w.grad, w.detach())


def test_adversarial_loss_is_non_saturating_minus_log_d() -> None:
    logits = torch.tensor([-30.0, 0.0, 3.0])
    expected = -torch.log(torch.sigmoid(logits.double())).float()
    assert torch.allclose(adversarial_loss(logits), expected)
    assert adversarial_loss(logits)[0] > 29  # a confident "fake" still gives a strong gradient, not log(0)


def test_discriminator_loss_is_low_when_it_is_right() -> None:
    right = discriminator_loss(torch.full((4,), 5.0), torch.full((4,), -5.0))
    wrong = discriminator_loss(torch.full((4,), -5.0), torch.full((4,), 5.0))
    assert 0 < right < 0.1 < wrong


def test_zero_lambdas_drop_their_terms_and_the_discriminator() -> None:
    method = aeai(lambda_a=0.0, lambda_c=0.0, lambda_s=0.0)
    terms, disc, _ = method.loss_terms(torch.rand(4, 3, 32, 32))
    assert set(terms) == {"L_R"} and set(disc) == {"latent_std"}
    assert method.extras == {} and set(method.configure_optimizers()) == {"model"}


def test_alpha_grid_sums_over_n_over_m() -> None:
    method = aeai(alpha_grid=4)
    alphas = method.sample_alphas(3, torch.device("cpu"))
    assert alphas.shape == (3, 5)
    assert torch.allclose(alphas[0], torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]))
    _, _, x_alpha = method.loss_terms(torch.rand(6, 3, 32, 32))
    assert x_alpha.shape == (15, 3, 32, 32)  # 3 pairs x 5 alphas


def _decoded(decoder: Decoder, z_i: torch.Tensor, dz: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return decoder(z_i + alpha[:, None] * dz)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_smoothness_derivative_matches_central_difference(mode: str) -> None:
    # float64 so that the finite difference itself is accurate. In train mode BatchNorm couples the batch:
    # the decoder's tangent is then the derivative when all alphas move together, and so is this difference.
    torch.manual_seed(0)
    decoder = Decoder(32, latent=8, width=4).double().train(mode == "train")
    z_i, z_j = torch.randn(6, 8, dtype=torch.float64), torch.randn(6, 8, dtype=torch.float64)
    dz = z_j - z_i
    alpha = torch.rand(6, dtype=torch.float64)
    momentum_free = [m for m in decoder.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for bn in momentum_free:
        bn.momentum = 0.0  # keep running stats fixed so that every call below sees the same function in eval
    x_alpha, dx_dalpha = decoder(z_i + alpha[:, None] * dz, dz)
    h = 1e-6  # small: ReLU kinks within a larger step spoil the difference, not the derivative
    central = (_decoded(decoder, z_i, dz, alpha + h) - _decoded(decoder, z_i, dz, alpha - h)) / (2 * h)
    assert torch.allclose(x_alpha, _decoded(decoder, z_i, dz, alpha), atol=1e-12)
    assert dx_dalpha.abs().max() > 1e-3  # not trivially zero
    assert torch.allclose(dx_dalpha, central, rtol=1e-5, atol=1e-8)


def test_smoothness_loss_is_differentiable_through_the_tangent() -> None:
    torch.manual_seed(0)
    decoder = Decoder(32, latent=8, width=4)
    z = torch.randn(4, 8, requires_grad=True)
    _, dx = decoder(z, torch.randn(4, 8))
    smoothness_loss(dx).sum().backward()
    grads = [p.grad for p in decoder.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_smoothness_gradient_matches_central_difference() -> None:
    # Backpropagating through the tangent must give the true parameter gradient of L_S in training mode;
    # torch's fused BatchNorm gets this wrong (which left the nets' outputs covered in noise).
    torch.manual_seed(0)
    decoder = Decoder(32, latent=8, width=4).double().train()
    z, dz = torch.randn(6, 8, dtype=torch.float64), torch.randn(6, 8, dtype=torch.float64)

    def loss() -> torch.Tensor:
        return decoder(z, dz)[1].square().sum()  # L_S in float64 (smoothness_loss is float32)

    params = list(decoder.parameters())
    loss().backward()
    direction = [torch.randn_like(p) for p in params]
    along = sum((p.grad * d).sum() for p, d in zip(params, direction, strict=True) if p.grad is not None)
    h = 1e-7  # small enough that no ReLU flips (L_S jumps where one does)
    with torch.no_grad():
        for p, d in zip(params, direction, strict=True):
            p.add_(h * d)
        plus = loss()
        for p, d in zip(params, direction, strict=True):
            p.sub_(2 * h * d)
        minus = loss()
    assert torch.allclose(along, (plus - minus) / (2 * h), rtol=1e-4)


def _vgg_features_file(path: Path) -> Path:
    from torchvision.models import vgg16

    torch.manual_seed(0)
    features = vgg16(weights=None).features[: PerceptualLoss.CUT]
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return path


def test_perceptual_loss_loads_weights_from_a_file(tmp_path: Path) -> None:
    loss = PerceptualLoss(_vgg_features_file(tmp_path / "vgg16.pth"))
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    assert loss(x, x).abs().max() == 0
    value = loss(x, y)
    assert value.shape == (2,) and torch.all(value > 0)
    assert not any(p.requires_grad for p in loss.parameters())


def test_perceptual_loss_refuses_pickled_objects(tmp_path: Path) -> None:
    bad = tmp_path / "evil.pth"
    torch.save({"features.0.weight": object()}, bad)
    with pytest.raises(UserError, match="not a readable VGG16 weights file"):
        PerceptualLoss(bad)


def test_training_step_logs_each_terms_decoder_gradient_every_few_steps() -> None:
    method = aeai(diagnostics_every=2)
    optimizers = method.configure_optimizers()
    x = torch.rand(8, 3, 32, 32)
    first, second, third = (method.training_step(x, optimizers) for _ in range(3))
    grads = {f"grad_{name}" for name in ("L_R", "L_A", "L_C", "L_S")}
    assert grads <= set(first) and grads <= set(third) and not grads & set(second)
    assert all(torch.isfinite(first[g]) and first[g] > 0 for g in grads)
    assert {"D_acc_real", "D_acc_fake", "latent_std"} <= set(second)
    # The norm is of the weighted term, at the decoder: doubling lambda_S doubles it, same weights and batch.
    norms = []
    for lambda_s in (0.1, 0.2):
        method = aeai(lambda_s=lambda_s)
        torch.manual_seed(1)
        terms, _, _ = method.loss_terms(x)
        norms.append(gradient_norms(method.weighted(terms), method.model.decoder))
    assert torch.allclose(norms[1]["grad_L_S"], 2 * norms[0]["grad_L_S"])
    assert torch.allclose(norms[1]["grad_L_R"], norms[0]["grad_L_R"])
