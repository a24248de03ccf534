"""What several commands' options share: the `--device` choice and small parsers. Torch-free, so that
`toolkit --help` starts at once; the library is imported inside each command for the same reason."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from toolkit.errors import UserError


class DeviceChoice(StrEnum):
    """What `--device` accepts where torch runs."""

    auto = "auto"  # cuda when available, else cpu
    cpu = "cpu"
    cuda = "cuda"


DeviceOption = Annotated[DeviceChoice, typer.Option(help="auto (cuda when available), cpu or cuda.")]


def torch_device(choice: DeviceChoice):
    """The torch device for `--device` (auto -> cuda when available)."""
    from toolkit.devices import resolve_device

    return resolve_device(str(choice))


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


def parse_names(text: str) -> tuple[str, ...]:
    """'a, b,c' -> ('a', 'b', 'c')."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


# The interval lengths of `evaluate`'s measures, shared by evaluate, reproduce and sweep (each its own default).
IntervalOption = Annotated[
    float, typer.Option(help="Largest interval (degrees): per-alpha MSE curves and the interval MSE (paper: 80).")
]
RetrievalIntervalOption = Annotated[
    float, typer.Option(help="Interval of the alpha retrieval and ACAI smoothness (degrees; paper: 70).")
]
MinIntervalOption = Annotated[float, typer.Option(help="Shortest interval of the MSE-per-length curve.")]
