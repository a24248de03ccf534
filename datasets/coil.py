"""Import a COIL-100 folder (`obj<k>__<deg>.png`, 72 views at 5 degrees) as a dataset file."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from toolkit.datasets.h5 import DatasetSpec, H5Writer
from toolkit.errors import UserError

NAME = re.compile(r"^obj(\d+)__(\d+)\.png$", re.IGNORECASE)
VIEW_STEP = 5  # COIL-100 views are 5 degrees apart
MAX_SIZE = 4096  # the 128-pixel originals upscaled further hold no detail, only memory (72 x 3 x size^2 per object)
IGNORED = {"thumbs.db", ".ds_store", "convertgroupppm2png.pl"}  # what the official archive ships besides views


def scan_coil(folder: Path, objects: list[int] | None = None) -> dict[int, dict[int, Path]]:
    """Map object -> {azimuth: file}; every problem in the folder is reported at once, in one line."""
    folder = Path(folder)
    if not folder.exists():
        raise UserError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise UserError(f"{folder}: is not a folder; give the folder holding the obj<k>__<deg>.png files")
    root = folder.resolve()
    views: dict[int, dict[int, Path]] = {}
    unknown: list[str] = []
    outside: list[str] = []
    for entry in sorted(folder.iterdir()):
        if entry.name.lower() in IGNORED:
            continue
        match = NAME.match(entry.name)
        if not match or not entry.is_file():
            unknown.append(entry.name)
            continue
        if not entry.resolve().is_relative_to(root):
            outside.append(entry.name)  # a link pointing out of the folder is never followed
            continue
        obj, deg = int(match[1]), int(match[2])
        if objects is None or obj in objects:
            views.setdefault(obj, {})[deg] = entry
    problems = []
    if outside:
        problems.append(f"{len(outside)} link(s) pointing outside the folder ({', '.join(outside[:5])})")
    if unknown:
        more = f", ... ({len(unknown)} in all)" if len(unknown) > 5 else ""
        problems.append(f"{len(unknown)} file(s) not named obj<k>__<deg>.png ({', '.join(unknown[:5])}{more})")
    if objects is not None:
        absent = sorted(set(objects) - set(views))
        if absent:
            problems.append(f"object(s) {absent} not in the folder")
    expected = set(range(0, 360, VIEW_STEP))
    for obj, by_deg in sorted(views.items()):
        missing = sorted(expected - set(by_deg))
        extra = sorted(set(by_deg) - expected)
        if missing:
            problems.append(f"obj{obj} misses view(s) at {missing} degrees")
        if extra:
            problems.append(f"obj{obj} has view(s) off the 5-degree grid at {extra} degrees")
    if not views and not problems:
        problems.append("no obj<k>__<deg>.png images found")
    if problems:
        raise UserError(f"{folder}: " + "; ".join(problems))
    return views


def import_coil(
    folder: Path,
    out: Path,
    size: int = 128,
    objects: list[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write `out` with label = object, param azimuth_deg (periodic, 360); nothing is written on failure."""
    if size < 8:
        raise UserError(f"--size must be at least 8, got {size}")
    if size > MAX_SIZE:
        raise UserError(f"--size must be at most {MAX_SIZE}, got {size}")
    views = scan_coil(folder, objects)
    spec = DatasetSpec(
        image_size=size,
        param_names=["azimuth_deg"],
        periods=[360.0],
        label_names=[f"obj{k}" for k in sorted(views)],
        settings={"source": "coil-100", "folder": str(Path(folder).resolve()), "image_size": size},
    )
    total = sum(len(v) for v in views.values())
    writer = H5Writer(out, spec)
    done, unreadable = 0, []
    try:
        for label, obj in enumerate(sorted(views)):
            images, params = [], []
            for deg, file in sorted(views[obj].items()):
                try:
                    with Image.open(file) as im:
                        im = im.convert("RGB")
                        if im.size != (size, size):
                            im = im.resize((size, size), Image.Resampling.LANCZOS)
                        images.append(np.asarray(im, dtype=np.uint8))
                except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
                    unreadable.append(file.name)
                params.append([deg])
                done += 1
                if progress:
                    progress(done, total)
            if not unreadable:
                writer.append(np.stack(images), np.asarray(params, np.float32), np.full(len(images), label))
        if unreadable:
            raise UserError(f"{folder}: {len(unreadable)} unreadable image(s): {', '.join(unreadable[:5])}")
    except BaseException:
        writer.abort(keep=False)
        raise
    return writer.close()
