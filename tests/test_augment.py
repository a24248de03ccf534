"""Augmentation: label interpolation, pair sampling, provenance, determinism, resume and the combined Dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import write_dataset
from toolkit.augment.dataset import real_and_augmented
from toolkit.augment.generate import AugmentConfig, generate
from toolkit.augment.sampling import PairMode, candidate_pairs
from toolkit.datasets import open_dataset, partial_path
from toolkit.datasets.params import interpolate_params, param_difference
from toolkit.errors import UserError
from toolkit.evaluate.dissolve import PixelDissolve


def test_periodic_labels_interpolate_across_zero() -> None:
    periods = np.array([0.0, 360.0])
    p_i = np.array([[45.0, 350.0], [80.0, 10.0], [60.0, 90.0]])
    p_j = np.array([[55.0, 10.0], [70.0, 350.0], [60.0, 270.0]])
    np.testing.assert_allclose(param_difference(p_i, p_j, periods), [[10, 20], [-10, -20], [0, -180]])
    mid = interpolate_params(p_i, p_j, np.array([0.5, 0.25, 0.0]), periods)
    np.testing.assert_allclose(mid, [[50, 0], [77.5, 5], [60, 90]])
    end = interpolate_params(p_i, p_j, np.ones(3), periods)
    np.testing.assert_allclose(end, [[55, 10], [70, 350], [60, 270]])


def test_neighbour_pairs_respect_gap_and_labels() -> None:
    azimuth = np.tile(np.arange(0, 360, 10.0), 2)[:, None]  # two objects x 36 views
    labels = np.repeat([0, 1], 36)
    rows = np.arange(72)
    pairs = candidate_pairs(rows, azimuth, labels, np.array([360.0]), PairMode.neighbors, max_gap=20)
    assert (labels[pairs[:, 0]] == labels[pairs[:, 1]]).all()
    gaps = np.abs(param_difference(azimuth[pairs[:, 0]], azimuth[pairs[:, 1]], np.array([360.0])))
    assert gaps.max() <= 20 and (pairs[:, 0] != pairs[:, 1]).all()
    assert len(pairs) == 72 * 4  # each view: two neighbours on each side, across 0/360 too
    assert [0, 35] in pairs.tolist()  # 0 and 350 degrees are 10 apart
    everything = candidate_pairs(rows, azimuth, labels, np.array([360.0]), PairMode.random, max_gap=20)
    assert len(everything) == 2 * 36 * 35
    with pytest.raises(UserError, match="raise --max-gap"):
        candidate_pairs(rows, azimuth, labels, np.array([360.0]), PairMode.neighbors, max_gap=5)


def _generate(data_path: Path, out: Path, n: int = 40, seed: int = 0, **kw) -> Path:
    data = open_dataset(data_path)
    rows = np.arange(2, data.n)  # as if rows 0 and 1 were test images
    cfg = AugmentConfig(n=n, seed=seed, batch_size=16, max_gap=90, **kw)
    return generate(PixelDissolve(), data, rows, out, cfg, {"method": "pixels"}, torch.device("cpu"))


def test_provenance_points_at_the_source_images(tiny_dataset: Path, tmp_path: Path) -> None:
    out = _generate(tiny_dataset, tmp_path / "aug.h5")
    real, aug = open_dataset(tiny_dataset), open_dataset(out)
    assert aug.n == 40 and aug.image_size == real.image_size and aug.label_names == real.label_names
    source = aug.extra["source_index"]
    alpha = aug.extra["alpha"]
    assert source.min() >= 2, "a held-out row was used"
    assert ((0 <= alpha) & (alpha <= 1)).all()
    # With pixel codes the decoded image is the cross-dissolve of the two source images: a known answer.
    x_i = real.read_images(source[:, 0]).astype(np.float64)
    x_j = real.read_images(source[:, 1]).astype(np.float64)
    expected = (1 - alpha[:, None, None, None]) * x_i + alpha[:, None, None, None] * x_j
    assert np.abs(aug.read_images().astype(np.float64) - expected).max() <= 1.0
    np.testing.assert_array_equal(aug.labels, real.labels[source[:, 0]])
    np.testing.assert_allclose(
        aug.params, interpolate_params(real.params[source[:, 0]], real.params[source[:, 1]], alpha, real.periods)
    )
    settings = aug.settings
    assert settings["seed"] == 0 and settings["method"] == "pixels" and settings["pairs"] == "neighbors"


def test_same_seed_same_file_and_other_seed_differs(tiny_dataset: Path, tmp_path: Path) -> None:
    a = open_dataset(_generate(tiny_dataset, tmp_path / "a.h5", seed=3))
    b = open_dataset(_generate(tiny_dataset, tmp_path / "b.h5", seed=3))
    c = open_dataset(_generate(tiny_dataset, tmp_path / "c.h5", seed=4))
    np.testing.assert_array_equal(a.read_images(), b.read_images())
    np.testing.assert_array_equal(a.extra["source_index"], b.extra["source_index"])
    assert not np.array_equal(a.extra["alpha"], c.extra["alpha"])


def test_interrupted_generation_resumes_to_the_same_file(tiny_dataset: Path, tmp_path: Path) -> None:
    whole = open_dataset(_generate(tiny_dataset, tmp_path / "whole.h5"))
    out = tmp_path / "resumed.h5"

    def stop_after_two_batches(done: int, total: int) -> None:
        if done >= 32:
            raise KeyboardInterrupt

    data = open_dataset(tiny_dataset)
    cfg = AugmentConfig(n=40, seed=0, batch_size=16, max_gap=90)
    with pytest.raises(KeyboardInterrupt):
        generate(
            PixelDissolve(),
            data,
            np.arange(2, data.n),
            out,
            cfg,
            {"method": "pixels"},
            torch.device("cpu"),
            progress=stop_after_two_batches,
        )
    assert not out.exists() and partial_path(out).exists()  # nothing half-written at the final name
    resumed = open_dataset(_generate(tiny_dataset, out))
    np.testing.assert_array_equal(resumed.read_images(), whole.read_images())
    np.testing.assert_array_equal(resumed.extra["alpha"], whole.extra["alpha"])
    assert not partial_path(out).exists()


def test_albumentations_pipeline_is_applied(tiny_dataset: Path, tmp_path: Path) -> None:
    import albumentations as A

    A.save(A.Compose([A.InvertImg(p=1.0)]), str(tmp_path / "invert.json"))  # photometric: labels stay true
    plain = open_dataset(_generate(tiny_dataset, tmp_path / "plain.h5"))
    data = open_dataset(tiny_dataset)
    cfg = AugmentConfig(n=40, seed=0, batch_size=16, max_gap=90)
    inverted = open_dataset(
        generate(
            PixelDissolve(),
            data,
            np.arange(2, data.n),
            tmp_path / "invert.h5",
            cfg,
            {"method": "pixels"},
            torch.device("cpu"),
            transform_path=tmp_path / "invert.json",
        )
    )
    np.testing.assert_array_equal(inverted.read_images(), 255 - plain.read_images())
    assert "InvertImg" in json.dumps(inverted.settings)


def test_bad_n_is_refused(tiny_dataset: Path, tmp_path: Path) -> None:
    for n in (0, -5):
        with pytest.raises(UserError, match="--n must be a positive"):
            _generate(tiny_dataset, tmp_path / "x.h5", n=n)


def test_combined_dataset_serves_real_then_augmented(tiny_dataset: Path, tmp_path: Path) -> None:
    aug = _generate(tiny_dataset, tmp_path / "aug.h5")
    both = real_and_augmented(tiny_dataset, aug, real_indices=np.arange(2, 16))
    assert len(both) == 14 + 40
    image, params, label = both[14]
    first_aug = open_dataset(aug)
    torch.testing.assert_close(image, torch.from_numpy(first_aug.read_images([0])[0]).permute(2, 0, 1) / 255)
    assert label == first_aug.labels[0]
    loader = torch.utils.data.DataLoader(both, batch_size=8, shuffle=True, num_workers=2)
    assert sum(len(batch[0]) for batch in loader) == 54
    other = write_dataset(tmp_path / "other.h5", n_labels=3)
    with pytest.raises(UserError, match="label names differ"):
        real_and_augmented(other, aug)
