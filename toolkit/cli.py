"""The `toolkit` command line: parses and validates, then calls the library. No logic of its own."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from toolkit.errors import UserError
from toolkit.malloc import keep_freed_memory
from toolkit.progress import console, progress_bar

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # reflows docstring paragraphs in --help
    help="Faithful image interpolation and data augmentation with AEAI: render, train, evaluate, augment.",
)


def parse_int_list(text: str | None, option: str) -> list[int] | None:
    """'1,5,9' -> [1, 5, 9]; a clear error otherwise."""
    if text is None:
        return None
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"{option} expects comma-separated integers such as 1,5,9, got '{text}'") from None
    if not values:
        raise UserError(f"{option} is empty")
    return values


@app.command()
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


@app.command("import-coil")
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


# Each area's commands live in their own module and register themselves on `app` when imported.
# (Imports at the bottom on purpose: those modules import `app` from here.)
# COMMAND MODULES: add one import line per module below.
# The order of these imports is the order of the commands in --help.
# isort: off
import toolkit.cli_render  # noqa: E402, F401
import toolkit.cli_train  # noqa: E402, F401
import toolkit.cli_augment  # noqa: E402, F401
import toolkit.cli_evaluate  # noqa: E402, F401
import toolkit.cli_bench  # noqa: E402, F401
import toolkit.cli_reproduce  # noqa: E402, F401
# isort: on


def main() -> None:
    """Entry point: user mistakes become one line on stderr and exit code 1, never a traceback."""
    keep_freed_memory()  # before any tensor: training steps then reuse memory instead of page-faulting it in
    try:
        code = app(standalone_mode=False)
    except UserError as e:
        console.print(f"[red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        console.print("interrupted; run the same command again to resume")
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        console.print("aborted")
        sys.exit(130)
    except typer.TyperException as e:  # usage errors: unknown option, bad value, missing argument
        if hasattr(e, "show"):
            e.show()
        else:
            console.print(f"[red]error:[/] {e.format_message()}", highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    # In non-standalone mode typer turns Ctrl-C into a returned 130 rather than an exception.
    if isinstance(code, int) and code != 0:
        if code == 130:
            console.print("interrupted; run the same command again to resume")
        sys.exit(code)


if __name__ == "__main__":
    main()
