"""`toolkit augment`: turn a trained run into extra labelled training images."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from toolkit.augment.sampling import AlphaDist, PairMode
from toolkit.cli.options import DeviceChoice, DeviceOption, torch_device
from toolkit.cli.progress import console, progress_bar
from toolkit.errors import UserError


class SourceSplit(StrEnum):
    train = "train"
    all = "all"


def augment(
    n: Annotated[int, typer.Option(help="How many images to generate.")] = 5000,
    run: Annotated[Path, typer.Option(help="Run directory of a trained model.")] = Path("runs/latest"),
    data: Annotated[Path | None, typer.Option(help="Dataset file; default: the one the run was trained on.")] = None,
    out: Annotated[Path, typer.Option(help="Dataset file to write.")] = Path("data/augmented.h5"),
    seed: Annotated[int, typer.Option(help="Same seed, same file.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Images decoded per batch (and written per chunk).")] = 250,
    device: DeviceOption = DeviceChoice.auto,
    pairs: Annotated[
        PairMode, typer.Option(help="neighbors: same label, params within --max-gap; random: same label.")
    ] = PairMode.neighbors,
    max_gap: Annotated[float, typer.Option(help="Largest parameter difference of a neighbour pair (degrees).")] = 20.0,
    alpha: Annotated[
        AlphaDist, typer.Option(help="uniform: U[0,1]; center: Beta(2,2), away from the real images.")
    ] = AlphaDist.uniform,
    source: Annotated[
        SourceSplit, typer.Option(help="Pairs from the run's training split only, or from all images.")
    ] = SourceSplit.train,
    transform: Annotated[
        Path | None,
        typer.Option(
            help="albumentations pipeline (albumentations.save JSON/YAML) applied to each image: photometric "
            "transforms only when the images carry parameters (a flip or a rotation would falsify them)."
        ),
    ] = None,
) -> None:
    """Sample latent interpolations between pairs of real images and write them, labelled, to HDF5.

    Each image gets the class of its pair and the pair's parameters interpolated with its alpha (periodic
    ones on the circle); the file records alpha, the source pair, the dataset, the checkpoint's sha256,
    the method and the seed. An interrupted run resumes when the same command is run again.
    """
    from toolkit.augment.generate import AugmentConfig, generate, sha256_file
    from toolkit.files import DATASET_SUFFIXES, check_extension, check_writable_dir, output_lock

    cfg = AugmentConfig(n=n, seed=seed, batch_size=batch_size, pairs=pairs, max_gap=max_gap, alpha=alpha)
    cfg.validate()
    check_extension(out, DATASET_SUFFIXES, "a dataset file")
    check_writable_dir(out)

    from toolkit.aeai.run import load_run
    from toolkit.datasets import open_dataset

    chosen = torch_device(device)
    loaded = load_run(run, device=str(chosen))
    dataset = open_dataset(data or loaded.data_path)
    if dataset.image_size != loaded.image_size:
        raise UserError(
            f"{dataset.path} holds {dataset.image_size}px images, the run was trained on {loaded.image_size}px"
        )
    rows = loaded.split.train if source == SourceSplit.train else _all_rows(loaded, dataset)
    if rows.max() >= dataset.n:
        raise UserError(f"{dataset.path} has {dataset.n} images, fewer than the run's split refers to; wrong --data?")
    provenance = {
        "source_dataset": str(dataset.path.resolve()),
        "source_dataset_sha256": sha256_file(dataset.path),
        "run": str(Path(run).resolve()),
        "checkpoint_sha256": sha256_file(loaded.checkpoint_path),
        "method": loaded.method,
        "source_split": str(source),
    }
    with output_lock(out), progress_bar("augment") as update:
        path = generate(loaded.model, dataset, rows, out, cfg, provenance, chosen, transform, update)
    console.print(f"wrote {cfg.n} images to {path}")


def _all_rows(loaded, dataset):
    """Every row of the run's label (or of the whole file)."""
    import numpy as np

    if loaded.label is None:
        return np.arange(dataset.n)
    return np.flatnonzero(dataset.labels == loaded.label)
