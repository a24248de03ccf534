"""Rich progress bars for the CLI; library code only calls the plain callbacks these return."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)


@contextlib.contextmanager
def progress_bar(description: str, unit: str = "img") -> Iterator[Callable[..., None]]:
    """Yield `update(done, total, **fields)`; fields (losses, ...) are shown after the bar."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
    )
    progress = Progress(*columns, console=console, transient=False)
    task = progress.add_task(description, total=None, rate="", info="")

    def update(done: int, total: int | None = None, **fields: object) -> None:
        # Shown from the first update on: a job refused before it starts leaves its one-line error alone.
        if not progress.live.is_started:
            progress.start()
        speed = progress.tasks[0].speed
        rate = f"{speed:.1f} {unit}/s" if speed else ""
        info = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())
        progress.update(task, completed=done, total=total, rate=rate, info=info)

    try:
        yield update
    finally:
        if progress.live.is_started:
            progress.stop()
