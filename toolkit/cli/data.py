"""`toolkit info` and `toolkit import-coil`: look at a dataset file, bring COIL-100 in."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli.options import parse_int_list
from toolkit.cli.progress import console, progress_bar


def info(path: Annotated[Path, typer.Argument(help="A dataset file (.h5) written by the toolkit.")]) -> None:
    """Summarise a dataset file: count, image size, parameters and their ranges, labels, provenance."""
    from toolkit.datasets import open_dataset

    d = open_dataset(path)
    console.print(f"[bold]{d.path}[/]: {d.n} images, {d.image_size}x{d.image_size} RGB")
    for k, name in enumerate(d.param_names):
        column = d.params[:, k]
        periodic = f", periodic {d.periods[k]:g}" if d.periods[k] > 0 else ""
        console.print(
            f"  param {name}: {column.min():g} .. {column.max():g}, {len(set(column.tolist()))} values{periodic}"
        )
    counts = {d.label_names[k]: int((d.labels == k).sum()) for k in sorted(set(d.labels.tolist()))}
    shown = ", ".join(f"{name} ({c})" for name, c in list(counts.items())[:12])
    console.print(f"  labels: {len(counts)} of {len(d.label_names)}: {shown}{' ...' if len(counts) > 12 else ''}")
    for name, values in d.extra.items():
        console.print(f"  {name}: {values.shape}")
    console.print(f"  written by {d.attrs.get('writer', 'unknown')}, schema {d.attrs.get('schema_version', '?')}")
    console.print(f"  settings: {d.describe_settings()}")


def import_coil(
    folder: Annotated[Path, typer.Argument(help="Folder of COIL-100 images named obj<k>__<deg>.png.")],
    out: Annotated[Path, typer.Option(help="Dataset file to write.")] = Path("data/coil100.h5"),
    size: Annotated[int, typer.Option(help="Image size in pixels (COIL-100 is 128).")] = 128,
    objects: Annotated[str | None, typer.Option(help="Only these object numbers, e.g. 1,5,9.")] = None,
) -> None:
    """Import a COIL-100 folder: label = object, param azimuth_deg (periodic, 360)."""
    from toolkit.datasets.coil import import_coil as run
    from toolkit.files import check_writable_dir, output_lock

    check_writable_dir(out)
    with output_lock(out), progress_bar("import") as update:
        path = run(folder, out, size=size, objects=parse_int_list(objects, "--objects"), progress=update)
    console.print(f"wrote {path}")
