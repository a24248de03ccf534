"""Join the parts of a sharded render (`--shard i/n`) into the file a single machine would have written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from toolkit.datasets.h5 import DatasetInfo, DatasetSpec, H5Writer, open_dataset
from toolkit.errors import UserError
from toolkit.render.runner import SHARD_KEYS

ROWS_PER_COPY = 256  # rows read and written at a time: bounded memory whatever the grid's size


def _span(info: DatasetInfo) -> tuple[int, int]:
    settings = info.settings
    if "grid_rows" not in settings:
        raise UserError(f"{info.path}: not written by render-pole or render-turntable (no grid in its settings)")
    start, stop = settings.get("shard_rows", [0, settings["grid_rows"]])
    if info.n != stop - start:
        raise UserError(f"{info.path}: holds {info.n} rows, but its part of the grid has {stop - start}")
    return start, stop


def _layout(info: DatasetInfo) -> dict:
    common = {k: v for k, v in info.settings.items() if k not in SHARD_KEYS}
    return {
        "image_size": info.image_size,
        "param_names": info.param_names,
        "periods": [float(p) for p in info.periods],
        "label_names": info.label_names,
        "settings": common,
    }


def check_parts(parts: list[Path]) -> list[DatasetInfo]:
    """Open the parts and return them in grid order; one-line errors for mismatches, gaps and overlaps."""
    if not parts:
        raise UserError("merge needs at least one part")
    infos = [open_dataset(p) for p in parts]
    first = infos[0]
    expected = _layout(first)
    for info in infos[1:]:
        layout = _layout(info)
        if layout != expected:
            keys = sorted(k for k in expected if layout[k] != expected[k])
            if keys == ["settings"]:
                keys = sorted(
                    k
                    for k in set(expected["settings"]) | set(layout["settings"])
                    if expected["settings"].get(k) != layout["settings"].get(k)
                )
            raise UserError(f"{info.path} does not fit {first.path}: they differ in {', '.join(keys)}")
    ordered = sorted(infos, key=_span)
    covered = 0
    for info in ordered:
        start, stop = _span(info)
        if start < covered:
            raise UserError(f"{info.path} overlaps another part: rows {start}..{stop - 1} start before row {covered}")
        if start > covered:
            raise UserError(f"rows {covered}..{start - 1} are in no part: a shard is missing")
        covered = stop
    total = first.settings["grid_rows"]
    if covered != total:
        raise UserError(f"rows {covered}..{total - 1} are in no part: a shard is missing")
    return ordered


def merge_parts(parts: list[Path], out: Path, progress: Callable[[int, int], None] | None = None) -> Path:
    """Write `out` from parts that together cover one grid exactly; nothing is written if they do not fit."""
    ordered = check_parts(parts)
    layout = _layout(ordered[0])
    spec = DatasetSpec(**layout)
    total = sum(info.n for info in ordered)
    writer = H5Writer(out, spec)
    done = 0
    try:
        for info in ordered:
            for start in range(0, info.n, ROWS_PER_COPY):
                rows = slice(start, min(start + ROWS_PER_COPY, info.n))
                writer.append(info.read_images(rows), info.params[rows], info.labels[rows])
                done += rows.stop - rows.start
                if progress:
                    progress(done, total)
    except BaseException:
        writer.abort(keep=False)
        raise
    return writer.close()
