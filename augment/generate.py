"""Decode latent interpolations of real image pairs into a labelled, provenance-tracked dataset file.

Memory stays flat in `n`: the real images are encoded once, then every batch draws its pairs and alphas
from its own seeded generator, is decoded, and is appended to the file. The batch's generator depends only
on (seed, batch index), so an interrupted run resumes at the first unwritten batch and the finished file
equals an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from toolkit.augment.sampling import AlphaDist, PairMode, candidate_pairs, sample_alpha
from toolkit.datasets import DatasetInfo, DatasetSpec, H5Writer
from toolkit.datasets.params import interpolate_params
from toolkit.datasets.torch_dataset import to_float, to_uint8
from toolkit.errors import UserError

MAX_BATCHES_PER_FILL = 20  # with a label-error threshold: give up after 20x the batches an unfiltered file takes


@dataclass
class AugmentConfig:
    """What to generate; every field is recorded in the output file."""

    n: int
    seed: int = 0
    batch_size: int = 250
    pairs: PairMode = PairMode.neighbors
    max_gap: float = 20.0  # largest parameter difference of a neighbour pair, in the parameters' units
    alpha: AlphaDist = AlphaDist.uniform

    def validate(self) -> None:
        if self.n <= 0:
            raise UserError(f"--n must be a positive number of images, got {self.n}")
        if self.batch_size <= 0:
            raise UserError(f"--batch-size must be positive, got {self.batch_size}")
        if self.max_gap <= 0:
            raise UserError(f"--max-gap must be positive, got {self.max_gap:g}")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_transform(path: Path):
    """An albumentations pipeline saved with `albumentations.save` (JSON or YAML)."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # it would otherwise query the network on import
    import albumentations as A

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such transform file")
    data_format = "yaml" if path.suffix.lower() in {".yaml", ".yml"} else "json"
    try:
        return A.load(str(path), data_format=data_format)
    except Exception as e:  # albumentations raises many kinds for a bad file
        raise UserError(f"{path}: not an albumentations pipeline saved with albumentations.save ({e})") from None


def geometric_transforms(transform) -> list[str]:
    """Names of the transforms in an albumentations pipeline (nested Compose/OneOf/... included) that move
    image content: albumentations' DualTransforms (they move masks and boxes with the pixels: flips,
    rotations, affine, perspective, crops, distortions, resizes), except the dropouts, which only erase."""
    from albumentations.core.composition import BaseCompose
    from albumentations.core.transforms_interface import DualTransform, NoOp

    if isinstance(transform, BaseCompose):
        return [name for inner in transform.transforms for name in geometric_transforms(inner)]
    erases = type(transform).__module__.startswith("albumentations.augmentations.dropout.")
    moves = isinstance(transform, DualTransform) and not isinstance(transform, NoOp) and not erases
    return [type(transform).__name__] if moves else []


def check_label_preserving(transform, data: DatasetInfo, path: Path) -> None:
    """Refuse a pipeline that moves image content when the images carry parameters it would falsify.

    A flip or a rotation changes the light's azimuth and the viewpoint the copied labels state; photometric
    (ImageOnlyTransform) pipelines keep them true.
    """
    moving = geometric_transforms(transform)
    if moving and data.param_names:
        raise UserError(
            f"{path}: {moving[0]} moves image content, so the copied {', '.join(data.param_names)} labels would "
            "be wrong; use photometric (image-only) transforms"
        )


@torch.inference_mode()
def encode_rows(model, data: DatasetInfo, rows: np.ndarray, device: torch.device, batch_size: int) -> torch.Tensor:
    """Latent codes of dataset `rows`, in that order: (len(rows), latent)."""
    codes = []
    for start in range(0, len(rows), batch_size):
        codes.append(model.encode(to_float(data.read_images(rows[start : start + batch_size]), device)))
    return torch.cat(codes)


def generate(
    model,
    data: DatasetInfo,
    rows: np.ndarray,
    out: Path,
    cfg: AugmentConfig,
    provenance: dict,
    device: torch.device,
    transform_path: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    keep: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> Path:
    """Write `cfg.n` interpolated images between pairs of `rows` of `data` to `out`; returns `out`.

    `model` has `encode`, `decode` and `interpolate` (see `toolkit.aeai.run`). `provenance` (source
    dataset, checkpoint sha256, method, ...) is stored in the file's settings beside `cfg`. `keep(images,
    params, labels)` -> bool mask drops images (a label-fidelity threshold); batches are then drawn until `n`
    pass, and a resumed file replays its batches to find where it stopped.
    """
    cfg.validate()
    rows = np.sort(np.asarray(rows, np.int64))
    transform = load_transform(transform_path) if transform_path else None
    if transform is not None:
        check_label_preserving(transform, data, transform_path)
    pairs = candidate_pairs(rows, data.params, data.labels, data.periods, cfg.pairs, cfg.max_gap)  # (K, 2) rows
    settings = {
        **provenance,
        **{k: str(v) if isinstance(v, PairMode | AlphaDist) else v for k, v in asdict(cfg).items()},
        "transform": transform_path and Path(transform_path).read_text(),
        "source_rows": int(len(rows)),
    }
    spec = DatasetSpec(
        image_size=data.image_size,
        param_names=data.param_names,
        periods=data.periods.tolist(),
        label_names=data.label_names,
        settings=settings,
        extra_columns=["alpha", "source_index"],
    )
    writer = H5Writer(out, spec, resume=True)
    try:
        done = writer.rows
        if progress:
            progress(done, cfg.n)
        if done < cfg.n:
            codes = encode_rows(model, data, rows, device, cfg.batch_size)  # (len(rows), latent)
        passed = cfg.n if done >= cfg.n else 0  # images of the stream that passed `keep` (all, without it)
        for batch in itertools.count():
            start = batch * cfg.batch_size
            if passed >= cfg.n:
                break
            if keep is None and start < done:
                passed = start + cfg.batch_size
                continue
            if keep is not None and batch > MAX_BATCHES_PER_FILL * (cfg.n // cfg.batch_size + 1):
                raise UserError(
                    f"only {passed} of {cfg.n} generated images passed the label-error threshold after {batch} "
                    "batches; raise the threshold"
                )
            size = cfg.batch_size if keep is not None else min(cfg.batch_size, cfg.n - start)
            rng = np.random.default_rng([cfg.seed, batch])
            chosen = pairs[rng.integers(0, len(pairs), size=size)]  # (b, 2) dataset rows
            alpha = sample_alpha(rng, size, cfg.alpha)  # (b,)
            images = decode_interpolations(model, codes, np.searchsorted(rows, chosen), alpha, device)
            if transform is not None:
                transform.set_random_seed(cfg.seed * 1_000_003 + batch)
                images = np.stack([transform(image=image)["image"] for image in images])
                if images.shape[1:] != (data.image_size, data.image_size, 3) or images.dtype != np.uint8:
                    raise UserError(
                        f"{transform_path}: the pipeline turns images into {images.dtype} {images.shape[1:]}; "
                        f"use transforms that keep uint8 {data.image_size}x{data.image_size}x3"
                    )
            params = interpolate_params(data.params[chosen[:, 0]], data.params[chosen[:, 1]], alpha, data.periods)
            labels = data.labels[chosen[:, 0]]
            if keep is not None:
                mask = np.flatnonzero(keep(images, params, labels))[: cfg.n - passed]
                images, params, labels, alpha, chosen = (
                    images[mask],
                    params[mask],
                    labels[mask],
                    alpha[mask],
                    chosen[mask],
                )
            passed += len(images)
            if passed <= done:  # a resumed file holds these already
                continue
            new = slice(len(images) - (passed - max(done, passed - len(images))), None)
            writer.append(images[new], params[new], labels[new], alpha=alpha[new], source_index=chosen[new])
            if progress:
                progress(passed, cfg.n)
    except BaseException:
        writer.abort(keep=True)  # the .partial stays for the same command to resume
        raise
    return writer.close()


@torch.inference_mode()
def decode_interpolations(model, codes: torch.Tensor, positions: np.ndarray, alpha: np.ndarray, device) -> np.ndarray:
    """Decode interpolations between codes[positions[:, 0]] and codes[positions[:, 1]] as uint8 images."""
    index = torch.from_numpy(positions).to(device)
    a = torch.from_numpy(alpha).to(device=device, dtype=codes.dtype)
    z = model.interpolate(codes[index[:, 0]], codes[index[:, 1]], a)  # (b, latent)
    return to_uint8(model.decode(z))
