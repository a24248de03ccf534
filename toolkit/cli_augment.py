"""`toolkit augment`: turn a trained run into extra labelled training images."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from toolkit.augment.sampling import AlphaDist, PairMode
from toolkit.cli import app
from toolkit.errors import UserError
from toolkit.progress import console, progress_bar


class SourceSplit(StrEnum):
    train = "train"
    all = "all"


@app.command()
def augment(
    n: Annotated[int, typer.Option(help="How many images to generate.")] = 5000,
    run: Annotated[Path, typer.Option(help="Run directory of a trained model.")] = Path("runs/latest"),
    data: Annotated[Path | None, typer.Option(help="Dataset file; default: the one the run was trained on.")] = None,
    out: Annotated[Path, typer.Option(help="Dataset file to write.")] = Path("data/augmented.h5"),
    seed: Annotated[int, typer.Option(help="Same seed, same file.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Images decoded per batch (and written per chunk).")] = 250,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
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
        Path | None, typer.Option(help="albumentations pipeline (albumentations.save JSON/YAML) applied to each image.")
    ] = None,
) -> None:
    """Sample latent interpolations between pairs of real images and write them, labelled, to HDF5.

    Each image gets the class of its pair and the pair's parameters interpolated with its alpha (periodic
    ones on the circle); the file records alpha, the source pair, the dataset, the checkpoint's sha256,
    the method and the seed. An interrupted run resumes when the same command is run again.
    """
    from toolkit.augment.generate import AugmentConfig, generate, sha256_file
    from toolkit.files import check_writable_dir, output_lock

    cfg = AugmentConfig(n=n, seed=seed, batch_size=batch_size, pairs=pairs, max_gap=max_gap, alpha=alpha)
    cfg.validate()
    check_writable_dir(out)

    from toolkit.aeai.run import load_run
    from toolkit.datasets import open_dataset

    torch_device = resolve_device(device)
    loaded = load_run(run, device=str(torch_device))
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
        path = generate(loaded.model, dataset, rows, out, cfg, provenance, torch_device, transform, update)
    console.print(f"wrote {cfg.n} images to {path}")


def _all_rows(loaded, dataset):
    """Every row of the run's label (or of the whole file)."""
    import numpy as np

    if loaded.label is None:
        return np.arange(dataset.n)
    return np.flatnonzero(dataset.labels == loaded.label)


@app.command()
def downstream(
    task: Annotated[
        str, typer.Option(help="pole: regress the light direction; turntable: classify the object.")
    ] = "pole",
    data: Annotated[Path | None, typer.Option(help="Dataset file; default data/pole.h5 or data/turntable.h5.")] = None,
    out: Annotated[Path | None, typer.Option(help="Work and report folder; default runs/downstream-TASK.")] = None,
    arms: Annotated[
        str,
        typer.Option(
            help="Comma-separated arms to compare; besides the default ones, aeai-no-d, aeai-no-c and aeai-no-s "
            "(AEAI with one term dropped)."
        ),
    ] = "real,photometric,mixup,ae,aeai",
    seeds: Annotated[int, typer.Option(help="Seeds of the downstream CNN per arm.")] = 3,
    steps: Annotated[
        int, typer.Option(help="Optimisation steps of the downstream CNN (the same for every arm).")
    ] = 1000,
    n_extra: Annotated[int, typer.Option(help="Extra images per augmented arm.")] = 5000,
    interp_epochs: Annotated[
        int, typer.Option(help="Epochs of the AE and AEAI models trained on the sparse images.")
    ] = 150,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Does augmentation help? Train the same small CNN on sparse real data with each kind of extra data.

    Pole: train on every 4th azimuth (all elevations), test on the others, score the mean angular error of
    the predicted light direction. Turntable: train on views 30 degrees apart, score the test error rate.
    The AE and AEAI interpolators see the sparse training images only. Everything is kept in --out: run the
    same command again to continue an interrupted benchmark.
    """
    import json

    from toolkit.augment.downstream import DownstreamConfig, run_benchmark
    from toolkit.files import atomic_write, output_lock

    cfg = DownstreamConfig(
        task=task,
        arms=[a.strip() for a in arms.split(",") if a.strip()],
        seeds=seeds,
        steps=steps,
        n_extra=n_extra,
        interp_epochs=interp_epochs,
    )
    cfg.validate()
    data = data or Path(f"data/{task}.h5")
    out = out or Path(f"runs/downstream-{task}")
    torch_device = str(resolve_device(device))
    out.mkdir(parents=True, exist_ok=True)
    # Two benchmarks in one folder would append to one scores file and train into the same interpolator runs.
    with output_lock(out / "scores.jsonl"):
        report = run_benchmark(
            data, out, cfg, torch_device, log=lambda line: console.print(line, highlight=False), bar=progress_bar
        )
        with atomic_write(out / "report.json") as tmp:
            tmp.write_text(json.dumps(report, indent=2))
        with atomic_write(out / "report.md") as tmp:
            tmp.write_text(f"# Downstream benchmark: {task}\n\n{report['table']}\n")
    console.print(report["table"], highlight=False)
    console.print(f"report: {out / 'report.json'}, {out / 'report.md'}")


def resolve_device(name: str):
    """The trainer's device choice (auto -> cuda when available), imported lazily to keep the CLI quick."""
    from toolkit.aeai.trainer import resolve_device as resolve

    return resolve(name)
