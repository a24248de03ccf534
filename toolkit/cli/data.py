"""`toolkit info`, `toolkit import-coil` and `toolkit import-folder`: look at a dataset file, bring images in."""

from __future__ import annotations

import math
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli.options import parse_int_list
from toolkit.cli.progress import console, progress_bar
from toolkit.errors import UserError


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
    from toolkit.files import DATASET_SUFFIXES, check_extension, check_writable_dir, output_lock

    check_extension(out, DATASET_SUFFIXES, "a dataset file")
    check_writable_dir(out)
    with output_lock(out), progress_bar("import") as update:
        path = run(folder, out, size=size, objects=parse_int_list(objects, "--objects"), progress=update)
    console.print(f"wrote {path}")


class Fit(StrEnum):
    """How import-folder makes an image square."""

    crop = "crop"
    letterbox = "letterbox"


def parse_periodic(texts: list[str] | None) -> dict[str, float]:
    """['azimuth_deg:360', 'hue:1,phase:6.28'] -> {name: period}; a clear error otherwise."""
    periods: dict[str, float] = {}
    for text in texts or []:
        for item in (part.strip() for part in text.split(",")):
            name, colon, value = item.rpartition(":")
            try:
                period = float(value)
            except ValueError:
                period = math.nan
            if not colon or not name.strip() or not math.isfinite(period) or period <= 0:
                raise UserError(
                    f"--periodic expects COLUMN:PERIOD with a positive period, e.g. azimuth_deg:360; got '{item}'"
                )
            if periods.get(name.strip(), period) != period:
                raise UserError(f"--periodic gives column '{name.strip()}' two periods")
            periods[name.strip()] = period
    return periods


def import_folder(
    folder: Annotated[Path, typer.Argument(help="Folder of images (PNG, JPEG; subfolders allowed) with metadata.csv.")],
    out: Annotated[Path, typer.Option(help="Dataset file to write (.h5).")],
    size: Annotated[
        int | None,
        typer.Option(
            help="Image side in pixels (the networks take multiples of 16). Default: the images' own when they are "
            "all square and of one size; otherwise required."
        ),
    ] = None,
    fit: Annotated[
        Fit,
        typer.Option(
            help="crop: the centre square of each image (the longer side's ends are cut off), resized; "
            "letterbox: the whole image, resized and padded with black to a square."
        ),
    ] = Fit.crop,
    label: Annotated[
        str | None, typer.Option(help="Column holding each image's class (text or integers). Default: all label 0.")
    ] = None,
    periodic: Annotated[
        list[str] | None,
        typer.Option(help="A periodic factor and its period, e.g. azimuth_deg:360; repeat it or separate by commas."),
    ] = None,
) -> None:
    """Import a folder of images described by a metadata.csv (the Hugging Face imagefolder convention).

    metadata.csv has a `file_name` column (the image's path inside FOLDER) and one numeric column per factor
    (e.g. `azimuth_deg,elevation_deg`), plus the `--label` column if there is one. Every image becomes RGB and
    square: by default its **centre square is cropped** and resized (Lanczos); `--fit letterbox` keeps the
    whole image and pads it with black. Rows keep the CSV's order. Every problem with the folder (missing,
    unreadable or unlisted images, non-numeric values, unknown columns) is reported at once, and nothing is written.
    """
    from toolkit.datasets.folder import import_folder as run
    from toolkit.files import DATASET_SUFFIXES, check_extension, check_writable_dir, output_lock

    periods = parse_periodic(periodic)
    check_extension(out, DATASET_SUFFIXES, "a dataset file")
    check_writable_dir(out)
    with output_lock(out), progress_bar("import") as update:
        path = run(folder, out, size=size, fit=str(fit), label=label, periodic=periods, progress=update)
    console.print(f"wrote {path}")
