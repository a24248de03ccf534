"""The toolkit's HDF5 dataset file: one schema, a streaming writer and a validating reader.

Layout (see README, "The dataset file"):
  images  uint8 (N, H, W, 3), chunked, gzip-compressed, resizable
  params  float32 (N, P), attrs `names` (P strings) and `periods` (P floats, 0 = not periodic)
  labels  int64 (N,), attr `label_names`
  optional per-row columns (augmented files): alpha (N,), source_index (N, 2)
  file attrs: schema_version, writer, settings (a JSON string: renderer, samples, seed, ...)

Attributes are data: settings are parsed with `json.loads`, never evaluated.
The writer writes to `<path>.partial` and renames it into place on `close()`, so a reader never sees a
half-written file; an interrupted writer leaves the `.partial` behind for `resume=True` to continue.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from toolkit import __version__
from toolkit.errors import UserError

SCHEMA_VERSION = 1
IMAGE_CHUNK = 16  # images per HDF5 chunk: small enough for random access by a DataLoader

# Optional per-row columns: name -> (shape of one row, dtype).
EXTRA_COLUMNS: dict[str, tuple[tuple[int, ...], type]] = {
    "alpha": ((), np.float32),
    "source_index": ((2,), np.int64),
}


@dataclass
class DatasetSpec:
    """Everything about a dataset file except its rows."""

    image_size: int
    param_names: list[str]
    periods: list[float]  # one per parameter; 0 means not periodic, 360 for an azimuth
    label_names: list[str]
    settings: dict = field(default_factory=dict)  # who wrote it and how
    extra_columns: list[str] = field(default_factory=list)  # names from EXTRA_COLUMNS

    def __post_init__(self) -> None:
        if len(self.periods) != len(self.param_names):
            raise ValueError("one period per parameter is needed")
        unknown = set(self.extra_columns) - set(EXTRA_COLUMNS)
        if unknown:
            raise ValueError(f"unknown extra columns {sorted(unknown)}")

    def fingerprint(self) -> str:
        """A stable string identifying the spec: two writers with the same fingerprint write compatible rows."""
        return json.dumps(
            {
                "image_size": self.image_size,
                "param_names": self.param_names,
                "periods": [float(p) for p in self.periods],
                "label_names": self.label_names,
                "settings": self.settings,
                "extra_columns": self.extra_columns,
            },
            sort_keys=True,
        )


def partial_path(path: Path) -> Path:
    """Where a writer keeps an unfinished file."""
    return Path(path).with_name(Path(path).name + ".partial")


class H5Writer:
    """Append rows in chunks to a compressed, resizable dataset file; rename into place on `close()`.

    With `resume=True` an existing `.partial` written with the same spec is continued: `rows` tells how
    many rows it already holds. A `.partial` that cannot be opened (killed mid-write) is started afresh.
    """

    def __init__(self, path: Path, spec: DatasetSpec, resume: bool = False) -> None:
        self.path = Path(path)
        self.spec = spec
        self.tmp = partial_path(self.path)
        self.file: h5py.File | None = None
        if resume and self.tmp.exists():
            self.file = self._reopen()
        if self.file is None:
            try:
                self.file = self._create()
            except (OSError, RuntimeError) as e:
                raise self._write_failed(e) from None
        # Handles held for the writer's life: a handle freed after a failed write would retry it in its destructor.
        names = ["images", "params", "labels", *spec.extra_columns]
        self.columns = {name: self.file[name] for name in names}

    @property
    def rows(self) -> int:
        """Rows written and flushed so far."""
        return int(self.file.attrs["rows_written"])

    def _create(self) -> h5py.File:
        s = self.spec
        f = h5py.File(self.tmp, "w")
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["writer"] = f"aeai-toolkit {__version__}"
        f.attrs["settings"] = json.dumps(s.settings, sort_keys=True)
        f.attrs["spec_fingerprint"] = s.fingerprint()
        f.attrs["rows_written"] = 0
        size = s.image_size
        f.create_dataset(
            "images",
            shape=(0, size, size, 3),
            maxshape=(None, size, size, 3),
            dtype=np.uint8,
            chunks=(IMAGE_CHUNK, size, size, 3),
            compression="gzip",
            compression_opts=4,
        )
        p = f.create_dataset(
            "params", shape=(0, len(s.param_names)), maxshape=(None, len(s.param_names)), dtype=np.float32, chunks=True
        )
        p.attrs["names"] = np.array(s.param_names, dtype=h5py.string_dtype())
        p.attrs["periods"] = np.asarray(s.periods, dtype=np.float64)
        lab = f.create_dataset("labels", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=True)
        lab.attrs["label_names"] = np.array(s.label_names, dtype=h5py.string_dtype())
        for name in s.extra_columns:
            row_shape, dtype = EXTRA_COLUMNS[name]
            f.create_dataset(name, shape=(0, *row_shape), maxshape=(None, *row_shape), dtype=dtype, chunks=True)
        f.flush()
        return f

    def _reopen(self) -> h5py.File | None:
        try:
            f = h5py.File(self.tmp, "a")
        except OSError:
            return None  # torn by a kill mid-write: nothing trustworthy inside, start again
        if f.attrs.get("spec_fingerprint") != self.spec.fingerprint():
            f.close()
            raise UserError(
                f"{self.tmp} was started with other settings; delete it or re-run with the original settings"
            )
        rows = int(f.attrs["rows_written"])
        # Rows after the last flushed count may be incomplete: cut back to it.
        for name in ["images", "params", "labels", *self.spec.extra_columns]:
            f[name].resize(rows, axis=0)
        return f

    def append(self, images: np.ndarray, params: np.ndarray, labels: np.ndarray, **extra: np.ndarray) -> None:
        """Append a chunk of rows: images (n, H, W, 3) uint8, params (n, P), labels (n,), extra columns."""
        n = len(images)
        size = self.spec.image_size
        if images.shape[1:] != (size, size, 3) or images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (n, {size}, {size}, 3), got {images.dtype} {images.shape}")
        if set(extra) != set(self.spec.extra_columns):
            raise ValueError(f"expected extra columns {self.spec.extra_columns}, got {sorted(extra)}")
        start = self.rows
        columns = {"images": images, "params": params, "labels": labels, **extra}
        for name, values in columns.items():
            values = np.asarray(values, dtype=self.columns[name].dtype)
            if len(values) != n:
                raise ValueError(f"{name} has {len(values)} rows, images have {n}")
            columns[name] = values
        try:
            for name, values in columns.items():
                ds = self.columns[name]
                ds.resize(start + n, axis=0)
                ds[start:] = values
            self.file.attrs["rows_written"] = start + n
            self.file.flush()
        except (OSError, RuntimeError) as e:
            raise self._write_failed(e) from None

    def close(self) -> Path:
        """Finish the file and rename it into place; returns the final path."""
        try:
            self.file.attrs["rows_written"] = self.rows
            self.file.close()
            os.replace(self.tmp, self.path)
        except (OSError, RuntimeError) as e:
            raise self._write_failed(e) from None
        return self.path

    def _write_failed(self, error: Exception) -> UserError:
        # After a failed write (disk full, quota) HDF5 may have left its metadata half-updated: a resume
        # could trust rows that are not there, so the unfinished file goes too.
        _quarantine(self.file, getattr(self, "columns", {}))
        self.file = None
        self.abort(keep=False)
        # HDF5 buries the cause ("errno = 28") in a long multi-line message; the one-line error names it.
        errno = re.search(r"errno = (\d+)", str(error))
        reason = os.strerror(int(errno[1])) if errno else (str(error).splitlines() or [type(error).__name__])[0]
        return UserError(f"writing {self.path} failed ({reason}); no partial output was kept")

    def abort(self, keep: bool = True) -> None:
        """Close without finishing; keep the `.partial` for a later resume, or delete it."""
        if self.file is not None:
            with contextlib.suppress(Exception):
                self.file.close()
        if not keep:
            with contextlib.suppress(FileNotFoundError):
                self.tmp.unlink()


_broken_files: list = []


def _quarantine(*handles: object) -> None:
    """Keep the handles of a file whose writes failed away from HDF5's clean-up, which would crash the interpreter."""
    # HDF5 retries the failed write when a handle is freed (h5py prints the failure as a traceback) and when
    # the library shuts down, where it segfaults. So the handles are never freed, and the process ends before
    # HDF5 shuts down: exit status 1 (the job failed) instead of a crash.
    if not _broken_files:
        atexit.register(_exit_before_hdf5_shutdown)  # registered after h5py's own hook, so it runs first
    _broken_files.extend(handles)


def _exit_before_hdf5_shutdown() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(1)


@dataclass
class DatasetInfo:
    """A validated dataset file: its small arrays in memory, the images left on disk."""

    path: Path
    n: int
    image_size: int
    param_names: list[str]
    periods: np.ndarray  # (P,) 0 = not periodic
    params: np.ndarray  # (N, P) float32
    labels: np.ndarray  # (N,) int64
    label_names: list[str]
    settings: dict
    attrs: dict
    extra: dict[str, np.ndarray]

    def read_images(self, indices: np.ndarray | slice | None = None) -> np.ndarray:
        """Read images (uint8 NHWC) for sorted or unsorted indices; None reads all."""
        with h5py.File(self.path, "r") as f:
            ds = f["images"]
            if indices is None:
                return ds[...]
            if isinstance(indices, slice):
                return ds[indices]
            # h5py wants strictly increasing indices: read each once, then put back in the asked order.
            unique, inverse = np.unique(np.asarray(indices), return_inverse=True)
            return ds[unique][inverse]

    def describe_settings(self) -> str:
        """The settings on one line, long lists (a render grid) shortened to their ends and length."""

        def short(value: object) -> object:
            if isinstance(value, list) and len(value) > 6:
                return f"[{value[0]}, ..., {value[-1]}] ({len(value)} values)"
            if isinstance(value, dict):
                return "{" + ", ".join(f"{k}: {short(v)}" for k, v in value.items()) + "}"
            return value

        return ", ".join(f"{k}={short(v)}" for k, v in sorted(self.settings.items())) or "(none recorded)"


def _bad(path: Path, problem: str) -> UserError:
    return UserError(f"{path}: {problem}")


def _strings(values) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.atleast_1d(values)]


def open_dataset(path: Path | str) -> DatasetInfo:
    """Open and validate a dataset file; every problem is a one-line UserError naming the file."""
    path = Path(path)
    if not path.exists():
        hint = (
            " (an unfinished .partial is there: re-run the command to resume it)" if partial_path(path).exists() else ""
        )
        raise _bad(path, f"no such file{hint}")
    if path.is_dir():
        raise _bad(path, "is a directory, expected an HDF5 dataset file")
    if not h5py.is_hdf5(path):
        raise _bad(path, "is not an HDF5 file")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise _bad(path, f"cannot be read, the file is truncated or corrupt ({e})") from None
    try:
        with f:
            return _validate(path, f)
    except (OSError, KeyError, RuntimeError) as e:
        raise _bad(path, f"cannot be read, the file is truncated or corrupt ({e})") from None


def _validate(path: Path, f: h5py.File) -> DatasetInfo:
    for name in ("images", "params", "labels"):
        if name not in f:
            raise _bad(path, f"missing the '{name}' dataset; not a toolkit dataset file")
    version = f.attrs.get("schema_version")
    if version is not None and int(version) > SCHEMA_VERSION:
        raise _bad(path, f"schema version {int(version)} is newer than this toolkit's ({SCHEMA_VERSION}); upgrade")
    images, params, labels = f["images"], f["params"], f["labels"]
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3 or images.shape[1] != images.shape[2]:
        raise _bad(path, f"'images' must be uint8 (N, H, H, 3), found {images.dtype} {images.shape}")
    n = images.shape[0]
    if n == 0:
        raise _bad(path, "holds no images")
    if params.ndim != 2 or params.shape[0] != n or params.dtype.kind != "f":
        raise _bad(path, f"'params' must be float (N={n}, P), found {params.dtype} {params.shape}")
    if "names" not in params.attrs:
        raise _bad(path, "'params' has no 'names' attribute naming its columns")
    names = _strings(params.attrs["names"])
    if len(names) != params.shape[1]:
        raise _bad(path, f"'params' has {params.shape[1]} columns but {len(names)} names")
    periods = np.asarray(params.attrs.get("periods", np.zeros(len(names))), dtype=np.float64)
    if periods.shape != (len(names),):
        raise _bad(path, f"'params' periods attribute must have {len(names)} values")
    if not (np.isfinite(periods) & (periods >= 0)).all():
        raise _bad(path, f"'params' periods must be finite and >= 0 (0: not periodic), found {periods.tolist()}")
    param_values = params[...].astype(np.float32)
    bad = np.argwhere(~np.isfinite(param_values))  # (K, 2) (row, column), rows ascending
    if len(bad):
        row, column = bad[0]
        raise _bad(
            path,
            f"parameter '{names[column]}' is {param_values[row, column]} at row {row} ({len(bad)} non-finite "
            "value(s) in 'params'); every parameter must be a finite number",
        )
    if labels.shape != (n,) or labels.dtype.kind not in "iu":
        raise _bad(path, f"'labels' must be integer (N={n},), found {labels.dtype} {labels.shape}")
    label_values = labels[...].astype(np.int64)
    label_names = _strings(labels.attrs["label_names"]) if "label_names" in labels.attrs else []
    if not label_names:
        label_names = [str(k) for k in range(int(label_values.max()) + 1)]
    if label_values.min() < 0 or label_values.max() >= len(label_names):
        raise _bad(path, f"'labels' values must lie in 0..{len(label_names) - 1}")
    extra = {}
    for name, (row_shape, _) in EXTRA_COLUMNS.items():
        if name in f:
            if f[name].shape != (n, *row_shape):
                raise _bad(path, f"'{name}' must have shape {(n, *row_shape)}, found {f[name].shape}")
            extra[name] = f[name][...]
    settings_text = f.attrs.get("settings", "{}")
    try:
        settings = json.loads(settings_text)
    except (TypeError, json.JSONDecodeError):
        raise _bad(path, "its 'settings' attribute is not valid JSON") from None
    attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
    return DatasetInfo(
        path=path,
        n=n,
        image_size=images.shape[1],
        param_names=names,
        periods=periods,
        params=param_values,
        labels=label_values,
        label_names=label_names,
        settings=settings if isinstance(settings, dict) else {"value": settings},
        attrs=attrs,
        extra=extra,
    )
