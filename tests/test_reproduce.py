"""`toolkit reproduce` on tiny 32-pixel grids: the page, skipping, resuming after Ctrl-C, and its decisions."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from test_evaluate import write_grid_dataset
from typer.testing import CliRunner

from helpers import invoke_cli, write_dataset
from toolkit.cli import app
from toolkit.errors import UserError
from toolkit.evaluate.config import Ends, EvalConfig
from toolkit.experiments.reproduce import reproduce
from toolkit.experiments.reproduce_plan import (
    ReproduceConfig,
    ablation_worse_on,
    aeai_beaten_by,
    beyond_noise,
    planned_runs,
    strongest_baseline,
)
from toolkit.experiments.results_page import verdicts


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A pole-like grid (4 elevations x 18 azimuths) and a two-object turntable, 20 degrees a view."""
    root = tmp_path_factory.mktemp("reproduce_data")
    pole = write_grid_dataset(root / "pole.h5", [45.0, 55.0, 65.0, 75.0], azimuth_step=20.0, size=32)
    return pole, write_dataset(root / "turntable.h5", n_labels=2, n_views=18, size=32)


def tiny(data: tuple[Path, Path], root: Path, **changes) -> ReproduceConfig:
    cfg = ReproduceConfig(
        pole=data[0],
        turntable=data[1],
        object=1,
        methods=("aeai", "ae"),
        seeds=2,
        epochs_pole=1,
        epochs_turntable=1,
        batch_size=8,
        device="cpu",
        runs=root / "runs",
        out=root / "docs" / "results.md",
        # The tiny grids' 20-degree steps: arcs of 5 of 18 views hold one 80-degree test interval per line.
        evaluation=EvalConfig(ends=Ends.test, min_interval=40, max_interval=80, retrieval_interval=60),
    )
    return replace(cfg, **changes)


def mtimes(runs: Path) -> dict[Path, int]:
    files = [*runs.rglob("checkpoint.pt"), *runs.rglob("evaluation-*.json"), *runs.rglob("references-*.json")]
    return {path: path.stat().st_mtime_ns for path in files}


def test_command_writes_the_page_then_skips_finished_runs(data: tuple[Path, Path], tmp_path: Path) -> None:
    cfg = tiny(data, tmp_path)
    args = ["reproduce", "--pole", str(cfg.pole), "--turntable", str(cfg.turntable), "--object", "1"]
    args += ["--methods", "aeai,ae", "--seeds", "2", "--epochs-pole", "1", "--epochs-turntable", "1"]
    args += ["--batch-size", "8", "--device", "cpu", "--runs", str(cfg.runs), "--out", str(cfg.out)]
    args += ["--interval", "80", "--retrieval-interval", "60", "--min-interval", "40"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "run 8/8 turntable/ae-seed1" in result.output  # seeds 0, 1 of aeai and of ae (the only baseline)
    page = cfg.out.read_text()
    assert page.count("| aeai | 2 |") == 2 and page.count("| ae | 2 |") == 2  # one table per dataset
    assert "Strongest baseline after seed 0 (lowest interval MSE on the validation intervals): **ae**" in page
    assert "is below every converged baseline's by more than two seed standard deviations: **" in page
    assert page.count("| *pixel cross-dissolve (reference)* | — |") == 2 and "| *ground truth (reference)* |" in page
    assert "Every method beats the pixel cross-dissolve on interval MSE: **" in page
    assert "intervals between two test images with no training image in between" in page  # what ends means
    assert cfg.command_line() in page and "## Comparison with the paper's figure 6" in page
    assert "- Not run (left out with `--methods`, so neither trained nor compared): vae, aae, acai, amr, gaia, " in page
    for dataset in ("pole", "turntable"):
        for name in ("interval_mse", "alpha_retrieval", "strips"):
            assert (tmp_path / "docs" / "results" / dataset / f"{name}.png").stat().st_size > 1000
            assert f"results/{dataset}/{name}.png" in page
    assert (tmp_path / "docs" / "results" / "pole" / "parameter_distance.png").exists()  # two parameters only
    evaluation = json.loads((cfg.runs / "turntable" / "aeai-seed0" / "evaluation-test.json").read_text())
    assert evaluation["result"]["grid"]["labels"] == ["obj1"]  # the trained object only
    test_ends = evaluation["result"]["axes"]["azimuth_deg"]["split"]
    assert list(test_ends["ends"]) == ["test-test"] and list(test_ends["in_between_ground_truth"]) == ["test"]

    before = mtimes(cfg.runs)
    assert len(before) == 8 * 3 + 2  # per run a checkpoint and two evaluations; per dataset the references
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert mtimes(cfg.runs) == before  # nothing retrained or re-measured

    with pytest.raises(UserError, match="batch_size=8, not 4"):
        reproduce(replace(cfg, batch_size=4), log=lambda line: None)


def test_ctrl_c_stops_the_plan_and_the_same_command_resumes(data: tuple[Path, Path], tmp_path: Path) -> None:
    cfg = tiny(data, tmp_path, datasets=("pole",), seeds=1, epochs_pole=2)

    @contextlib.contextmanager
    def interrupting(description: str, unit: str) -> Iterator[Callable[..., None]]:
        def update(done: int, total: int | None = None, **fields: object) -> None:
            if "ae-seed0 train" in description and fields.get("epoch") == 2:
                os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, in epoch 2 of the second run

        yield update

    with pytest.raises(KeyboardInterrupt):
        reproduce(cfg, log=lambda line: None, bar=interrupting)
    aeai, ae = cfg.runs / "pole" / "aeai-seed0", cfg.runs / "pole" / "ae-seed0"
    assert epoch_of(ae) == 1 and not cfg.out.exists()
    first_line = (ae / "metrics.jsonl").read_text().splitlines()[0]
    finished = (aeai / "checkpoint.pt").stat().st_mtime_ns

    reproduce(cfg, log=lambda line: None)
    assert (aeai / "checkpoint.pt").stat().st_mtime_ns == finished
    assert epoch_of(ae) == 2
    lines = (ae / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and lines[0] == first_line  # continued, not restarted
    assert "| pole/ae-seed0 | 2 |" in cfg.out.read_text()


def epoch_of(run: Path) -> int:
    return int(torch.load(run / "checkpoint.pt", weights_only=True)["epoch"])


def test_strongest_baseline_is_the_baseline_with_the_lowest_interval_mse() -> None:
    seed0 = {"aeai": 0.001, "aeai-no-s": 0.0015, "ae": 0.004, "vae": 0.003, "amr": 0.0031, "gaia": 0.009}
    assert strongest_baseline(seed0) == "vae"  # neither aeai nor an ablation, though lower
    assert strongest_baseline({"aeai": 0.001, "aeai-no-c": 0.002}) is None


def test_plan_size() -> None:
    assert planned_runs(ReproduceConfig()) == 2 * (10 + 2 * 5)  # more seeds: AEAI, 3 ablations, 1 baseline
    assert planned_runs(ReproduceConfig(datasets=("pole",), methods=("aeai", "aeai-no-d"), seeds=3)) == 2 + 2 * 2
    assert planned_runs(ReproduceConfig(datasets=("pole",), methods=("ae", "vae"), seeds=2)) == 2 + 1


def test_verdicts_on_hand_made_numbers() -> None:
    values = {  # one seed each: any difference counts
        "aeai": {"interval_mse": [0.002], "alpha_iqr": [0.10], "smoothness": [0.20]},
        "ae": {"interval_mse": [0.004], "alpha_iqr": [0.05], "smoothness": [0.10]},
        "vae": {"interval_mse": [0.0019], "alpha_iqr": [0.30], "smoothness": [0.30]},
        "aeai-no-d": {"interval_mse": [0.001], "alpha_iqr": [0.10], "smoothness": [0.25]},
        "aeai-no-s": {"interval_mse": [0.001], "alpha_iqr": [0.05], "smoothness": [0.10]},
    }
    assert aeai_beaten_by(values) == ["vae"]
    assert ablation_worse_on(values, "aeai-no-d") == ["smoothness"]  # higher is worse for every summary
    assert ablation_worse_on(values, "aeai-no-s") == []
    lines = verdicts(values, {}, None)
    assert lines[0].endswith("**no** (matched or beaten by vae)")
    assert lines[1] == (
        "- aeai-no-d is worse than full AEAI by more than two seed standard deviations on at least one summary "
        "measure: **yes** (ACAI smoothness)"
    )
    assert lines[2].endswith("**no**")
    assert aeai_beaten_by({**values, "vae": {"interval_mse": [0.0021]}}) == []
    # An unconverged baseline is named and left out; a method at or above the dissolve is named.
    lines = verdicts(values, {"vae": 3.5}, {"interval_mse": 0.003})
    assert lines[0].startswith("- vae **did not converge**: its test reconstruction MSE is 3.5x the plain AE's")
    assert lines[1].endswith("every converged baseline's by more than two seed standard deviations: **yes**")
    assert lines[2] == "- Every method beats the pixel cross-dissolve on interval MSE: **no**: ae do(es) not"


def test_a_win_or_a_loss_counts_only_beyond_two_seed_standard_deviations() -> None:
    aeai = [0.00183, 0.00179, 0.00187]  # mean 0.00183, sample std 0.00004
    assert beyond_noise(aeai, [0.00200])  # 0.00017 above: more than 2 x 0.00004
    assert not beyond_noise(aeai, [0.00189])  # 0.00006 above: within the noise
    assert not beyond_noise(aeai, [0.00181])  # below: not worse at all
    assert not beyond_noise([0.00183], [0.00180, 0.00200, 0.00220])  # the noisier row's std (0.0002) counts
    values = {"aeai": {"interval_mse": aeai}, "ae": {"interval_mse": [0.00194, 0.00198, 0.00190]}}
    assert aeai_beaten_by(values) == []  # 0.00011 above AEAI, std 0.00004 both: beyond 2 std
    values["acai"] = {"interval_mse": [0.00186, 0.00190, 0.00188]}
    assert aeai_beaten_by(values) == ["acai"]  # 0.00005 above: a tie, so AEAI does not beat it
    values["aeai-no-c"] = {"interval_mse": [0.00186, 0.00186, 0.00186], "alpha_iqr": [0.3, 0.3, 0.3]}
    values["aeai"]["alpha_iqr"] = [0.1, 0.11, 0.12]
    assert ablation_worse_on(values, "aeai-no-c") == ["alpha_iqr"]


def test_missing_dataset_names_the_render_command(data: tuple[Path, Path], tmp_path: Path) -> None:
    result = invoke_cli("reproduce", "--pole", str(data[0]), "--turntable", str(tmp_path / "none.h5"), "--out", "x.md")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "toolkit render-turntable" in lines[0], result.stderr
