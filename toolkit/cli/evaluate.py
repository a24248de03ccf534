"""`toolkit evaluate` and `toolkit interpolate`: measure a run's interpolations and look at them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli.options import (
    DeviceChoice,
    DeviceOption,
    IntervalOption,
    MinIntervalOption,
    RetrievalIntervalOption,
    torch_device,
)
from toolkit.cli.progress import console, progress_bar
from toolkit.errors import UserError
from toolkit.evaluate.config import SUMMARY, Ends


def evaluate(
    runs: Annotated[list[Path], typer.Argument(help="Run directories to measure; several are compared in one plot.")],
    data: Annotated[
        Path | None, typer.Option(help="Gridded dataset file; default: the one each run was trained on.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder for report.json and the plots; default: RUN/evaluation for one run.")
    ] = None,
    interval: IntervalOption = 80.0,
    retrieval_interval: RetrievalIntervalOption = 70.0,
    min_interval: MinIntervalOption = 15.0,
    ends: Annotated[
        Ends,
        typer.Option(
            help="all: every interval; validation: every image of an interval a training image (tune on these); "
            "test: both ends test images, no training image in between (report these)."
        ),
    ] = Ends.all,
    max_intervals: Annotated[
        int | None,
        typer.Option(
            help="Intervals per parameter at the largest length, at most, evenly spread; 0: all. [default: 288]"
        ),
    ] = None,
    curve_intervals: Annotated[
        int | None,
        typer.Option(help="At most this many intervals per parameter at each shorter length; 0: all. [default: 24]"),
    ] = None,
    references: Annotated[
        bool,
        typer.Option(
            help="Add the reference rows: the pixel cross-dissolve (what a method must beat) and the ground truth "
            "(a perfect interpolator: each measure's floor on this data)."
        ),
    ] = True,
    batch_size: Annotated[int, typer.Option(help="Frames decoded per batch.")] = 256,
    device: DeviceOption = DeviceChoice.auto,
) -> None:
    """Measure interpolation against ground truth as the paper's section 4.3 does; write report.json and plots.

    On a dataset whose images lie on a regular parameter grid (pole: elevation x azimuth; turntable, COIL-100:
    azimuth, wrapping at 360), every interval of L degrees along one parameter is interpolated between its two
    end images and each frame compared with the true image at its angle: interval MSE (mean and std per alpha,
    mean per interval length), alpha retrieval by nearest image at `--retrieval-interval` (median and IQR of
    the retrievals on the interval, and the fraction that fall off it), for two parameters the parameter-space
    distance to source and target, and ACAI's smoothness score. Beside the runs, two reference rows: the
    pixel cross-dissolve and the ground truth. The report says which ends and in-between images belong to
    each run's train and test split; tune on `--ends validation`, report `--ends test`.
    """
    from toolkit.evaluate.compare import compare_runs, named_results
    from toolkit.evaluate.config import EvalConfig
    from toolkit.evaluate.plots import plot_all
    from toolkit.files import check_writable_dir, write_json

    caps = {"max_intervals": max_intervals, "curve_intervals": curve_intervals}
    config = EvalConfig(
        min_interval=min_interval,
        max_interval=interval,
        retrieval_interval=retrieval_interval,
        ends=ends,
        batch_size=batch_size,
        **{k: v for k, v in caps.items() if v is not None},  # None: the library's defaults
    )
    config.validate()
    if out is None:
        if len(runs) > 1:
            raise UserError("several runs: say where the comparison goes with --out DIR")
        out = Path(runs[0]) / "evaluation"
    check_writable_dir(out / "report.json")
    report = compare_runs(runs, data, config, torch_device(device), references, bar=progress_bar)
    path = write_json(out / "report.json", report, indent=1)
    results = named_results(report)
    plots = plot_all(results, out)
    _print_summary(results)
    console.print(f"wrote {path} and {', '.join(p.name for p in plots)} in {report['seconds']:.1f} s")


def _print_summary(results: list[tuple[str, dict]]) -> None:
    """The one-number summaries as a table (lower is better in every column), and who fails to beat the dissolve."""
    from rich.table import Table

    table = Table(title="interpolation quality (lower is better)")
    table.add_column("run")
    for title, _ in SUMMARY.values():
        table.add_column(title, justify="right")
    for name, result in results:
        summary = result["summary"]
        cells = ["-" if summary[key] is None else fmt.format(summary[key]) for key, (_, fmt) in SUMMARY.items()]
        table.add_row(name, *cells)
    console.print(table)
    for name, result in results:
        if result.get("beats_dissolve") is False:
            console.print(f"{name} does not beat the pixel cross-dissolve on interval MSE")


def _check_rows(rows: list[int], n: int, option: str) -> None:
    bad = [r for r in rows if not 0 <= r < n]
    if bad:
        raise UserError(f"{option}: image index {bad[0]} is outside the dataset's 0..{n - 1}")


def interpolate(
    run: Annotated[Path, typer.Argument(help="Run directory of a trained model.")],
    out: Annotated[Path, typer.Option(help="Image to write (.png, .jpg), or an animated .gif.")],
    data: Annotated[Path | None, typer.Option(help="Dataset file; default: the one the run was trained on.")] = None,
    pair: Annotated[
        tuple[int, int] | None, typer.Option(help="Interpolate between these two images (dataset rows I J).")
    ] = None,
    corners: Annotated[
        tuple[int, int, int, int] | None,
        typer.Option(help="Bilinear grid between four images: top-left, top-right, bottom-left, bottom-right."),
    ] = None,
    grid: Annotated[
        bool, typer.Option(help="A bilinear grid; without --corners, corners from the test split.")
    ] = False,
    steps: Annotated[int, typer.Option(help="Frames from alpha 0 to 1 (grid: per side).")] = 10,
    examples: Annotated[int, typer.Option(help="Without --pair: this many test-split pairs, one strip each.")] = 4,
    gap: Annotated[float, typer.Option(help="Without --pair: preferred parameter difference of a pair.")] = 60.0,
    dissolve: Annotated[bool, typer.Option(help="Show the pixel cross-dissolve next to the model.")] = False,
    scale: Annotated[int, typer.Option(help="Pixel enlargement; 0: about 128 pixels per image.")] = 0,
    device: DeviceOption = DeviceChoice.auto,
) -> None:
    """Decode latent interpolations: a strip per pair, a bilinear grid of four corners, or an animated GIF.

    Strips show the real source, the decoded frames from alpha 0 to 1, and the real target; with `--dissolve`
    a row of pixel cross-dissolves beneath each (the paper's figure 1). Grids put the real images in their
    corners, as the paper's appendix figures do. Without `--pair` or `--corners`, pairs come from the run's
    test split: images of one object about `--gap` degrees apart.
    """
    import numpy as np

    from toolkit.evaluate import pictures as vis
    from toolkit.evaluate.compare import load_with_data
    from toolkit.files import check_extension, check_writable_dir

    if steps < 2:
        raise UserError(f"--steps must be at least 2 (alpha 0 and 1), got {steps}")
    if examples < 1:
        raise UserError(f"--examples must be positive, got {examples}")
    check_extension(
        out, (".png", ".jpg", ".jpeg", ".gif"), "interpolate's output (a PNG or JPEG image, a GIF animation)"
    )
    check_writable_dir(out)
    is_gif = out.suffix.lower() == ".gif"
    if (grid or corners) and is_gif:
        raise UserError("a bilinear grid is a still image: write it to a .png")
    chosen = torch_device(device)
    loaded, dataset = load_with_data(run, data, chosen)
    size = dataset.image_size
    scale = scale or max(1, round(128 / size))
    if grid or corners:
        rows = list(corners) if corners else _example_corners(loaded, dataset, gap)
        _check_rows(rows, dataset.n, "--corners")
        images = dataset.read_images(np.asarray(rows))
        blocks = [vis.decode_bilinear(loaded.model, images, steps, chosen)]
        if dissolve:
            blocks.append(vis.dissolve_bilinear(images, steps))
        vis.save_image(vis.grid_image(blocks, images, scale), out)
        console.print(f"wrote {out}: bilinear grid between images {rows}")
        return
    pairs = np.asarray([pair]) if pair else vis.example_pairs(loaded, dataset, examples, gap)
    _check_rows(pairs.ravel().tolist(), dataset.n, "--pair")
    first, second = dataset.read_images(pairs[:, 0]), dataset.read_images(pairs[:, 1])
    alphas = np.linspace(0.0, 1.0, steps)
    rows_of_frames = vis.interpolation_rows([(loaded.method, loaded.model)], first, second, alphas, chosen, dissolve)
    if is_gif:
        # One animation: every pair stacked, each row the model (and the dissolve beside it).
        side_by_side = np.concatenate([f for _, f in rows_of_frames], axis=3)  # (n, S, H, W', 3)
        stacked = np.concatenate(list(side_by_side), axis=1)  # (S, n * H, W', 3)
        vis.save_gif(vis.gif_frames(stacked, scale), out)
    else:
        vis.save_image(vis.strip_image(first, second, rows_of_frames, scale), out)
    described = ", ".join(f"{i}->{j}" for i, j in pairs.tolist())
    console.print(f"wrote {out}: {steps} frames between images {described}")


def _example_corners(loaded, dataset, gap: float) -> list[int]:
    """Four test images: the ends of two example pairs."""
    from toolkit.evaluate.pictures import example_pairs

    pairs = example_pairs(loaded, dataset, 2, gap)
    if len(pairs) < 2:
        raise UserError("the test split has too few suitable images for a grid; give --corners A B C D")
    return [int(r) for r in pairs.ravel()]
