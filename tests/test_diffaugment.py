"""DiffAugment for AEAI's discriminator: shifts and cutouts that keep the gradient flowing to the generator."""

from __future__ import annotations

import torch

from toolkit.aeai.diffaugment import cutout, diff_augment, translate


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
