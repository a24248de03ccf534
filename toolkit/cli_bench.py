"""`toolkit bench`: how fast each stage runs on this machine, as a table and a JSON file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli import app
from toolkit.errors import UserError
from toolkit.progress import console


@app.command("bench")
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
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
) -> None:
    """Measure render, training (ae and aeai), augment, evaluate and DataLoader throughput and peak memory in
    this process; print a table and write JSON. Set OMP_NUM_THREADS to compare thread counts; on a GPU,
    `--device cuda --items train,paths` measures bf16, channels-last and torch.compile each alone."""
    from dataclasses import replace

    from rich.console import Console
    from rich.table import Table

    from toolkit.aeai.bench import ITEMS, BenchConfig, run_bench
    from toolkit.aeai.nets import check_image_size
    from toolkit.aeai.trainer import resolve_device
    from toolkit.files import check_writable_dir

    cfg = BenchConfig.quick() if quick else BenchConfig()
    if items is not None:
        chosen = tuple(name.strip() for name in items.split(",") if name.strip())
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
    cfg = replace(cfg, device=str(resolve_device(device)))
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
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {out} ({report['seconds']} s)")
