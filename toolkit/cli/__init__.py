"""The `toolkit` command line: parses and validates, then calls the library. No logic of its own.

One module per command group holds plain typed functions; this file alone registers them on `app`, so the
command modules never import back from here.
"""

from __future__ import annotations

import sys

import typer

from toolkit.cli import augment, data, evaluate, experiments, render, train
from toolkit.cli.progress import console
from toolkit.errors import UserError
from toolkit.malloc import keep_freed_memory

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # reflows docstring paragraphs in --help
    help="Faithful image interpolation and data augmentation with AEAI: render, train, evaluate, augment.",
)


# Every command, in the order --help lists them.
COMMANDS = {
    "info": data.info,
    "import-coil": data.import_coil,
    "import-folder": data.import_folder,
    "render-pole": render.render_pole,
    "render-turntable": render.render_turntable,
    "merge": render.merge,
    "train": train.train,
    "augment": augment.augment,
    "downstream": experiments.downstream,
    "evaluate": evaluate.evaluate,
    "interpolate": evaluate.interpolate,
    "bench": experiments.bench,
    "reproduce": experiments.reproduce,
    "sweep": experiments.sweep,
}
for name, command in COMMANDS.items():
    app.command(name)(command)


def main(args: list[str] | None = None) -> None:
    """Entry point (`args`: the command line, default sys.argv): user mistakes become one line on stderr and
    exit code 1, never a traceback."""
    keep_freed_memory()  # before any tensor: training steps then reuse memory instead of page-faulting it in
    try:
        code = app(args=args, prog_name="toolkit", standalone_mode=False)
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
