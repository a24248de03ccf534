"""A torch `Dataset` over a dataset file, opened lazily in each DataLoader worker, with an optional transform
(albumentations or torchvision) applied to each item as it is read."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from toolkit.datasets.h5 import open_dataset


def to_float(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 (n, H, W, 3) -> float (n, 3, H, W) in [0, 1] on `device`: how the nets see a file's images."""
    return torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float().div_(255.0)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """float (n, 3, H, W) in [0, 1] -> uint8 (n, H, W, 3): how decoded images are stored."""
    return images.clamp(0, 1).mul(255).round_().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def is_albumentations(transform: object) -> bool:
    """Whether `transform` is an albumentations transform or pipeline (called as `t(image=hwc_uint8)`).

    Decided by where its class (or a base class) is defined, so that albumentations is never imported for it.
    """
    return any(cls.__module__.split(".")[0] == "albumentations" for cls in type(transform).__mro__)


class H5ImageDataset(Dataset):
    """Items are (image float (3, H, W) in [0, 1], params float (P,), label int).

    `transform`, applied to each item as it is read, is either an albumentations transform or pipeline,
    called as `transform(image=uint8 (H, W, 3))["image"]` (numpy HWC, or a CHW tensor after ToTensorV2), or
    any callable on the float (3, H, W) tensor, such as a torchvision transform. Parameters and labels are
    served as stored: a transform that moves content (a flip, a rotation) changes what they mean.

    Only the path travels to worker processes; each worker opens its own h5py handle on first use,
    since an HDF5 handle must not be shared across a fork.
    """

    def __init__(self, path: Path | str, indices: np.ndarray | None = None, transform: Callable | None = None) -> None:
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable, got {type(transform).__name__}")
        self.info = open_dataset(path)
        self.path = self.info.path
        self.indices = np.arange(self.info.n) if indices is None else np.asarray(indices, dtype=np.int64)
        self.transform = transform
        self._albumentations = transform is not None and is_albumentations(transform)
        self._file: h5py.File | None = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def _images(self) -> h5py.Dataset:
        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
            worker = torch.utils.data.get_worker_info()
            if worker is not None and self._albumentations:
                # albumentations keeps its own generator, copied as it is into every forked worker: without a
                # seed per worker (torch's, new each epoch) all workers would draw the same augmentations.
                self.transform.set_random_seed(worker.seed % 2**32)
        return self._file["images"]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        row = int(self.indices[i])
        pixels = self._images()[row]  # uint8 (H, W, 3)
        if self._albumentations:
            image = _albumentations_output(self.transform(image=pixels)["image"])
        else:
            image = torch.from_numpy(pixels).permute(2, 0, 1).float().div_(255.0)
            if self.transform is not None:
                image = self.transform(image)
        return image, torch.from_numpy(self.info.params[row]), int(self.info.labels[row])

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_file"] = None  # h5py handles cannot be pickled to spawned workers
        return state


def _albumentations_output(image: np.ndarray | torch.Tensor) -> torch.Tensor:
    """What an albumentations pipeline returns -> float (3, H, W): uint8 scaled to [0, 1], floats (after
    Normalize) kept as they are; numpy HWC or, after ToTensorV2, a CHW tensor."""
    if isinstance(image, np.ndarray):
        image = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)  # flips leave negative strides
    return image.float().div_(255.0) if image.dtype == torch.uint8 else image.float()
