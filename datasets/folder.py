"""Import a folder of images with a `metadata.csv` (the Hugging Face imagefolder convention) as a dataset file.

The CSV has a `file_name` column (a path relative to the folder, subfolders allowed) and one numeric column per
generating factor; an optional class column (`label`) gives labels and label_names. Rows are written in the
CSV's order. Each image becomes RGB (transparent pixels on black, 16-bit grey scaled to 8 bits, EXIF
orientation applied) and square: centre-cropped (`fit="crop"`) or padded with black (`fit="letterbox"`), then
resized with Lanczos, which averages over the source pixels when it shrinks.

Every problem with the folder is collected and reported at once, in one line, and the output never appears
unless all images were read: rows go to the writer's `.partial`, which is deleted on any problem.
"""

from __future__ import annotations

import csv
import math
import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from toolkit.datasets.h5 import DatasetSpec, H5Writer
from toolkit.errors import UserError
from toolkit.progress import Progress

METADATA = "metadata.csv"
FILE_COLUMN = "file_name"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}  # what the folder scan expects to find listed in the CSV
FITS = ("crop", "letterbox")
MIN_SIZE, MAX_SIZE = 8, 4096
CHUNK = 64  # images per write
EXAMPLES = 5  # names shown per kind of problem
UNREADABLE = (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError)


@dataclass
class FolderTable:
    """What metadata.csv says, checked against the folder; `problems` lists everything wrong with it."""

    folder: Path
    files: list[Path] = field(default_factory=list)  # one per CSV row, in order
    names: list[str] = field(default_factory=list)  # file_name as written in the CSV
    sizes: list[tuple[int, int] | None] = field(default_factory=list)  # (width, height); None: cannot be read
    factors: list[str] = field(default_factory=list)
    params: list[list[float]] = field(default_factory=list)
    label_values: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _listing(count_what: str, items: list[str]) -> str:
    more = f", ... ({len(items)} in all)" if len(items) > EXAMPLES else ""
    return f"{len(items)} {count_what} ({', '.join(items[:EXAMPLES])}{more})"


def _fail(folder: Path, problems: list[str]) -> UserError:
    return UserError(f"{folder}: " + "; ".join(problems))


def _read_csv(folder: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and (line number, cells) of each row of metadata.csv; UserError if there is nothing to read."""
    path = folder / METADATA
    if not path.is_file():
        raise _fail(folder, [f"no {METADATA}; give one with a {FILE_COLUMN} column and one column per factor"])
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            rows = [(reader.line_num, cells) for cells in reader if any(c.strip() for c in cells)]
    except UnicodeDecodeError:
        raise _fail(folder, [f"{METADATA} is not UTF-8 text"]) from None
    except (OSError, csv.Error) as e:
        raise _fail(folder, [f"{METADATA} cannot be read ({e})"]) from None
    if header is None or not any(h.strip() for h in header):
        raise _fail(folder, [f"{METADATA} is empty"])
    return [h.strip() for h in header], rows


def _check_columns(header: list[str], label: str | None, periodic: dict[str, float]) -> list[str]:
    problems = []
    if FILE_COLUMN not in header:
        problems.append(f"{METADATA} has no {FILE_COLUMN} column (its columns: {', '.join(header)})")
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        problems.append(f"{METADATA} repeats column(s) {', '.join(repeated)}")
    if "" in header:
        problems.append(f"{METADATA} has a column without a name")
    if label is not None and label not in header:
        problems.append(f"--label column '{label}' is not in {METADATA} (its columns: {', '.join(header)})")
    for name in periodic:
        if name not in header:
            problems.append(f"--periodic column '{name}' is not in {METADATA} (its columns: {', '.join(header)})")
        elif name in (FILE_COLUMN, label):
            problems.append(f"--periodic column '{name}' is not a factor")
    factors = [h for h in header if h not in (FILE_COLUMN, label, "")]
    if FILE_COLUMN in header and not factors:
        problems.append(f"{METADATA} has no factor column; add one numeric column per generating factor")
    return problems


def _inside(name: str) -> str | None:
    """The normalised relative path of `name`, or None when it points outside the folder (absolute, `..`)."""
    norm = posixpath.normpath(name)
    if os.path.isabs(norm) or norm == ".." or norm.startswith("../"):
        return None
    return norm


def _unlisted_images(root: Path, listed: set[str]) -> list[str]:
    """Images (png/jpg/jpeg, any case) in the folder and its subfolders without a row; hidden ones are skipped."""
    found = []
    for top, dirs, files in os.walk(root):  # links to folders are not followed
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_SUFFIXES:
                continue
            rel = Path(top, name).relative_to(root).as_posix()
            if rel not in listed:
                found.append(rel)
    return found


def read_folder(folder: Path, label: str | None = None, periodic: dict[str, float] | None = None) -> FolderTable:
    """Check metadata.csv against the folder; `problems` lists all that is wrong short of pixels that cannot be
    decoded (import_folder finds those)."""
    folder = Path(folder)
    if not folder.exists():
        raise UserError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise UserError(f"{folder}: is not a folder; give the folder holding the images and {METADATA}")
    periodic = periodic or {}
    root = folder.resolve()
    header, rows = _read_csv(folder)
    table = FolderTable(folder)
    problems = table.problems
    problems += _check_columns(header, label, periodic)
    if FILE_COLUMN not in header:
        raise _fail(folder, problems)
    table.factors = [h for h in header if h not in (FILE_COLUMN, label, "")]
    label = label if label in header else None  # an unknown --label column is a problem reported already
    if not rows:
        problems.append(f"{METADATA} lists no images")
    columns = {h: k for k, h in enumerate(header)}
    seen: dict[str, int] = {}
    kinds: dict[str, list[str]] = {}  # kind of problem -> examples, in CSV order
    for line, cells in rows:
        if len(cells) != len(header):
            kinds.setdefault(f"line(s) of {METADATA} whose fields do not match its {len(header)} columns", []).append(
                f"line {line}: {len(cells)}"
            )
            continue
        name = cells[columns[FILE_COLUMN]].strip()
        values = []
        for factor in table.factors:
            text = cells[columns[factor]].strip()
            try:
                value = float(text)
            except ValueError:
                kinds.setdefault("non-numeric factor value(s)", []).append(f"{factor}='{text}' at line {line}")
                value = math.nan
            else:
                if not math.isfinite(value):
                    kinds.setdefault("non-finite factor value(s)", []).append(f"{factor}={text} at line {line}")
            values.append(value)
        if label is not None and not cells[columns[label]].strip():
            kinds.setdefault("row(s) without a label", []).append(f"line {line}")
        norm = _inside(name) if name else None
        if not name:
            kinds.setdefault(f"row(s) with an empty {FILE_COLUMN}", []).append(f"line {line}")
            continue
        if norm is None:
            kinds.setdefault("file name(s) pointing outside the folder", []).append(name)
            continue
        if norm in seen:
            kinds.setdefault("file(s) listed twice", []).append(f"{name} at lines {seen[norm]} and {line}")
            continue
        seen[norm] = line
        path = folder / norm
        if not path.resolve().is_relative_to(root):
            kinds.setdefault("link(s) pointing outside the folder", []).append(name)
            continue
        if not path.is_file():
            kinds.setdefault("listed file(s) missing", []).append(name)
            continue
        try:
            with Image.open(path) as im:
                size = im.size
        except UNREADABLE:
            size = None  # reported when import_folder decodes it
        table.files.append(path)
        table.names.append(name)
        table.sizes.append(size)
        table.params.append(values)
        table.label_values.append(cells[columns[label]].strip() if label is not None else "")
    unlisted = _unlisted_images(root, set(seen))
    if unlisted:
        kinds.setdefault(f"image(s) without a row in {METADATA}", []).extend(unlisted)
    problems += [_listing(kind, items) for kind, items in kinds.items()]
    return table


def label_names_of(values: list[str]) -> list[str]:
    """Class names sorted: numerically when every one is an integer (2 before 10), else as text."""
    unique = set(values)
    try:
        return [str(v) for v in sorted(unique, key=int)]
    except ValueError:
        return sorted(unique)


def choose_size(table: FolderTable, size: int | None) -> int | None:
    """`size`, or the images' own when they are all square and equal; None (and a problem) when it must be given."""
    if size is not None:
        return size
    sizes = sorted({s for s in table.sizes if s is not None})
    if len(sizes) == 1 and sizes[0][0] == sizes[0][1] and MIN_SIZE <= sizes[0][0] <= MAX_SIZE:
        return sizes[0][0]
    if len(sizes) > 1 or (sizes and sizes[0][0] != sizes[0][1]):
        shown = ", ".join(f"{w}x{h}" for w, h in sizes[:EXAMPLES]) + (", ..." if len(sizes) > EXAMPLES else "")
        table.problems.append(f"the images are not all square and of one size ({shown}): give --size N")
    elif sizes:
        side = sizes[0][0]
        table.problems.append(f"the images are {side}x{side} pixels: give --size in {MIN_SIZE}..{MAX_SIZE}")
    return None


def _rgb(im: Image.Image) -> Image.Image:
    """Any mode as RGB: 16-bit grey scaled to 8 bits, transparent pixels on black."""
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        im = Image.fromarray(np.clip(np.asarray(im, np.float64) / 257, 0, 255).round().astype(np.uint8))
    if "A" in im.getbands() or "transparency" in im.info:
        im = im.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", im.size, (0, 0, 0, 255)), im).convert("RGB")
    return im.convert("RGB")


def square_image(im: Image.Image, size: int, fit: str = "crop") -> np.ndarray:
    """(size, size, 3) uint8: the centre square (crop) or the whole image padded with black (letterbox)."""
    w, h = im.size
    if fit == "crop":
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        square = im.resize((size, size), Image.Resampling.LANCZOS, box=(left, top, left + side, top + side))
        return np.asarray(square, np.uint8)
    scale = size / max(w, h)
    inner = im.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (size, size))
    canvas.paste(inner, ((size - inner.width) // 2, (size - inner.height) // 2))
    return np.asarray(canvas, np.uint8)


def load_image(path: Path, size: int | None, fit: str = "crop") -> np.ndarray | None:
    """Decode `path` fully (so a truncated file fails here) and square it; None when `size` is unknown."""
    with Image.open(path) as im:
        im.load()
        rgb = _rgb(ImageOps.exif_transpose(im))
    return None if size is None else square_image(rgb, size, fit)


def import_folder(
    folder: Path,
    out: Path,
    size: int | None = None,
    fit: str = "crop",
    label: str | None = None,
    periodic: dict[str, float] | None = None,
    progress: Progress | None = None,
) -> Path:
    """Write `out` from the folder's images and metadata.csv; every problem is one UserError, nothing is written."""
    if fit not in FITS:
        raise UserError(f"--fit must be one of {', '.join(FITS)}, got {fit}")
    if size is not None and not MIN_SIZE <= size <= MAX_SIZE:
        raise UserError(f"--size must lie in {MIN_SIZE}..{MAX_SIZE}, got {size}")
    periodic = periodic or {}
    table = read_folder(folder, label, periodic)
    size = choose_size(table, size)
    label_names = label_names_of(table.label_values) if label is not None else ["0"]
    writer = None
    if not table.problems:
        spec = DatasetSpec(
            image_size=size,
            param_names=table.factors,
            periods=[float(periodic.get(name, 0.0)) for name in table.factors],
            label_names=label_names,
            settings={
                "source": "image-folder",
                "folder": str(Path(folder).resolve()),
                "metadata": METADATA,
                "image_size": size,
                "fit": fit,
                "periodic": {name: float(periodic[name]) for name in table.factors if name in periodic},
                "label_column": label,
            },
        )
        writer = H5Writer(out, spec)
    index = {name: k for k, name in enumerate(label_names)}
    labels = np.asarray([index[v] for v in table.label_values] if label is not None else [0] * len(table.files))
    params = np.asarray(table.params, np.float32).reshape(len(table.files), len(table.factors))
    unreadable: list[str] = []
    chunk: list[np.ndarray] = []
    total = len(table.files)
    try:
        for row, path in enumerate(table.files):
            try:
                image = load_image(path, size, fit)
            except UNREADABLE:
                unreadable.append(table.names[row])
                chunk = []
            writing = writer is not None and not unreadable  # then every row so far is in `chunk` or written
            if writing:
                chunk.append(image)
                if len(chunk) == CHUNK or row == total - 1:
                    start = row + 1 - len(chunk)
                    writer.append(np.stack(chunk), params[start : row + 1], labels[start : row + 1])
                    chunk = []
            if progress:
                progress(row + 1, total)
        if unreadable:
            table.problems.append(_listing("unreadable image(s)", unreadable))
        if table.problems:
            raise _fail(Path(folder), table.problems)
    except BaseException:
        if writer is not None:
            writer.abort(keep=False)
        raise
    return writer.close()
