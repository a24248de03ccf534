"""Real and augmented files served together to a downstream model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch.utils.data import ConcatDataset

from toolkit.datasets import H5ImageDataset
from toolkit.errors import UserError


def real_and_augmented(
    real: Path | str, augmented: Path | str, real_indices: np.ndarray | None = None
) -> ConcatDataset:
    """One torch Dataset over real rows (all, or `real_indices`) followed by every augmented image.

    Items are (image float (3, H, W) in [0, 1], params (P,), label), the same for both parts; the files must
    agree on image size, parameters and label names.
    """
    real_ds = H5ImageDataset(real, real_indices)
    aug_ds = H5ImageDataset(augmented)
    r, a = real_ds.info, aug_ds.info
    for what, mine, theirs in [
        ("image size", r.image_size, a.image_size),
        ("parameters", r.param_names, a.param_names),
        ("label names", r.label_names, a.label_names),
    ]:
        if mine != theirs:
            raise UserError(f"{a.path} does not fit {r.path}: {what} differ ({theirs} vs {mine})")
    return ConcatDataset([real_ds, aug_ds])
