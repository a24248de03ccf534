"""Transforms: albumentations and torchvision pipelines on H5ImageDataset items, and `augment --transform`, which
refuses pipelines that move image content when the images carry parameters."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import invoke_cli, train_tiny_run, write_dataset
from toolkit.datasets import DatasetSpec, H5Writer, open_dataset
from toolkit.datasets.torch_dataset import H5ImageDataset

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations would query the network on import
A = pytest.importorskip("albumentations")


def plain_item(path: Path, i: int) -> torch.Tensor:
    return H5ImageDataset(path)[i][0]


def test_albumentations_pipeline_runs_on_each_item(tiny_dataset: Path) -> None:
    pipeline = A.Compose([A.HorizontalFlip(p=1.0), A.InvertImg(p=1.0)])
    data = H5ImageDataset(tiny_dataset, indices=[3, 5], transform=pipeline)
    image, params, label = data[1]
    assert image.dtype == torch.float32 and image.shape == (3, 32, 32)
    torch.testing.assert_close(image, 1 - plain_item(tiny_dataset, 5).flip(-1))
    info = open_dataset(tiny_dataset)
    assert params.tolist() == info.params[5].tolist() and label == info.labels[5]


def test_albumentations_normalize_and_to_tensor_give_chw_floats(tiny_dataset: Path) -> None:
    from albumentations.pytorch import ToTensorV2

    pipeline = A.Compose([A.Normalize(mean=0.5, std=0.25, max_pixel_value=255.0), ToTensorV2()])
    image = H5ImageDataset(tiny_dataset, transform=pipeline)[2][0]
    torch.testing.assert_close(image, (plain_item(tiny_dataset, 2) - 0.5) / 0.25)


def test_torchvision_transforms_run_on_the_float_tensor(tiny_dataset: Path) -> None:
    from torchvision.transforms import RandomVerticalFlip, v2

    pipeline = v2.Compose([v2.RandomHorizontalFlip(p=1.0), v2.Normalize(mean=[0.5] * 3, std=[0.5] * 3)])
    image = H5ImageDataset(tiny_dataset, transform=pipeline)[4][0]
    torch.testing.assert_close(image, (plain_item(tiny_dataset, 4).flip(-1) - 0.5) / 0.5)
    classic = H5ImageDataset(tiny_dataset, transform=RandomVerticalFlip(p=1.0))[4][0]  # torchvision.transforms v1
    torch.testing.assert_close(classic, plain_item(tiny_dataset, 4).flip(-2))


def test_a_transform_must_be_callable(tiny_dataset: Path) -> None:
    with pytest.raises(TypeError, match="callable"):
        H5ImageDataset(tiny_dataset, transform="flip")


def test_dataloader_workers_draw_their_own_augmentations(tmp_path: Path) -> None:
    # Eight copies of one image: any difference between items is the transform's draw.
    spec = DatasetSpec(image_size=16, param_names=["azimuth_deg"], periods=[360.0], label_names=["obj"])
    writer = H5Writer(tmp_path / "same.h5", spec)
    writer.append(np.full((8, 16, 16, 3), 128, np.uint8), np.zeros((8, 1), np.float32), np.zeros(8, np.int64))
    data = H5ImageDataset(writer.close(), transform=A.RandomBrightnessContrast(p=1.0))
    loader = torch.utils.data.DataLoader(data, batch_size=1, num_workers=2)  # item 0 from worker 0, 1 from 1
    first, second = [images for images, _, _ in loader][:2]
    assert not torch.equal(first, second)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("run"))


def test_augment_refuses_a_flip_when_images_carry_parameters(tiny_run: Path, tmp_path: Path) -> None:
    A.save(
        A.Compose([A.RandomBrightnessContrast(), A.OneOf([A.HorizontalFlip(), A.Rotate()])]), str(tmp_path / "t.json")
    )
    out = tmp_path / "aug.h5"
    result = invoke_cli("augment", "--n", "8", "--run", str(tiny_run), "--max-gap", "90", "--out", str(out),
                        "--transform", str(tmp_path / "t.json"), "--device", "cpu")  # fmt: skip
    assert result.returncode == 1
    line = result.stdout + result.stderr
    assert "HorizontalFlip" in line and "azimuth_deg" in line and len(line.strip().splitlines()) == 1
    assert not out.exists()


def test_augment_applies_a_colour_jitter(tiny_run: Path, tmp_path: Path) -> None:
    A.save(A.Compose([A.ColorJitter(p=1.0), A.CoarseDropout(p=0.5)]), str(tmp_path / "jitter.json"))
    common = ["augment", "--n", "12", "--batch-size", "6", "--max-gap", "90", "--run", str(tiny_run), "--device", "cpu"]
    assert invoke_cli(*common, "--out", str(tmp_path / "plain.h5")).returncode == 0
    result = invoke_cli(*common, "--out", str(tmp_path / "jit.h5"), "--transform", str(tmp_path / "jitter.json"))
    assert result.returncode == 0, result.stdout + result.stderr
    plain, jittered = open_dataset(tmp_path / "plain.h5"), open_dataset(tmp_path / "jit.h5")
    assert jittered.read_images().shape == plain.read_images().shape
    assert not np.array_equal(jittered.read_images(), plain.read_images())
    np.testing.assert_array_equal(jittered.params, plain.params)  # labels as without the transform
    assert "ColorJitter" in jittered.settings["transform"]


def test_geometric_transforms_are_found_anywhere_in_a_pipeline() -> None:
    from toolkit.augment.generate import geometric_transforms

    pipeline = A.Compose(
        [
            A.ColorJitter(),
            A.OneOf([A.GaussNoise(), A.Sequential([A.Affine(), A.RandomResizedCrop(size=(32, 32))])]),
            A.CoarseDropout(),
            A.Transpose(),
            A.NoOp(),
        ]
    )
    assert geometric_transforms(pipeline) == ["Affine", "RandomResizedCrop", "Transpose"]
    assert geometric_transforms(A.Compose([A.ToGray(p=1), A.GridDropout(), A.Blur()])) == []


def test_a_dataset_without_parameters_may_be_flipped(tmp_path: Path) -> None:
    from toolkit.augment.generate import check_label_preserving

    flip = A.Compose([A.HorizontalFlip()])
    spec = DatasetSpec(image_size=16, param_names=[], periods=[], label_names=["obj"])
    writer = H5Writer(tmp_path / "bare.h5", spec)
    writer.append(np.zeros((2, 16, 16, 3), np.uint8), np.zeros((2, 0), np.float32), np.zeros(2, np.int64))
    check_label_preserving(flip, open_dataset(writer.close()), tmp_path / "flip.json")  # nothing to falsify
    with pytest.raises(Exception, match="HorizontalFlip moves image content"):
        check_label_preserving(flip, open_dataset(write_dataset(tmp_path / "views.h5")), tmp_path / "flip.json")
