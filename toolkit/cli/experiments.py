"""`toolkit downstream`, `toolkit bench`, `toolkit reproduce` and `toolkit sweep`: the experiments that train
and measure many runs (toolkit.experiments)."""

from __future__ import annotations

from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from toolkit.aeai.config import DEFAULT_STEPS
from toolkit.cli.options import (
    DeviceChoice,
    DeviceOption,
    IntervalOption,
    MinIntervalOption,
    RetrievalIntervalOption,
    parse_names,
    torch_device,
)
from toolkit.cli.progress import console, progress_bar
from toolkit.errors import UserError
from toolkit.experiments.downstream_plan import DownstreamConfig, Task
from toolkit.experiments.reproduce_plan import NAMES, ReproduceConfig
from toolkit.experiments.sweep_plan import DEFAULTS as T
from toolkit.experiments.sweep_plan import STRATEGIES, SweepConfig

R = ReproduceConfig()  # reproduce's defaults, shown in --help
S = SweepConfig(knobs=())  # sweep's
StrategyChoice = StrEnum("StrategyChoice", {name: name for name in STRATEGIES})


def downstream(
    task: Annotated[
        Task | None,
        typer.Option(
            help="Built-in task. pole: regress the light direction; turntable: classify the object. "
            "Default: pole, or none when --target is given."
        ),  # fmt: skip
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="Dataset file; default data/pole.h5 or data/turntable.h5 for a task.")
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            help="What the CNN predicts: a factor of the file (regressed; a periodic one as an angle), label "
            "(classified) or direction (the pole's light: elevation_deg and azimuth_deg). Default: the task's."
        ),
    ] = None,
    split_factor: Annotated[
        str | None,
        typer.Option(
            help="Train on every --every-th value of this factor, test on the others. Default: the "
            "task's, the target factor, or the first periodic factor."
        ),  # fmt: skip
    ] = None,
    every: Annotated[int | None, typer.Option(help="Keep every k-th value of --split-factor (default 4).")] = None,
    train_fraction: Annotated[
        float | None, typer.Option(help="Instead: train on this seeded random fraction of the images.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Work and report folder; default runs/downstream-TASK (or -FILE-TARGET).")
    ] = None,
    arms: Annotated[
        str,
        typer.Option(
            help="Comma-separated arms to compare; besides the default ones, aeai-no-d, aeai-no-c and aeai-no-s "
            "(AEAI with one term dropped)."
        ),
    ] = "real,photometric,mixup,ae,aeai",
    runs: Annotated[
        list[Path] | None,
        typer.Option(help="A trained run whose interpolations make one more arm (repeat it for several)."),
    ] = None,
    seeds: Annotated[int, typer.Option(help="Seeds of the downstream CNN per arm.")] = 3,
    steps: Annotated[
        int, typer.Option(help="Optimisation steps of the downstream CNN (the same for every arm).")
    ] = 1000,
    n_extra: Annotated[int, typer.Option(help="Extra images per augmented arm.")] = 5000,
    max_gap: Annotated[
        float | None,
        typer.Option(help="Largest parameter gap of an interpolated pair; default the spacing of training values."),
    ] = None,
    interp_epochs: Annotated[
        int | None,
        typer.Option(
            help="Epochs of the AE and AEAI models trained on the sparse images. Default: toolkit train's budget "
            f"({DEFAULT_STEPS} optimizer steps, however few the images)."
        ),
    ] = None,
    scorer_steps: Annotated[
        int, typer.Option(help="Steps of the label-fidelity scorer; 0: no label-fidelity report.")
    ] = 400,
    device: DeviceOption = DeviceChoice.auto,
) -> None:
    """Does augmentation help? Train the same small CNN on sparse real data with each kind of extra data.

    Pole: train on every 4th azimuth (all elevations), test on the others, score the mean angular error of
    the predicted light direction. Turntable: train on views 30 degrees apart, score the test error rate.
    Any file: --target FACTOR|label with --split-factor/--every or --train-fraction. Each arm gets the paired
    change against real only with its 95 % interval and a verdict; each augmented arm the label error of its
    images by a CNN trained on the real training images. The interpolators see the sparse training images
    only. Everything is kept in --out: run the same command again to continue an interrupted benchmark.
    """
    from toolkit.experiments.downstream import run_benchmark
    from toolkit.files import atomic_write, output_lock, write_json

    cfg = DownstreamConfig(
        task=task if task is not None or target is not None else Task.pole,
        target=target,
        split_factor=split_factor,
        every=every,
        train_fraction=train_fraction,
        runs=[str(run) for run in runs or []],
        arms=list(parse_names(arms)),
        seeds=seeds,
        steps=steps,
        n_extra=n_extra,
        max_gap=max_gap,
        interp_epochs=interp_epochs,
        scorer_steps=scorer_steps,
    )
    cfg.validate()
    if data is None:
        if cfg.task is None:
            raise UserError("--data: give the dataset file to run --target on")
        data = Path(f"data/{cfg.task}.h5")
    out = out or Path(f"runs/downstream-{cfg.protocol(data.stem).name}")
    chosen = str(torch_device(device))
    out.mkdir(parents=True, exist_ok=True)
    # Two benchmarks in one folder would append to one scores file and train into the same interpolator runs.
    with output_lock(out / "scores.jsonl"):
        report = run_benchmark(
            data, out, cfg, chosen, log=lambda line: console.print(line, highlight=False), bar=progress_bar
        )
        write_json(out / "report.json", report)
        with atomic_write(out / "report.md") as tmp:
            tmp.write_text(f"# Downstream benchmark: {report['task']}\n\n{report['table']}\n")
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
    interval: IntervalOption = R.evaluation.max_interval,
    retrieval_interval: RetrievalIntervalOption = R.evaluation.retrieval_interval,
    min_interval: MinIntervalOption = R.evaluation.min_interval,
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


def sweep(
    grid: Annotated[
        list[str] | None,
        typer.Option(
            help="A knob: any TrainConfig field (the names of `toolkit train`'s options with _ for -) and its values: "
            "NAME=LOW:HIGH, a log range (LOW, LOW x 10, ... up to HIGH), or NAME=V1,V2,... (a list; 0 drops a "
            "term). Repeat for more knobs, e.g. --grid lambda_a=1e-3:1e1 --grid lambda_s=0,0.01,0.1,1."
        ),
    ] = None,
    points_per_decade: Annotated[int, typer.Option(help="Values per decade of a log range.")] = 1,
    strategy: Annotated[
        StrategyChoice | None,
        typer.Option(
            help="grid: every combination of the knobs' values (shardable); coordinate: one knob at a time, in the "
            "order given, the others at the best values so far. Default: coordinate on the CPU, grid on a GPU or "
            "with --shard/--join."
        ),
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option(
            help="Train only part i of n (from 1) of a grid, e.g. 2/4 in a cluster job array; configuration k goes "
            "to part k % n + 1. The part that completes the grid writes the report."
        ),
    ] = None,
    join: Annotated[
        bool, typer.Option("--join", help="Score every finished run of the grid and write the report; train nothing.")
    ] = False,
    data: Annotated[Path, typer.Option(help="Dataset file (.h5).")] = Path(T["data"]),
    method: Annotated[str, typer.Option(help="Training method of every run.")] = T["method"],
    epochs: Annotated[
        int | None,
        typer.Option(help="Epochs of every run. Default: toolkit train's budget (or --set steps=N)."),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Images per training step.")] = T["batch_size"],
    split: Annotated[
        str, typer.Option(help="random or arc; arc leaves whole intervals for validation and for test.")
    ] = S.fixed["split"],
    test_fraction: Annotated[
        float, typer.Option(help="Share of the images held out for test (never used for scoring).")
    ] = S.fixed["test_fraction"],
    seed: Annotated[int, typer.Option(help="Seed of the split, the initialisation and the sampling.")] = T["seed"],
    label: Annotated[int | None, typer.Option(help="Train and score on the images of this label only.")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="A fixed TrainConfig field for every run, NAME=VALUE (e.g. lr=2e-4); repeatable."),
    ] = None,
    runs: Annotated[Path, typer.Option(help="Folder of the run folders and of sweep.json, .md and .png.")] = S.runs,
    device: DeviceOption = DeviceChoice.auto,
    interval: IntervalOption = S.evaluation.max_interval,
    retrieval_interval: RetrievalIntervalOption = S.evaluation.retrieval_interval,
    min_interval: MinIntervalOption = S.evaluation.min_interval,
) -> None:
    """The paper's log grid search: train one run per configuration of the knobs' values, score each by its
    interval MSE on the validation intervals (every image a training image; the test split is never used to
    choose), and write RUNS/sweep.json, sweep.md (the table, best first) and sweep.png (score against each
    knob); the best configuration is printed on stdout as a ready `toolkit train` command.

    Resumable: each configuration has its own run folder under `--runs`, named by a hash of its settings; run
    the same command again after Ctrl-C and finished runs are skipped, a partial one resumed.
    """
    from toolkit.experiments.sweep import sweep as run
    from toolkit.experiments.sweep_plan import parse_grid, parse_setting
    from toolkit.render.grid import parse_shard

    knobs = tuple(parse_grid(text, points_per_decade) for text in grid or [])
    fixed = {"data": str(data), "method": method, "batch_size": batch_size, "split": split}
    fixed |= {"test_fraction": test_fraction, "seed": seed}
    fixed |= {name: value for name, value in (("epochs", epochs), ("label", label)) if value is not None}
    for text in set_ or []:
        name, value = parse_setting(text)
        if name in fixed:
            raise UserError(f"--set {name} is given twice")
        fixed[name] = value
    chosen = torch_device(device)
    if strategy is None:
        strategy = "grid" if shard is not None or join or chosen.type != "cpu" else "coordinate"
    cfg = SweepConfig(
        knobs=knobs,
        fixed=fixed,
        strategy=str(strategy),
        shard=parse_shard(shard),
        runs=runs,
        device=str(chosen),
        evaluation=replace(
            S.evaluation, max_interval=interval, retrieval_interval=retrieval_interval, min_interval=min_interval
        ),
        join=join,
    )
    result = run(cfg, log=lambda line: console.print(line, highlight=False), bar=progress_bar)
    if result.report is None:
        return
    best = result.best
    console.print(f"wrote {', '.join(str(p) for p in result.report.values())}")
    console.print(f"best of {len(result.records)}: {best.run_dir} (validation interval MSE {best.score:.5f}); train:")
    print(result.command)  # stdout, alone: `$(toolkit sweep ... | tail -1)` is the command
