"""The downstream benchmark's protocol on any dataset file: which images train, which test, and what the CNN
predicts and is scored on.

Split: train on every k-th value of one factor's grid (all values of the others) and test on the held-out
values, or train on a seeded random fraction of the images. Targets: one factor (regressed; a periodic one as an
angle through cos and sin; scored by the mean absolute error in its units, along the circle when periodic), the
class label (classified; scored by the error rate in %), or the pole's light direction (elevation and azimuth as
a unit vector; scored by the mean angle between predicted and true directions).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from toolkit.augment.fidelity import FactorCodec
from toolkit.datasets import DatasetInfo
from toolkit.datasets.params import param_difference
from toolkit.errors import UserError
from toolkit.experiments.downstream_plan import Protocol


def split_factor_of(data: DatasetInfo, protocol: Protocol) -> str:
    """The factor whose grid is thinned out: the protocol's, or the first periodic factor, or the first one."""
    if protocol.split_factor is not None:
        if protocol.split_factor not in data.param_names:
            raise UserError(
                f"{data.path}: no factor '{protocol.split_factor}' to split on; it has "
                f"{', '.join(data.param_names) or 'no factors'} (or use --train-fraction)"
            )
        return protocol.split_factor
    if not data.param_names:
        raise UserError(f"{data.path}: its images have no factors to split on; use --train-fraction")
    periodic = [name for name, period in zip(data.param_names, data.periods, strict=True) if period > 0]
    return (periodic or data.param_names)[0]


def sparse_split(data: DatasetInfo, protocol: Protocol) -> tuple[np.ndarray, np.ndarray]:
    """Train and test rows: every k-th value of the split factor's grid (or a seeded fraction) and the rest."""
    if protocol.train_fraction is not None:
        rng = np.random.default_rng(0)
        is_train = np.zeros(data.n, bool)
        is_train[rng.permutation(data.n)[: int(round(protocol.train_fraction * data.n))]] = True
        how = f"a fraction of {protocol.train_fraction:g}"
    else:
        factor = split_factor_of(data, protocol)
        values = data.params[:, data.param_names.index(factor)]
        is_train = np.isin(values, np.unique(values)[:: protocol.every])
        how = f"every {protocol.every}th value of {factor}"
    train, test = np.flatnonzero(is_train), np.flatnonzero(~is_train)
    if len(train) < 2 or len(test) < 1:
        raise UserError(f"{data.path}: training on {how} leaves {len(train)} training and {len(test)} test images")
    return train, test


def default_max_gap(data: DatasetInfo, train: np.ndarray) -> float:
    """Neighbour pairs' largest gap: the typical spacing of the training values, the widest over the factors
    (pole, every 4th azimuth: 20 degrees; turntable, views 30 degrees apart: 30)."""
    gaps = [1.0]
    for k, period in enumerate(data.periods):
        values = np.unique(data.params[train, k].astype(np.float64))
        if len(values) < 2:
            continue
        steps = np.diff(values)
        if period > 0:
            steps = np.append(steps, values[0] + period - values[-1])
        gaps.append(float(np.median(steps)))
    return max(gaps)


def light_direction(params: np.ndarray, names: list[str]) -> np.ndarray:
    """Unit vectors (N, 3) of the light at (elevation, azimuth) in degrees."""
    elevation = np.radians(params[:, names.index("elevation_deg")])
    azimuth = np.radians(params[:, names.index("azimuth_deg")])
    return np.stack(
        [np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)], axis=1
    ).astype(np.float32)


def angular_error_deg(pred: Tensor, true: Tensor) -> Tensor:
    """Angle in degrees between predicted (any norm) and true unit directions, per image: (N, 3) -> (N,)."""
    cos = nn.functional.cosine_similarity(pred, true, dim=1).clamp(-1.0, 1.0)
    return torch.rad2deg(torch.arccos(cos))


class Target:
    """What the CNN predicts: targets from (params, labels), its loss, and its test score (lower is better)."""

    metric: str
    outputs: int

    def encode(self, params: np.ndarray, labels: np.ndarray) -> Tensor:
        raise NotImplementedError

    def loss(self, out: Tensor, y: Tensor) -> Tensor:
        return nn.functional.mse_loss(out, y)

    def score(self, out: Tensor, y: Tensor) -> float:
        raise NotImplementedError


class DirectionTarget(Target):
    """The pole's light direction as a unit vector; scored by the mean angular error."""

    metric = "mean angular error (deg)"
    outputs = 3

    def __init__(self, names: list[str]) -> None:
        self.names = names

    def encode(self, params: np.ndarray, labels: np.ndarray) -> Tensor:
        return torch.from_numpy(light_direction(params, self.names))

    def score(self, out: Tensor, y: Tensor) -> float:
        return float(angular_error_deg(out, y).mean())


class LabelTarget(Target):
    """The class; scored by the test error rate in %."""

    metric = "test error rate (%)"

    def __init__(self, n_classes: int) -> None:
        self.outputs = n_classes

    def encode(self, params: np.ndarray, labels: np.ndarray) -> Tensor:
        return torch.from_numpy(labels.astype(np.int64))

    def loss(self, out: Tensor, y: Tensor) -> Tensor:
        return nn.functional.cross_entropy(out, y)

    def score(self, out: Tensor, y: Tensor) -> float:
        return float((out.argmax(1) != y).float().mean() * 100)


class FactorTarget(Target):
    """One factor (periodic: as cos, sin of its angle; else standardised on the training values); scored by the
    mean absolute error in its units."""

    def __init__(self, name: str, column: int, period: float, train_values: np.ndarray) -> None:
        self.column, self.period = column, period
        self.codec = FactorCodec.fit(train_values[:, None], np.array([period]))
        self.outputs = self.codec.outputs
        self.metric = f"mean absolute error of {name}"

    def encode(self, params: np.ndarray, labels: np.ndarray) -> Tensor:
        return self.codec.encode(params[:, self.column : self.column + 1])

    def score(self, out: Tensor, y: Tensor) -> float:
        true = self.codec.decode(y)  # (N, 1), exact back from the encoding
        return float(np.abs(param_difference(true, self.codec.decode(out), self.codec.periods)).mean())


def make_target(data: DatasetInfo, target: str, train: np.ndarray) -> Target:
    """The Target named `target` on `data` (a factor, "label" or "direction"), fitted on the training rows."""
    if target == "label":
        if len(data.label_names) < 2:
            raise UserError(f"{data.path}: --target label needs at least two classes, it has {len(data.label_names)}")
        return LabelTarget(len(data.label_names))
    if target == "direction":
        missing = {"elevation_deg", "azimuth_deg"} - set(data.param_names)
        if missing:
            raise UserError(
                f"{data.path}: --target direction needs elevation_deg and azimuth_deg (toolkit render-pole)"
            )
        return DirectionTarget(data.param_names)
    if target not in data.param_names:
        choices = ", ".join(
            [*data.param_names, "label"] + (["direction"] if "elevation_deg" in data.param_names else [])
        )
        raise UserError(f"{data.path}: no factor '{target}' to predict; --target takes one of {choices}")
    column = data.param_names.index(target)
    return FactorTarget(target, column, float(data.periods[column]), data.params[train, column])
