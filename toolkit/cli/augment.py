"""`toolkit augment`: turn a trained run into extra labelled training images."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from toolkit.augment.sampling import AlphaDist, PairMode
from toolkit.cli.options import DeviceChoice, DeviceOption, parse_names, torch_device
from toolkit.cli.progress import console, progress_bar
from toolkit.errors import UserError


class SourceSplit(StrEnum):
    train = "train"
    all = "all"


def augment(
    n: Annotated[int, typer.Option(help="How many images to generate.")] = 5000,
    run: Annotated[
        Path,
        typer.Option(
            help="Run directory of a trained model, or 'best': the one of --candidates with the lowest validation "
            "interval MSE."
        ),
    ] = Path("runs/latest"),
    candidates: Annotated[
        list[Path] | None, typer.Option(help="With --run best: a run to choose from (repeat it, or RUN,RUN,...).")
    ] = None,
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
    max_label_error: Annotated[
        float | None,
        typer.Option(
            help="Drop generated images whose label a CNN trained on the run's real training images finds further "
            "off than this (factors: the largest error, in their units; classes only: 1 - p(class)); draws until "
            "--n pass."
        ),
    ] = None,
    scorer_steps: Annotated[int, typer.Option(help="Training steps of the --max-label-error scorer.")] = 400,
) -> None:
    """Sample latent interpolations between pairs of real images and write them, labelled, to HDF5.

    Each image gets the class of its pair and the pair's parameters interpolated with its alpha (periodic
    ones on the circle); the file records alpha, the source pair, the dataset, the checkpoint's sha256,
    the method and the seed. An interrupted run resumes when the same command is run again. --run best
    records the choice and every candidate's score; --max-label-error records the threshold and its scorer.
    """
    from toolkit.augment.generate import AugmentConfig, generate, sha256_file
    from toolkit.files import DATASET_SUFFIXES, check_extension, check_writable_dir, output_lock

    cfg = AugmentConfig(n=n, seed=seed, batch_size=batch_size, pairs=pairs, max_gap=max_gap, alpha=alpha)
    cfg.validate()
    if max_label_error is not None and max_label_error <= 0:
        raise UserError(f"--max-label-error must be positive, got {max_label_error:g}")
    if scorer_steps < 1:
        raise UserError(f"--scorer-steps must be at least 1, got {scorer_steps}")
    if candidates and str(run) != "best":
        raise UserError("--candidates needs --run best")
    check_extension(out, DATASET_SUFFIXES, "a dataset file")
    check_writable_dir(out)

    from toolkit.aeai.run import load_run
    from toolkit.datasets import open_dataset

    chosen = torch_device(device)
    selection = None
    if str(run) == "best":
        from toolkit.experiments.selection import select_best

        runs = [Path(name) for entry in candidates or [] for name in parse_names(str(entry))]
        selection = select_best(runs, data, device=str(chosen), bar=progress_bar)
        run = selection.run
        console.print(f"best of {len(runs)} runs: {run} (validation interval MSE {selection.score:.5f})")
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
        **(selection.as_settings() if selection else {}),
    }
    keep = None
    if max_label_error is not None:
        scorer = _label_scorer(loaded, dataset, scorer_steps)
        provenance |= {"max_label_error": max_label_error, "label_scorer": scorer.describe()}
        console.print(f"label scorer: {scorer.unit}, its own error on held-out real images {scorer.own_error}")

        def keep(images, params, labels):
            return scorer.errors(images, params, labels) <= max_label_error

    with output_lock(out), progress_bar("augment") as update:
        path = generate(loaded.model, dataset, rows, out, cfg, provenance, chosen, transform, update, keep)
    console.print(f"wrote {cfg.n} images to {path}")


def _label_scorer(loaded, dataset, steps: int):
    """A label scorer trained on the run's real training images; its own error measured on its test images."""
    from toolkit.augment.fidelity import ScorerConfig, train_scorer

    if not dataset.param_names and len(dataset.label_names) < 2:
        raise UserError(f"{dataset.path}: neither factors nor two classes: --max-label-error has nothing to check")
    train, test = loaded.split.train, loaded.split.test

    def arrays(rows):
        return dataset.read_images(rows), dataset.params[rows], dataset.labels[rows]

    with progress_bar("label scorer", "step") as update:
        return train_scorer(
            arrays(train),
            arrays(test) if len(test) else None,
            dataset.periods,
            dataset.param_names,
            len(dataset.label_names),
            ScorerConfig(steps=steps),
            update,
        )


def _all_rows(loaded, dataset):
    """Every row of the run's label (or of the whole file)."""
    import numpy as np

    if loaded.label is None:
        return np.arange(dataset.n)
    return np.flatnonzero(dataset.labels == loaded.label)
