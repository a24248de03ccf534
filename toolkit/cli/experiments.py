"""`toolkit downstream`, `toolkit bench` and `toolkit reproduce`: the experiments that train and measure many
runs (toolkit.experiments)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli.options import DeviceChoice, DeviceOption, parse_names, torch_device
from toolkit.cli.progress import console, progress_bar
from toolkit.errors import UserError
from toolkit.experiments.downstream_plan import DownstreamConfig, Task
from toolkit.experiments.reproduce_plan import NAMES, ReproduceConfig

R = ReproduceConfig()  # reproduce's defaults, shown in --help


def downstream(
    task: Annotated[
        Task, typer.Option(help="pole: regress the light direction; turntable: classify the object.")
    ] = Task.pole,
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
    device: DeviceOption = DeviceChoice.auto,
) -> None:
    """Does augmentation help? Train the same small CNN on sparse real data with each kind of extra data.

    Pole: train on every 4th azimuth (all elevations), test on the others, score the mean angular error of
    the predicted light direction. Turntable: train on views 30 degrees apart, score the test error rate.
    The AE and AEAI interpolators see the sparse training images only. Everything is kept in --out: run the
    same command again to continue an interrupted benchmark.
    """
    from toolkit.experiments.downstream import run_benchmark
    from toolkit.files import atomic_write, output_lock, write_json

    cfg = DownstreamConfig(
        task=task,
        arms=list(parse_names(arms)),
        seeds=seeds,
        steps=steps,
        n_extra=n_extra,
        interp_epochs=interp_epochs,
    )
    cfg.validate()
    data = data or Path(f"data/{task}.h5")
    out = out or Path(f"runs/downstream-{task}")
    chosen = str(torch_device(device))
    out.mkdir(parents=True, exist_ok=True)
    # Two benchmarks in one folder would append to one scores file and train into the same interpolator runs.
    with output_lock(out / "scores.jsonl"):
        report = run_benchmark(
            data, out, cfg, chosen, log=lambda line: console.print(line, highlight=False), bar=progress_bar
        )
        write_json(out / "report.json", report)
        with atomic_write(out / "report.md") as tmp:
            tmp.write_text(f"# Downstream benchmark: {task}\n\n{report['table']}\n")
    console.print(report["table"], highlight=False)
    console.print(f"report: {out / 'report.json'}, {out / 'report.md'}")


def bench(
    out: Annotated[Path, typer.Option(help="JSON file for the results.")] = Path("bench.json"),
    items: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated subset of: render, train, paths (the trainer's speed settings, one changed at a "
            "time), augment, evaluate, loader. Default: all."
        ),
    ] = None,
    quick: Annotated[bool, typer.Option("--quick", help="A smoke run: tiny sizes, one repetition, no render.")] = False,
    repeats: Annotated[int | None, typer.Option(help="Timed repetitions per item (median reported).")] = None,
    size: Annotated[int | None, typer.Option(help="Image size of the training, augment and loader items.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Training batch of ae and aeai.")] = None,
    device: DeviceOption = DeviceChoice.cpu,
) -> None:
    """Measure render, training (ae and aeai), augment, evaluate and DataLoader throughput and peak memory in
    this process; print a table and write JSON. Set OMP_NUM_THREADS to compare thread counts; on a GPU,
    `--device cuda --items train,paths` measures bf16, channels-last and torch.compile each alone."""

    from rich.console import Console
    from rich.table import Table

    from toolkit.aeai.nets import check_image_size
    from toolkit.experiments.bench import ITEMS, BenchConfig, run_bench
    from toolkit.files import check_writable_dir, write_json

    cfg = BenchConfig.quick() if quick else BenchConfig()
    if items is not None:
        chosen = parse_names(items)
        unknown = [name for name in chosen if name not in ITEMS]
        if unknown or not chosen:
            raise UserError(
                f"--items: unknown item(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(ITEMS)}"
            )
        cfg = replace(cfg, items=chosen)
    if repeats is not None:
        if repeats < 1:
            raise UserError(f"--repeats must be at least 1, got {repeats}")
        cfg = replace(cfg, repeats=repeats)
    if size is not None:
        check_image_size(size)
        cfg = replace(cfg, train_size=size)
    if batch_size is not None:
        if batch_size < 2:
            raise UserError(f"--batch-size must be at least 2 (aeai pairs images), got {batch_size}")
        cfg = replace(cfg, train_batch=batch_size)
    cfg = replace(cfg, device=str(torch_device(device)))
    check_writable_dir(out)

    report = run_bench(cfg, progress=lambda message: console.print(message, style="dim"))
    m = report["machine"]
    table = Table(
        title=f"{m['cpu']}, {m['cores_available']} cores, {m['torch_threads']} torch threads, torch {m['torch']}, "
        f"{m['device']}, malloc {m['malloc']}; load {m['load_average'][0]:.2f} -> {m['load_average_end'][0]:.2f}"
    )
    for column in ("item", "median", "unit", "runs", "peak RSS MB", "base RSS MB", "notes"):
        table.add_column(column, justify="left" if column in {"item", "unit", "notes"} else "right")
    for r in report["results"]:
        notes = ", ".join(f"{k}={v}" for k, v in r["notes"].items())
        runs = " ".join(f"{v:.3g}" for v in r["values"])
        table.add_row(
            r["name"],
            f"{r['median']:.3g}",
            r["unit"],
            runs,
            f"{r['peak_rss_mb']:.0f}",
            f"{r['base_rss_mb']:.0f}",
            notes,
        )
    # Wide enough for the notes column when stdout is a pipe or a file (rich assumes 80 columns there).
    Console(width=max(140, Console().width)).print(table)
    for item, why in report["skipped"].items():
        console.print(f"skipped {item}: {why}")
    write_json(out, report)
    console.print(f"wrote {out} ({report['seconds']} s)")


def reproduce(
    pole: Annotated[Path, typer.Option(help="Pole dataset file (toolkit render-pole).")] = R.pole,
    turntable: Annotated[Path, typer.Option(help="Turntable dataset file (toolkit render-turntable).")] = R.turntable,
    object_: Annotated[
        int, typer.Option("--object", help="Turntable label to train and measure (one object, as the paper does).")
    ] = R.object,
    datasets: Annotated[str, typer.Option(help="Comma-separated subset of: pole, turntable.")] = ",".join(R.datasets),
    methods: Annotated[
        str, typer.Option(help="Comma-separated subset of the methods and ablations (aeai-no-d/c/s: lambda_a/c/s = 0).")
    ] = ",".join(NAMES),
    seeds: Annotated[
        int, typer.Option(help="Seeds of AEAI and of the strongest baseline per dataset; every other run: seed 0.")
    ] = R.seeds,
    epochs_pole: Annotated[
        int, typer.Option(help="Epochs on the pole set (461 training images: 14 steps an epoch at batch 32).")
    ] = R.epochs_pole,
    epochs_turntable: Annotated[
        int,
        typer.Option(help="Epochs on the turntable object (58 training images: 1 step an epoch; same steps as pole)."),
    ] = R.epochs_turntable,
    batch_size: Annotated[int, typer.Option(help="Images per training step, every run.")] = R.batch_size,
    device: DeviceOption = DeviceChoice.auto,
    runs: Annotated[Path, typer.Option(help="Folder of the run folders (DATASET/NAME-seedK).")] = R.runs,
    out: Annotated[Path, typer.Option(help="Results page; its plots and strips go to a folder beside it.")] = R.out,
    interval: Annotated[
        float, typer.Option(help="Largest interval of the MSE curves (degrees; paper: 80).")
    ] = R.evaluation.max_interval,
    retrieval_interval: Annotated[
        float, typer.Option(help="Interval of the alpha retrieval (degrees; paper: 70).")
    ] = R.evaluation.retrieval_interval,
    min_interval: Annotated[
        float, typer.Option(help="Shortest interval of the MSE-per-length curve.")
    ] = R.evaluation.min_interval,
) -> None:
    """Reproduce the paper's comparison: AEAI, its six baselines and its three ablations, trained with seed 0 on
    the pole set and on one turntable object, then AEAI and the strongest baseline (lowest interval MSE at seed
    0) with more seeds; every run measured like `toolkit evaluate`, and a Markdown page written with tables,
    verdicts, plots and interpolation strips.

    Resumable: each run has its own folder under `--runs`; run the same command again after Ctrl-C and finished
    runs are skipped, a partial one resumed, evaluations reused. Settings that differ from a saved run are an
    error, not a silent mix.
    """
    from toolkit.experiments.reproduce import reproduce as run

    cfg = ReproduceConfig(
        pole=pole,
        turntable=turntable,
        object=object_,
        datasets=parse_names(datasets),
        methods=parse_names(methods),
        seeds=seeds,
        epochs_pole=epochs_pole,
        epochs_turntable=epochs_turntable,
        batch_size=batch_size,
        device=str(device),
        runs=runs,
        out=out,
        evaluation=replace(
            R.evaluation, max_interval=interval, retrieval_interval=retrieval_interval, min_interval=min_interval
        ),
    )
    page = run(cfg, log=lambda line: console.print(line, highlight=False), bar=progress_bar)
    console.print(f"wrote {page}")
