"""`toolkit render-pole`, `toolkit render-turntable` and `toolkit merge`: parse, validate, call toolkit.render."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli.progress import console, progress_bar

SizeOption = Annotated[int, typer.Option(help="Image size in pixels (square), at least 16.")]
SamplesOption = Annotated[
    int | None, typer.Option(help="Cycles samples per pixel [default: chosen for the scene and image size].")
]
DenoiserOption = Annotated[str, typer.Option(help="none, or oidn (OpenImageDenoise; slower, softer).")]
SeedOption = Annotated[int, typer.Option(help="Cycles seed: the same seed gives the same pixels on a re-run.")]
DeviceOption = Annotated[str, typer.Option(help="cpu, gpu (CUDA/OptiX), or auto (a GPU when Blender sees one).")]
WorkersOption = Annotated[int | None, typer.Option(help="Render processes [default: the number of CPU cores].")]
ShardOption = Annotated[
    str | None,
    typer.Option(help="Render only part i of n (from 1), e.g. 2/4, into its own file; join parts with `merge`."),
]


def _default_out(out: Path | None, name: str, shard_text: str | None) -> Path:
    if out is not None:
        return out
    if shard_text is None:
        return Path(f"data/{name}.h5")
    from toolkit.render.grid import parse_shard

    shard = parse_shard(shard_text)
    return Path(f"data/{name}-part{shard.index}of{shard.count}.h5")


def _render(scene, grid, out: Path, settings, workers: int | None, shard_text: str | None) -> None:
    from toolkit.files import DATASET_SUFFIXES, check_extension, check_writable_dir, output_lock
    from toolkit.render.grid import parse_shard
    from toolkit.render.runner import render_grid

    shard = parse_shard(shard_text)
    check_extension(out, DATASET_SUFFIXES, "a dataset file")
    check_writable_dir(out)
    with output_lock(out), progress_bar(f"render {scene.name}") as update:
        path = render_grid(scene, grid, out, settings, workers=workers, shard=shard, progress=update)
    console.print(f"wrote {path}")


def render_pole(
    out: Annotated[
        Path | None, typer.Option(help="Dataset file to write [default: data/pole.h5, per part with --shard].")
    ] = None,
    size: SizeOption = 64,
    elevations: Annotated[
        str,
        typer.Option(
            help="Light elevations in degrees (0..90): a range such as 45:80:5 (start, end included, step) or a list."
        ),
    ] = "45:80:5",
    azimuths: Annotated[
        str,
        typer.Option(help="Light azimuths in degrees (0..360): a range such as 0:355:5 or a list such as 0,90,180."),
    ] = "0:355:5",
    samples: SamplesOption = None,
    denoiser: DenoiserOption = "none",
    seed: SeedOption = 0,
    device: DeviceOption = "cpu",
    workers: WorkersOption = None,
    shard: ShardOption = None,
) -> None:
    """Render the pole dataset: a pole's shadow under a distant light at each (elevation, azimuth) of a grid.

    Re-running an interrupted render with the same command renders only the missing images.
    """
    from toolkit.render.pole import pole_grid, pole_samples, pole_scene
    from toolkit.render.scene import make_render_settings

    settings = make_render_settings(size, samples, denoiser, seed, device, pole_samples)
    grid = pole_grid(elevations, azimuths)
    _render(pole_scene(), grid, _default_out(out, "pole", shard), settings, workers, shard)


def render_turntable(
    out: Annotated[
        Path | None, typer.Option(help="Dataset file to write [default: data/turntable.h5, per part with --shard].")
    ] = None,
    objects: Annotated[int, typer.Option(help="How many objects (labels), each a distinct shape and material.")] = 8,
    step: Annotated[float, typer.Option(help="Degrees between views; must divide 360 (5 gives 72 views).")] = 5.0,
    size: SizeOption = 64,
    samples: SamplesOption = None,
    denoiser: DenoiserOption = "none",
    seed: SeedOption = 0,
    device: DeviceOption = "cpu",
    workers: WorkersOption = None,
    shard: ShardOption = None,
) -> None:
    """Render a COIL-100-like dataset: objects on a turntable against black, label = object, param azimuth_deg.

    Re-running an interrupted render with the same command renders only the missing images.
    """
    from toolkit.render.scene import make_render_settings
    from toolkit.render.turntable import turntable_grid, turntable_samples, turntable_scene

    settings = make_render_settings(size, samples, denoiser, seed, device, turntable_samples)
    scene = turntable_scene(objects)
    grid = turntable_grid(objects, step)
    _render(scene, grid, _default_out(out, "turntable", shard), settings, workers, shard)


def merge(
    parts: Annotated[list[Path], typer.Argument(help="The part files written with --shard i/n, in any order.")],
    out: Annotated[Path, typer.Option(help="Dataset file to write.")],
) -> None:
    """Join the parts of a sharded render into the file a single machine would have written.

    Parts rendered with different settings, or leaving gaps or overlapping, are refused.
    """
    from toolkit.files import DATASET_SUFFIXES, check_extension, check_writable_dir, output_lock
    from toolkit.render.merge import merge_parts

    check_extension(out, DATASET_SUFFIXES, "a dataset file")
    check_writable_dir(out)
    with output_lock(out), progress_bar("merge") as update:
        path = merge_parts(parts, out, progress=update)
    console.print(f"wrote {path}")
