"""`toolkit reproduce`: train every method and ablation on the pole set and one turntable object, measure them,
and write the results page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toolkit.aeai.reproduce import NAMES, ReproduceConfig
from toolkit.cli import app
from toolkit.progress import console, progress_bar

D = ReproduceConfig()


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


@app.command("reproduce")
def reproduce(
    pole: Annotated[Path, typer.Option(help="Pole dataset file (toolkit render-pole).")] = D.pole,
    turntable: Annotated[Path, typer.Option(help="Turntable dataset file (toolkit render-turntable).")] = D.turntable,
    object_: Annotated[
        int, typer.Option("--object", help="Turntable label to train and measure (one object, as the paper does).")
    ] = D.object,
    datasets: Annotated[str, typer.Option(help="Comma-separated subset of: pole, turntable.")] = ",".join(D.datasets),
    methods: Annotated[
        str, typer.Option(help="Comma-separated subset of the methods and ablations (aeai-no-d/c/s: lambda_a/c/s = 0).")
    ] = ",".join(NAMES),
    seeds: Annotated[
        int, typer.Option(help="Seeds of AEAI and of the strongest baseline per dataset; every other run: seed 0.")
    ] = D.seeds,
    epochs_pole: Annotated[
        int, typer.Option(help="Epochs on the pole set (461 training images: 14 steps an epoch at batch 32).")
    ] = D.epochs_pole,
    epochs_turntable: Annotated[
        int,
        typer.Option(help="Epochs on the turntable object (58 training images: 1 step an epoch; same steps as pole)."),
    ] = D.epochs_turntable,
    batch_size: Annotated[int, typer.Option(help="Images per training step, every run.")] = D.batch_size,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = D.device,
    runs: Annotated[Path, typer.Option(help="Folder of the run folders (DATASET/NAME-seedK).")] = D.runs,
    out: Annotated[Path, typer.Option(help="Results page; its plots and strips go to a folder beside it.")] = D.out,
) -> None:
    """Reproduce the paper's comparison: AEAI, its six baselines and its three ablations, trained with seed 0 on
    the pole set and on one turntable object, then AEAI and the strongest baseline (lowest interval MSE at seed
    0) with more seeds; every run measured like `toolkit evaluate`, and a Markdown page written with tables,
    verdicts, plots and interpolation strips.

    Resumable: each run has its own folder under `--runs`; run the same command again after Ctrl-C and finished
    runs are skipped, a partial one resumed, evaluations reused. Settings that differ from a saved run are an
    error, not a silent mix.
    """
    from toolkit.aeai.reproduce import reproduce as run

    cfg = ReproduceConfig(
        pole=pole,
        turntable=turntable,
        object=object_,
        datasets=_names(datasets),
        methods=_names(methods),
        seeds=seeds,
        epochs_pole=epochs_pole,
        epochs_turntable=epochs_turntable,
        batch_size=batch_size,
        device=device,
        runs=runs,
        out=out,
    )
    page = run(cfg, log=lambda line: console.print(line, highlight=False), bar=progress_bar)
    console.print(f"wrote {page}")
