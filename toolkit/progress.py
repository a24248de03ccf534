"""The progress callbacks library code accepts; the CLI fills them with rich bars (toolkit.cli.progress).

Library code never prints progress itself: it calls `update(done, total, **fields)` when given one, so it
works the same from the command line, a notebook or a test.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

Progress = Callable[..., None]  # update(done: int, total: int | None = None, **fields)
ProgressFactory = Callable[[str, str], contextlib.AbstractContextManager[Progress]]  # (description, unit)
Log = Callable[[str], None]  # one finished line of text


@contextlib.contextmanager
def no_progress(description: str, unit: str) -> Iterator[Progress]:
    """A ProgressFactory that shows nothing."""
    yield lambda *args, **fields: None
