"""A torch `Dataset` over a dataset file, opened lazily in each DataLoader worker."""

from __future__ import annotations

import os
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


class H5ImageDataset(Dataset):
    """Items are (image float (3, H, W) in [0, 1], params float (P,), label int).

    Only the path travels to worker processes; each worker opens its own h5py handle on first use,
    since an HDF5 handle must not be shared across a fork.
    """

    def __init__(self, path: Path | str, indices: np.ndarray | None = None) -> None:
        self.info = open_dataset(path)
        self.path = self.info.path
        self.indices = np.arange(self.info.n) if indices is None else np.asarray(indices, dtype=np.int64)
        self._file: h5py.File | None = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def _images(self) -> h5py.Dataset:
        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file["images"]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        row = int(self.indices[i])
        image = torch.from_numpy(self._images()[row]).permute(2, 0, 1).float().div_(255.0)
        return image, torch.from_numpy(self.info.params[row]), int(self.info.labels[row])

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_file"] = None  # h5py handles cannot be pickled to spawned workers
        return state
