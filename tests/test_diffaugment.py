"""DiffAugment for AEAI's discriminator: shifts and cutouts that keep the gradient flowing to the generator."""

from __future__ import annotations

import pytest
import torch

from toolkit.aeai.diffaugment import ADA_IMAGES, AdaptiveProbability, cutout, diff_augment, maybe, translate


def test_translation_shifts_content_and_fills_with_zeros() -> None:
    torch.manual_seed(0)
    x = torch.zeros(64, 1, 16, 16)
    x[:, :, 8, 8] = 1.0  # one bright pixel in the middle
    moved = translate(x)
    assert moved.shape == x.shape and torch.all(moved.sum((1, 2, 3)) == 1)  # 2-pixel shifts keep it inside
    ys, xs = (moved[:, 0] == 1).nonzero()[:, 1], (moved[:, 0] == 1).nonzero()[:, 2]
    assert ys.min() >= 6 and ys.max() <= 10 and xs.min() >= 6 and xs.max() <= 10
    assert len(set(zip(ys.tolist(), xs.tolist(), strict=True))) > 5  # shifts differ from image to image
    edge = translate(torch.ones(64, 1, 16, 16))
    assert edge.min() == 0 and edge.max() == 1  # what comes in from outside is black


def test_cutout_erases_a_quarter_of_each_image() -> None:
    out = cutout(torch.ones(8, 3, 16, 16))
    assert torch.all((out == 0).float().mean((1, 2, 3)) == 0.25)  # an 8x8 square of a 16x16 image


def test_diff_augment_passes_the_gradient_back() -> None:
    x = torch.rand(4, 3, 16, 16, requires_grad=True)
    diff_augment(x).sum().backward()
    assert x.grad is not None and x.grad.sum() > 0 and set(x.grad.unique().tolist()) <= {0.0, 1.0}


def test_each_augmentation_reaches_a_share_p_of_the_images() -> None:
    torch.manual_seed(0)
    x = torch.ones(4000, 1, 8, 8)
    erased = (maybe(cutout(x), x, torch.tensor(0.3)) == 0).any((1, 2, 3)).float().mean()
    assert abs(erased - 0.3) < 0.03
    assert torch.equal(diff_augment(x, 0.0), x) and torch.equal(diff_augment(x, torch.tensor(0.0)), x)
    assert (diff_augment(x, 1.0) == 0).any((1, 2, 3)).all()  # p = 1: DiffAugment, a cutout in every image


def test_ada_raises_p_while_d_is_sure_of_the_real_images_and_lowers_it_at_chance() -> None:
    ada = AdaptiveProbability(target=0.6)
    confident = torch.ones(50)  # sign +1 for every real image: r_t = 1 > 0.6
    for _ in range(10):
        ada.update(confident)
    assert ada.p.item() == pytest.approx(10 * 50 / ADA_IMAGES)
    unsure = torch.tensor([1.0, -1.0] * 25)  # r_t = 0 < 0.6
    for _ in range(30):
        ada.update(unsure)
    assert ada.p.item() == 0.0  # moved down, and held at 0
