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
