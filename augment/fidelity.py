"""Label fidelity: does a generated image show what its label says?

A small CNN (the one the downstream benchmark trains) is fitted on real training images to predict their
generating factors (periodic ones as angles, through cos and sin) or, in a file without factors, their class.
It then scores each generated image: the error between what it predicts and the label `augment` wrote. Its
own error on held-out real images is the floor a perfect interpolator reaches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor, nn

from toolkit.datasets.params import param_difference
from toolkit.datasets.torch_dataset import to_float


class SmallCNN(nn.Module):
    """Four strided conv blocks, global average pooling, a linear head."""

    def __init__(self, outputs: int, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for c in (width, width, 2 * width, 2 * width):
            layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            c_in = c
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(c_in, outputs)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def fit_cnn(
    outputs: int,
    real: tuple[Tensor, Tensor],
    extra: tuple[Tensor, Tensor] | None,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
) -> SmallCNN:
    """Train a SmallCNN for `steps` steps (AdamW, one-cycle rate); with `extra`, half of every batch comes from
    it. Returns the model in eval mode."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = SmallCNN(outputs).to(memory_format=torch.channels_last)  # oneDNN's faster layout on CPUs
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    half = batch_size // 2 if extra is not None else batch_size
    model.train()
    if progress:
        progress(0, steps)
    for step in range(steps):
        pick = rng.integers(0, len(real[0]), size=half)
        x, y = real[0][pick], real[1][pick]
        if extra is not None:
            pick = rng.integers(0, len(extra[0]), size=batch_size - half)
            x, y = torch.cat([x, extra[0][pick]]), torch.cat([y, extra[1][pick]])
        loss = loss_fn(model(x.contiguous(memory_format=torch.channels_last)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if progress and (step + 1) % 10 == 0:
            progress(step + 1, steps)
    model.eval()
    return model


@torch.inference_mode()
def predict(model: nn.Module, x: Tensor) -> Tensor:
    """The model's outputs for a float image batch, 256 images at a time."""
    return torch.cat([model(chunk) for chunk in x.split(256)])


@dataclass
class FactorCodec:
    """Factors as regression targets: a periodic one as (cos, sin) of its angle, the others standardised."""

    periods: np.ndarray  # (P,) 0 = not periodic
    mean: np.ndarray  # (P,) of the training values (unused for periodic factors)
    std: np.ndarray  # (P,)

    @classmethod
    def fit(cls, params: np.ndarray, periods: np.ndarray) -> FactorCodec:
        params = np.asarray(params, np.float64)
        std = params.std(axis=0)
        return cls(np.asarray(periods, np.float64), params.mean(axis=0), np.where(std > 0, std, 1.0))

    @property
    def outputs(self) -> int:
        return int(sum(2 if p > 0 else 1 for p in self.periods))

    def encode(self, params: np.ndarray) -> Tensor:
        """(N, P) factor values -> (N, outputs) float32 targets."""
        columns = []
        for k, period in enumerate(self.periods):
            v = np.asarray(params[:, k], np.float64)
            if period > 0:
                angle = 2 * np.pi * v / period
                columns += [np.cos(angle), np.sin(angle)]
            else:
                columns.append((v - self.mean[k]) / self.std[k])
        return torch.from_numpy(np.stack(columns, axis=1).astype(np.float32))

    def decode(self, out: Tensor) -> np.ndarray:
        """(N, outputs) predictions -> (N, P) factor values; periodic ones in [0, period)."""
        out = out.detach().cpu().double().numpy()
        values, col = [], 0
        for k, period in enumerate(self.periods):
            if period > 0:
                values.append(np.mod(np.arctan2(out[:, col + 1], out[:, col]) * period / (2 * np.pi), period))
                col += 2
            else:
                values.append(out[:, col] * self.std[k] + self.mean[k])
                col += 1
        return np.stack(values, axis=1)

    def errors(self, out: Tensor, params: np.ndarray) -> np.ndarray:
        """(N, P) absolute errors of the predictions in the factors' units (periodic ones along the circle)."""
        return np.abs(param_difference(params, self.decode(out), self.periods))


@dataclass
class ScorerConfig:
    """How the label scorer is trained; recorded wherever it is used."""

    steps: int = 400
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0


@dataclass
class LabelScorer:
    """A CNN trained on real images that says how far an image's label is from what the image shows."""

    model: SmallCNN
    codec: FactorCodec | None  # None: a classifier of the labels
    param_names: list[str]
    cfg: ScorerConfig
    own_error: float | None = None  # mean error on held-out real images (None: none were held out)

    @property
    def unit(self) -> str:
        """What an error means: the largest factor error, in the factors' units, or 1 - p(written class)."""
        if self.codec is not None:
            return f"largest absolute error over {', '.join(self.param_names)} (their units)"
        return "1 - predicted probability of the written class"

    def factor_errors(self, images: np.ndarray, params: np.ndarray) -> np.ndarray:
        """(N, P) absolute error of each factor; only for a factor scorer."""
        assert self.codec is not None
        return self.codec.errors(predict(self.model, to_float(images)), params)

    def errors(self, images: np.ndarray, params: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """(N,) label error of each uint8 image against its written params (or label)."""
        if self.codec is not None:
            return self.factor_errors(images, params).max(axis=1)
        probs = predict(self.model, to_float(images)).softmax(dim=1).numpy()
        return 1.0 - probs[np.arange(len(labels)), np.asarray(labels, np.int64)]

    def describe(self) -> dict:
        """The scorer's settings and own error, for a report or a file's attributes."""
        kind = "factor regressor" if self.codec is not None else "label classifier"
        return {"kind": kind, "factors": self.param_names, "unit": self.unit, "own_error": self.own_error,
                **asdict(self.cfg)}  # fmt: skip


def train_scorer(
    train: tuple[np.ndarray, np.ndarray, np.ndarray],
    held_out: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    periods: np.ndarray,
    param_names: list[str],
    n_classes: int,
    cfg: ScorerConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> LabelScorer:
    """Fit the scorer on real (images uint8 NHWC, params, labels); measure its own error on `held_out`."""
    cfg = cfg or ScorerConfig()
    images, params, labels = train
    x = to_float(images)
    if param_names:
        codec = FactorCodec.fit(params, periods)
        y, outputs, loss = codec.encode(params), codec.outputs, nn.functional.mse_loss
    else:
        codec, outputs, loss = None, max(n_classes, 1), nn.functional.cross_entropy
        y = torch.from_numpy(np.asarray(labels, np.int64))
    model = fit_cnn(outputs, (x, y), None, loss, cfg.steps, cfg.batch_size, cfg.lr, cfg.seed, progress)
    scorer = LabelScorer(model, codec, list(param_names), cfg)
    if held_out is not None and len(held_out[0]):
        scorer.own_error = float(scorer.errors(*held_out).mean())
    return scorer


def fidelity_summary(scorer: LabelScorer, read: Callable[[np.ndarray], np.ndarray], params: np.ndarray,
                     labels: np.ndarray) -> dict:  # fmt: skip
    """Mean and median label error of a file's generated images (`read(rows)` gives them), and the mean error
    of each factor."""
    per_image, per_factor = [], []
    for start in range(0, len(labels), 1000):
        rows = np.arange(start, min(start + 1000, len(labels)))
        if scorer.codec is not None:
            per_factor.append(scorer.factor_errors(read(rows), params[rows]))
            per_image.append(per_factor[-1].max(axis=1))
        else:
            per_image.append(scorer.errors(read(rows), params[rows], labels[rows]))
    errors = np.concatenate(per_image)
    summary = {"images": int(len(errors)), "mean": float(errors.mean()), "median": float(np.median(errors))}
    if per_factor:
        means = np.concatenate(per_factor).mean(axis=0)
        summary["per_factor"] = dict(zip(scorer.param_names, map(float, means), strict=True))
    return summary
