"""Does augmentation help a downstream model? The same small CNN trained with each kind of extra data.

Task "pole": regress the light direction from the image. Train on a sparse grid (every 4th azimuth, all
elevations), test on the held-out azimuths; metric: mean angle between predicted and true directions.
Task "turntable": classify the object from views 30 degrees apart, test on the other views; metric: error
rate. The interpolation models are trained on the sparse training images only, so no test image reaches
them. Arms:
  real         the sparse real images only
  photometric  + albumentations photometric transforms of the real images (labels unchanged)
  mixup        + pixel-space cross-dissolves of the same pairs and alphas the latent arms use (the same
               generator, seed and settings, with a model whose latent is the pixels)
  ae           + decoded latent interpolations of a plain autoencoder
  aeai         + decoded latent interpolations of AEAI
  aeai-no-d, aeai-no-c, aeai-no-s   (on request) the same with one of AEAI's terms dropped, as the paper's
               ablations: which term helps or hurts the downstream model
Every arm gets the same CNN, the same number of optimisation steps and the same seeds; in arms with extra
data half of every batch is real and half extra, so the arms differ only in what the extra half holds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from toolkit.aeai.config import TrainConfig, method_settings, sparse_checkpoints
from toolkit.aeai.run import load_run
from toolkit.augment.generate import AugmentConfig, generate
from toolkit.datasets import DatasetInfo, DatasetSpec, H5Writer, open_dataset
from toolkit.datasets.torch_dataset import to_float
from toolkit.errors import UserError
from toolkit.evaluate.dissolve import PixelDissolve
from toolkit.experiments.downstream_plan import SPARSE_STEP, DownstreamConfig
from toolkit.experiments.runs import train_or_resume
from toolkit.progress import Log, Progress, ProgressFactory, no_progress


def sparse_split(data: DatasetInfo, task: str) -> tuple[np.ndarray, np.ndarray]:
    """Train and test rows: pole, every 4th azimuth of the grid; turntable, views 30 degrees apart."""
    if "azimuth_deg" not in data.param_names:
        raise UserError(f"{data.path}: the downstream tasks need an azimuth_deg parameter")
    azimuth = data.params[:, data.param_names.index("azimuth_deg")]
    if task == "pole":
        if "elevation_deg" not in data.param_names:
            raise UserError(f"{data.path}: the pole task needs elevation_deg and azimuth_deg (toolkit render-pole)")
        grid = np.unique(azimuth)
        train_azimuths = grid[::4]
        is_train = np.isin(azimuth, train_azimuths)
    else:
        is_train = np.isclose(np.mod(azimuth, SPARSE_STEP["turntable"]), 0.0)
    train, test = np.flatnonzero(is_train), np.flatnonzero(~is_train)
    if len(train) < 2 or len(test) < 1:
        raise UserError(f"{data.path}: too few images for the {task} task's sparse split")
    return train, test


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


class SmallCNN(nn.Module):
    """The downstream model: four strided conv blocks, global average pooling, a linear head."""

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


def _photometric():
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    import albumentations as A

    return A.Compose(
        [
            A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.8),
            A.RandomGamma(gamma_limit=(80, 120), p=0.5),
            A.HueSaturationValue(hue_shift_limit=5, sat_shift_limit=10, val_shift_limit=10, p=0.5),
            A.GaussNoise(std_range=(0.01, 0.04), p=0.5),
        ]
    )


def photometric_images(images: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n photometric variants of randomly chosen real images; returns (images, index of each source)."""
    rng = np.random.default_rng(seed)
    pipeline = _photometric()
    pipeline.set_random_seed(seed)
    source = rng.integers(0, len(images), size=n)
    return np.stack([pipeline(image=images[k])["image"] for k in source]), source


def targets_for(task: str, params: np.ndarray, labels: np.ndarray, names: list[str]) -> Tensor:
    """Pole: light directions (N, 3); turntable: class indices (N,)."""
    if task == "pole":
        return torch.from_numpy(light_direction(params, names))
    return torch.from_numpy(labels.astype(np.int64))


def train_and_score(
    task: str,
    real: tuple[Tensor, Tensor],
    extra: tuple[Tensor, Tensor] | None,
    test: tuple[Tensor, Tensor],
    n_classes: int,
    cfg: DownstreamConfig,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
) -> float:
    """Train the CNN for `cfg.steps` steps and return its test score (mean angular error, or error rate %)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    outputs = 3 if task == "pole" else n_classes
    model = SmallCNN(outputs).to(memory_format=torch.channels_last)  # oneDNN's faster layout on CPUs
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps)
    half = cfg.batch_size // 2 if extra is not None else cfg.batch_size
    model.train()
    for step in range(cfg.steps):
        pick = rng.integers(0, len(real[0]), size=half)
        x, y = real[0][pick], real[1][pick]
        if extra is not None:
            pick = rng.integers(0, len(extra[0]), size=cfg.batch_size - half)
            x, y = torch.cat([x, extra[0][pick]]), torch.cat([y, extra[1][pick]])
        out = model(x.contiguous(memory_format=torch.channels_last))
        loss = nn.functional.mse_loss(out, y) if task == "pole" else nn.functional.cross_entropy(out, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if progress and (step + 1) % 10 == 0:
            progress(step + 1, cfg.steps)
    model.eval()
    with torch.inference_mode():
        out = torch.cat([model(chunk) for chunk in test[0].split(256)])
    if task == "pole":
        return float(angular_error_deg(out, test[1]).mean())
    return float((out.argmax(1) != test[1]).float().mean() * 100)


@dataclass
class ArmResult:
    arm: str
    scores: list[float]

    @property
    def mean(self) -> float:
        return float(np.mean(self.scores))

    @property
    def std(self) -> float:
        return float(np.std(self.scores, ddof=1)) if len(self.scores) > 1 else 0.0


def summary_table(results: list[ArmResult], task: str) -> str:
    """A Markdown table: mean +- std per arm, and the change against real only."""
    metric = "mean angular error (deg)" if task == "pole" else "test error rate (%)"
    base = next((r.mean for r in results if r.arm == "real"), None)
    lines = [f"| arm | {metric} | vs real only | seeds |", "|---|---|---|---|"]
    for r in results:
        change = f"{100 * (r.mean - base) / base:+.1f} %" if base else "—"
        lines.append(f"| {r.arm} | {r.mean:.2f} ± {r.std:.2f} | {change} | {len(r.scores)} |")
    return "\n".join(lines)


def config_dict(cfg: DownstreamConfig) -> dict:
    return asdict(cfg)


def write_subset(data: DatasetInfo, rows: np.ndarray, out: Path) -> DatasetInfo:
    """A dataset file holding only `rows` of `data` (the sparse training images the interpolators see)."""
    if out.exists():
        return open_dataset(out)
    spec = DatasetSpec(
        data.image_size,
        data.param_names,
        data.periods.tolist(),
        data.label_names,
        {**data.settings, "subset_of": str(data.path.resolve()), "subset_rows": int(len(rows))},
    )
    writer = H5Writer(out, spec)
    for start in range(0, len(rows), 256):
        chunk = rows[start : start + 256]
        writer.append(data.read_images(chunk), data.params[chunk], data.labels[chunk])
    return open_dataset(writer.close())


def train_interpolator(
    arm: str, subset: Path, run_dir: Path, cfg: DownstreamConfig, device: str, progress: Progress | None
) -> Path:
    """Train the arm's model (a method or an AEAI ablation) on the sparse subset into `run_dir`, continuing a
    run that was interrupted."""
    # An epoch of the 144 sparse images is 3 steps: a checkpoint each would cost more than the steps.
    config = TrainConfig(
        data=str(subset),
        epochs=cfg.interp_epochs,
        seed=0,
        device=device,
        checkpoint_every=sparse_checkpoints(cfg.interp_epochs),
        **method_settings(arm),
    )
    train_or_resume(config, run_dir, progress)
    return run_dir


def make_extra(
    arm: str, subset: DatasetInfo, work: Path, cfg: DownstreamConfig, device: str, bar: ProgressFactory
) -> Path:
    """The augmented file of a latent or mixup arm: `cfg.n_extra` images between neighbour pairs."""
    out = work / f"extra-{arm}.h5"
    if out.exists():
        return out
    if arm == "mixup":
        model, provenance = PixelDissolve(), {"method": "pixel-mixup"}
    else:
        with bar(f"train {arm}", "img") as update:
            run = train_interpolator(arm, subset.path, work / f"interp-{arm}", cfg, device, update)
        loaded = load_run(run, device=device)
        model, provenance = loaded.model, {"method": loaded.method, "run": str(run)}
    augment = AugmentConfig(n=cfg.n_extra, seed=0, max_gap=cfg.max_gap or SPARSE_STEP[cfg.task])
    rows = np.arange(subset.n)  # every row of the subset is a sparse training image
    with bar(f"extra {arm}", "img") as update:
        return generate(model, subset, rows, out, augment, provenance, torch.device(device), progress=update)


def run_benchmark(
    data_path: Path,
    work: Path,
    cfg: DownstreamConfig,
    device: str = "cpu",
    log: Log = print,
    bar: ProgressFactory = no_progress,
) -> dict:
    """Run every arm for every seed; results so far are kept in `work`, so a rerun continues."""
    cfg.validate()
    data = open_dataset(data_path)
    train_rows, test_rows = sparse_split(data, cfg.task)
    work.mkdir(parents=True, exist_ok=True)
    subset = write_subset(data, train_rows, work / "sparse-train.h5")
    log(f"{cfg.task}: {len(train_rows)} sparse training images, {len(test_rows)} test images")

    def tensors(images: np.ndarray, params: np.ndarray, labels: np.ndarray) -> tuple[Tensor, Tensor]:
        return to_float(images), targets_for(cfg.task, params, labels, data.param_names)

    real = tensors(subset.read_images(), subset.params, subset.labels)
    test = tensors(data.read_images(test_rows), data.params[test_rows], data.labels[test_rows])
    scores_path = work / "scores.jsonl"
    done = {}
    if scores_path.exists():
        for line in scores_path.read_text().splitlines():
            row = json.loads(line)
            done[(row["arm"], row["seed"])] = row["score"]
    results = []
    for arm in cfg.arms:
        extra = None
        if arm == "photometric":
            images, source = photometric_images(subset.read_images(), cfg.n_extra, seed=0)
            extra = tensors(images, subset.params[source], subset.labels[source])
        elif arm != "real":
            made = open_dataset(make_extra(arm, subset, work, cfg, device, bar))
            extra = tensors(made.read_images(), made.params, made.labels)
        scores = []
        for seed in range(cfg.seeds):
            if (arm, seed) not in done:
                with bar(f"{arm} seed {seed}", "step") as update:
                    score = train_and_score(cfg.task, real, extra, test, len(data.label_names), cfg, seed, update)
                with open(scores_path, "a") as f:
                    f.write(json.dumps({"arm": arm, "seed": seed, "score": score}) + "\n")
                done[(arm, seed)] = score
            scores.append(done[(arm, seed)])
            log(f"  {arm:12s} seed {seed}: {scores[-1]:.3f}")
        results.append(ArmResult(arm, scores))
    return {
        "task": cfg.task,
        "data": str(data.path),
        "metric": "mean angular error (deg)" if cfg.task == "pole" else "test error rate (%)",
        "config": config_dict(cfg),
        "train_images": int(len(train_rows)),
        "test_images": int(len(test_rows)),
        "arms": {r.arm: {"mean": r.mean, "std": r.std, "scores": r.scores} for r in results},
        "table": summary_table(results, cfg.task),
    }
