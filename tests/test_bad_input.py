"""Bad input for every command, through the CLI's entry point: a non-zero exit, one line naming the problem and
no traceback.

Each case builds its bad input in a fresh folder and says which outputs must not appear afterwards (neither
the file nor its `.partial`). The files behind `info` and the COIL folders have their own cases in
test_dataset_format.py and test_coil_import.py; here the same kinds of bad file reach the other commands.
"""

from __future__ import annotations

import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from helpers import invoke_cli, run_cli, write_dataset
from toolkit.aeai.config import TrainConfig
from toolkit.aeai.trainer import train
from toolkit.datasets import partial_path
from toolkit.files import output_lock

TINY_NET = ["--width", "4", "--latent", "8", "--batch-size", "8", "--device", "cpu"]


@dataclass
class Inputs:
    """Good inputs shared by every case: a 32-pixel dataset, a 64-pixel one, a trained run on each."""

    data: Path
    data64: Path
    run: Path
    run64: Path
    coil: Path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    root = tmp_path_factory.mktemp("bad_input")
    data, data64 = write_dataset(root / "tiny.h5"), write_dataset(root / "tiny64.h5", size=64)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny nets: a second thread only spins on this busy machine
    try:
        for path, run in ((data, root / "run"), (data64, root / "run64")):
            config = TrainConfig(data=str(path), epochs=1, batch_size=8, latent=8, width=4, device="cpu")
            train(config, run)
    finally:
        torch.set_num_threads(threads)
    coil = root / "coil"
    coil.mkdir()
    from PIL import Image

    rng = np.random.default_rng(0)
    for deg in range(0, 360, 5):  # noise: it does not compress, so the import writes tens of kilobytes
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(coil / f"obj1__{deg}.png")
    return Inputs(data, data64, root / "run", root / "run64", coil)


# ---- bad files and folders, built in the case's own folder ----------------------------------------------


def not_hdf5(tmp: Path) -> Path:
    path = tmp / "notes.h5"
    path.write_text("just some text\n")
    return path


def truncated_h5(tmp: Path) -> Path:
    data = write_dataset(tmp / "good.h5").read_bytes()
    path = tmp / "truncated.h5"
    path.write_bytes(data[: len(data) // 2])
    return path


def h5_with(tmp: Path, images: np.ndarray | None, names: bool = True) -> Path:
    """A file with the toolkit's layout but the given `images` (None: no images at all)."""
    path = tmp / "schema.h5"
    n = 4 if images is None else len(images)
    with h5py.File(path, "w") as f:
        if images is not None:
            f["images"] = images
        f["params"] = np.zeros((n, 1), np.float32)
        if names:
            f["params"].attrs["names"] = ["azimuth_deg"]
        f["labels"] = np.zeros(n, np.int64)
    return path


def copy_run(tmp: Path, run: Path, spoil: Callable[[Path], None]) -> Path:
    copy = tmp / "run"
    shutil.copytree(run, copy)
    spoil(copy / "checkpoint.pt")
    return copy


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def blocked(tmp: Path, name: str) -> Path:
    """A path whose folder cannot be created: a plain file stands where the folder should be."""
    (tmp / "a_file").write_text("")
    return tmp / "a_file" / name


@dataclass
class Case:
    """The command line, the words the error must contain, and the outputs that must not appear."""

    args: list[str]
    problem: str
    outputs: list[Path]


def case_table(i: Inputs, tmp: Path) -> dict[str, Callable[[], Case]]:
    out, run_out = tmp / "out.h5", tmp / "new_run"
    run, data = str(i.run), str(i.data)
    augment = ["augment", "--run", run, "--out", str(out), "--device", "cpu"]

    def train_on(path: Path | str, *extra: str) -> Case:
        return Case(["train", "--data", str(path), "--out", str(run_out), *TINY_NET, *extra], "", [run_out])

    def spoiled(spoil: Callable[[Path], None], base: Path | None = None) -> str:
        return str(copy_run(tmp, base or i.run, spoil))

    def other_size(checkpoint: Path) -> None:
        shutil.copy(i.run64 / "checkpoint.pt", checkpoint)

    def with_problem(case: Case, problem: str) -> Case:
        case.problem = problem
        return case

    return {
        # missing paths and directories where files belong
        "train-missing-data": lambda: with_problem(train_on(tmp / "absent.h5"), "absent.h5: no such file"),
        "train-data-is-a-directory": lambda: with_problem(train_on(tmp), "is a directory"),
        "augment-missing-run": lambda: Case([*augment[:2], str(tmp / "absent"), *augment[3:]], "no such run", [out]),
        "evaluate-folder-is-not-a-run": lambda: Case(["evaluate", str(tmp)], "not a run directory", []),
        "augment-out-is-a-directory": lambda: Case([*augment[:-4], "--out", str(tmp)], "is a directory", []),
        "merge-missing-part": lambda: Case(["merge", str(tmp / "p1.h5"), "--out", str(out)], "no such file", [out]),
        # files that are not (whole) HDF5 datasets, and wrong schemas
        "train-not-hdf5": lambda: with_problem(train_on(not_hdf5(tmp)), "is not an HDF5 file"),
        "augment-truncated-hdf5": lambda: Case(
            [*augment, "--data", str(truncated_h5(tmp))], "truncated or corrupt", [out]
        ),
        "train-missing-images": lambda: with_problem(train_on(h5_with(tmp, None)), "missing the 'images' dataset"),
        "augment-float-images": lambda: Case(
            [*augment, "--data", str(h5_with(tmp, np.zeros((4, 32, 32, 3), np.float32)))], "must be uint8", [out]
        ),
        "evaluate-non-square-images": lambda: Case(
            ["evaluate", run, "--data", str(h5_with(tmp, np.zeros((4, 32, 30, 3), np.uint8))), "--out", str(tmp)],
            "must be uint8 (N, H, H, 3)",
            [tmp / "report.json"],
        ),
        "merge-params-without-names": lambda: Case(
            ["merge", str(h5_with(tmp, np.zeros((4, 32, 32, 3), np.uint8), names=False)), "--out", str(out)],
            "no 'names' attribute",
            [out],
        ),
        "merge-a-file-not-rendered": lambda: Case(["merge", data, "--out", str(out)], "not written by render", [out]),
        "train-unsupported-image-size": lambda: with_problem(
            train_on(write_dataset(tmp / "s40.h5", size=40)), "image size 40 is not supported"
        ),
        # run directories and checkpoints
        "train-resume-without-checkpoint": lambda: Case(
            ["train", "--resume", "--out", spoiled(Path.unlink)], "has no checkpoint to continue from", []
        ),
        "augment-run-without-checkpoint": lambda: Case(
            [*augment[:2], spoiled(Path.unlink), *augment[3:]], "no checkpoint", [out]
        ),
        "train-resume-truncated-checkpoint": lambda: Case(
            ["train", "--resume", "--out", spoiled(truncate)], "truncated or corrupt", []
        ),
        "augment-truncated-checkpoint": lambda: Case(
            [*augment[:2], spoiled(truncate), *augment[3:]], "truncated or corrupt", [out]
        ),
        "interpolate-truncated-checkpoint": lambda: Case(
            ["interpolate", spoiled(truncate), "--out", str(tmp / "x.png")], "truncated or corrupt", [tmp / "x.png"]
        ),
        "augment-checkpoint-for-another-size": lambda: Case(
            [*augment[:2], spoiled(other_size), *augment[3:]], "does not match the run's config", [out]
        ),
        "evaluate-checkpoint-for-another-size": lambda: Case(
            ["evaluate", spoiled(other_size)], "does not match the run's config", []
        ),
        "augment-data-of-another-size": lambda: Case(
            [*augment, "--data", str(i.data64)], "holds 64px images, the run was trained on 32px", [out]
        ),
        # numbers out of range, impossible sizes and grids
        "augment-n-zero": lambda: Case([*augment, "--n", "0"], "--n must be a positive number", [out]),
        "augment-n-negative": lambda: Case([*augment, "--n", "-3"], "--n must be a positive number", [out]),
        "augment-no-pairs-within-gap": lambda: Case([*augment, "--max-gap", "1"], "no pairs of images", [out]),
        "train-epochs-zero": lambda: with_problem(train_on(data, "--epochs", "0"), "--epochs must be at least 1"),
        "train-batch-of-one": lambda: with_problem(train_on(data, "--batch-size", "1"), "--batch-size must be at"),
        "render-pole-size-too-large": lambda: Case(
            ["render-pole", "--size", "100000", "--out", str(out)], "--size must be at most 4096", [out]
        ),
        "render-pole-zero-workers": lambda: Case(
            ["render-pole", "--workers", "0", "--out", str(out)], "--workers must be at least 1", [out]
        ),
        "render-pole-reversed-range": lambda: Case(
            ["render-pole", "--elevations", "80:45:5", "--out", str(out)], "below its start", [out]
        ),
        "render-turntable-zero-step": lambda: Case(
            ["render-turntable", "--step", "0", "--out", str(out)], "--step must lie in (0, 360]", [out]
        ),
        "import-coil-size-too-large": lambda: Case(
            ["import-coil", str(i.coil), "--size", "100000", "--out", str(out)], "--size must be at most", [out]
        ),
        "interpolate-one-step": lambda: Case(
            ["interpolate", run, "--steps", "1", "--out", str(tmp / "x.png")], "--steps must be at least 2", []
        ),
        "interpolate-pair-outside-the-data": lambda: Case(
            ["interpolate", run, "--pair", "0", "999", "--out", str(tmp / "x.png")], "outside the dataset", []
        ),
        "evaluate-negative-interval": lambda: Case(["evaluate", run, "--interval", "-5"], "--interval", []),
        "downstream-zero-seeds": lambda: Case(
            ["downstream", "--data", data, "--seeds", "0", "--out", str(tmp / "ds")], "--seeds must be at least 1", []
        ),
        # a label the data does not hold
        "train-absent-label": lambda: with_problem(train_on(data, "--label", "7"), "--label 7: no images"),
        # output folders that cannot be written
        "augment-out-folder-cannot-be-created": lambda: Case(
            [*augment[:-4], "--out", str(blocked(tmp, "a.h5")), "--device", "cpu"], "cannot create output folder", []
        ),
        "train-run-folder-cannot-be-created": lambda: Case(
            ["train", "--data", data, "--out", str(blocked(tmp, "run")), *TINY_NET], "cannot create run directory", []
        ),
        "import-coil-unwritable-folder": lambda: Case(
            ["import-coil", str(i.coil), "--out", "/proc/coil.h5"], "is not writable", [Path("/proc/coil.h5")]
        ),
        "evaluate-out-folder-cannot-be-created": lambda: Case(
            ["evaluate", run, "--out", str(blocked(tmp, "eval"))], "cannot create output folder", []
        ),
    }


CASES = sorted(case_table(Inputs(*[Path()] * 5), Path()))


def one_line_error(result: subprocess.CompletedProcess, problem: str, after_progress: bool = False) -> None:
    """Exit code 1, one stderr line naming `problem` (below the progress bar of a job that had begun), no traceback."""
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1 or (after_progress and len(lines) == 2), result.stderr
    assert lines[-1].startswith("error:") and problem in lines[-1], result.stderr


@pytest.mark.parametrize("name", CASES)
def test_bad_input_is_one_line_and_writes_nothing(name: str, inputs: Inputs, tmp_path: Path) -> None:
    """Every case of the table: one line naming the problem, exit 1, no output and no .partial left.

    In-process through the CLI's entry point (`main`): a subprocess per case would add only a torch import.
    """
    case = case_table(inputs, tmp_path)[name]()
    result = invoke_cli(*case.args, cwd=tmp_path)
    one_line_error(result, case.problem)
    for path in case.outputs:
        assert not path.exists() and not partial_path(path).exists(), path
        assert not (path / "checkpoint.pt").exists()


def test_unknown_option_is_a_usage_error_without_traceback(tmp_path: Path) -> None:
    result = run_cli("augment", "--frames", "10", cwd=tmp_path)
    assert result.returncode == 2 and "No such option" in result.stderr and "Traceback" not in result.stderr


# ---- an output another running job is writing --------------------------------------------------------


def test_output_locked_by_another_job_is_refused_and_left_intact(inputs: Inputs, tmp_path: Path) -> None:
    """augment and import-coil on a file another job holds: refused, and that job's .partial untouched."""
    out = tmp_path / "busy.h5"
    partial_path(out).write_bytes(b"another job's rows")
    with output_lock(out):  # flock: held for this process, refused to any other
        for args in (
            ["augment", "--run", str(inputs.run), "--n", "10", "--pairs", "random", "--device", "cpu"],
            ["import-coil", str(inputs.coil), "--size", "16"],
        ):
            one_line_error(run_cli(*args, "--out", str(out)), "is being written by another running job")
    assert partial_path(out).read_bytes() == b"another job's rows" and not out.exists()


def test_run_locked_by_a_running_training_is_refused(inputs: Inputs, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(inputs.run, run)
    before = (run / "checkpoint.pt").read_bytes()
    with output_lock(run / "run"):
        one_line_error(run_cli("train", "--resume", "--out", str(run), "--epochs", "2"), "another running job")
    assert (run / "checkpoint.pt").read_bytes() == before


# ---- a write error half-way ------------------------------------------------------------------------------


def run_with_file_size_limit(limit: int, *args: str) -> subprocess.CompletedProcess:
    """The CLI with writes past `limit` bytes failing (EFBIG), as on a full disk, part-way through the job."""

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    exe = Path(sys.executable).with_name("toolkit")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, preexec_fn=limit_file_size, timeout=300)


def test_write_error_mid_augment_leaves_no_partial_output(inputs: Inputs, tmp_path: Path) -> None:
    out = tmp_path / "aug.h5"
    args = ["augment", "--run", str(inputs.run), "--n", "400", "--batch-size", "16", "--pairs", "random"]
    result = run_with_file_size_limit(60_000, *args, "--device", "cpu", "--out", str(out))
    one_line_error(result, "File too large", after_progress=True)
    assert not out.exists() and not partial_path(out).exists()


def test_write_error_mid_import_leaves_no_partial_output(inputs: Inputs, tmp_path: Path) -> None:
    out = tmp_path / "coil.h5"
    result = run_with_file_size_limit(40_000, "import-coil", str(inputs.coil), "--size", "48", "--out", str(out))
    one_line_error(result, "File too large", after_progress=True)
    assert not out.exists() and not partial_path(out).exists()


def test_write_error_mid_training_is_one_line_and_keeps_no_partial_checkpoint(inputs: Inputs, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["train", "--data", str(inputs.data), "--out", str(run), *TINY_NET, "--epochs", "2"]
    result = run_with_file_size_limit(30_000, *args)
    assert not list(run.glob(".checkpoint.pt*")) and not (run / "checkpoint.pt").exists()
    one_line_error(result, "File too large", after_progress=True)
