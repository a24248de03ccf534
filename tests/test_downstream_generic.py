"""The downstream benchmark on any dataset file: the built-in tasks as generic protocols (same numbers as the
task code they replaced), factor, label and direction targets, splits, the verdict, label fidelity and the ETA."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_downstream import pole_like

from helpers import write_dataset
from toolkit.datasets import open_dataset
from toolkit.errors import UserError
from toolkit.experiments.downstream import run_benchmark
from toolkit.experiments.downstream_eta import BenchmarkClock, Phase
from toolkit.experiments.downstream_plan import DownstreamConfig
from toolkit.experiments.downstream_targets import FactorTarget, make_target, sparse_split
from toolkit.experiments.verdict import paired_verdict, t_quantile_975, verdicts

# The built-in tasks were task-specific code before they became presets of the generic path (commit 2e88833).
# Its scores were pinned here once, but a 5-step CNN's float kernels differ by CPU (AMD EPYC 104.36, Intel Xeon
# 104.07) by more than a changed split moves them (every 3rd azimuth: 104.98), so the tests pin what defined
# those tasks instead: which rows train and test, and the same scores as the protocol spelled out.


def quiet(line: str) -> None:
    pass


def test_the_pole_task_is_the_generic_protocol_of_the_code_it_replaced(tmp_path: Path) -> None:
    data = pole_like(tmp_path / "p.h5")
    cfg = DownstreamConfig(arms=["real", "mixup"], seeds=2, steps=5, batch_size=8, n_extra=24, scorer_steps=0)
    info = open_dataset(data)
    train, _ = sparse_split(info, cfg.protocol("p"))
    np.testing.assert_array_equal(train, np.flatnonzero(info.params[:, 1] % 20 == 0))  # every 4th azimuth, all elev.
    report = run_benchmark(data, tmp_path / "work", cfg, log=quiet)
    assert report["metric"] == "mean angular error (deg)" and report["max_gap"] == 20.0
    assert report["train_images"] == len(train) == 8 * 18
    # The same protocol spelled out on the command line is the same benchmark, to the bit.
    spelled = DownstreamConfig(
        task=None, target="direction", split_factor="azimuth_deg", every=4, arms=["real", "mixup"], seeds=2,
        steps=5, batch_size=8, n_extra=24, scorer_steps=0,
    )  # fmt: skip
    again = run_benchmark(data, tmp_path / "spelled", spelled, log=quiet)
    for arm in ("real", "mixup"):
        assert again["arms"][arm]["scores"] == report["arms"][arm]["scores"]


def test_the_turntable_task_is_the_generic_protocol_of_the_code_it_replaced(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "t.h5", n_labels=3, n_views=72, size=32)
    cfg = DownstreamConfig(task="turntable", arms=["real"], seeds=2, steps=5, batch_size=8, scorer_steps=0)
    info = open_dataset(data)
    train, _ = sparse_split(info, cfg.protocol("t"))
    np.testing.assert_array_equal(train, np.flatnonzero(info.params[:, 0] % 30 == 0))  # views 30 degrees apart
    report = run_benchmark(data, tmp_path / "work", cfg, log=quiet)
    assert report["metric"] == "test error rate (%)" and report["max_gap"] == 30.0
    assert report["train_images"] == 3 * 12
    spelled = DownstreamConfig(
        task=None, target="label", split_factor="azimuth_deg", every=6, arms=["real"], seeds=2, steps=5,
        batch_size=8, scorer_steps=0,
    )  # fmt: skip
    again = run_benchmark(data, tmp_path / "spelled", spelled, log=quiet)
    assert again["arms"]["real"]["scores"] == report["arms"]["real"]["scores"]


def test_splits_every_kth_value_or_a_fraction(tmp_path: Path) -> None:
    data = open_dataset(pole_like(tmp_path / "p.h5"))
    every3 = DownstreamConfig(task=None, target="elevation_deg", every=3).protocol("p")
    assert every3.split_factor == "elevation_deg"
    train, test = sparse_split(data, every3)
    assert sorted(set(data.params[train, 0].tolist())) == [45.0, 60.0, 75.0] and len(test) == 5 * 72
    fraction = DownstreamConfig(task=None, target="label", train_fraction=0.25).protocol("p")
    train, test = sparse_split(data, fraction)
    assert len(train) == 144 and len(set(train) | set(test)) == data.n
    np.testing.assert_array_equal(train, sparse_split(data, fraction)[0])  # seeded
    with pytest.raises(UserError, match="no factor 'colour'"):
        sparse_split(data, DownstreamConfig(task=None, split_factor="colour").protocol("p"))
    with pytest.raises(UserError, match="--every"):
        DownstreamConfig(every=1).validate()


def test_a_periodic_factor_is_scored_along_the_circle(tmp_path: Path) -> None:
    data = open_dataset(pole_like(tmp_path / "p.h5"))
    rows = np.arange(data.n)
    target = make_target(data, "azimuth_deg", rows)
    assert isinstance(target, FactorTarget) and target.outputs == 2
    y = target.encode(data.params, data.labels)
    assert target.score(y, y) == pytest.approx(0.0, abs=1e-3)
    shifted = data.params.copy()
    shifted[:, 1] = (shifted[:, 1] + 350) % 360  # 10 degrees off, across 0 for some
    assert target.score(target.encode(shifted, data.labels), y) == pytest.approx(10.0, abs=1e-3)
    elevation = make_target(data, "elevation_deg", rows)
    assert elevation.outputs == 1
    off = data.params + np.array([5.0, 0.0], np.float32)
    assert elevation.score(elevation.encode(off, data.labels), elevation.encode(data.params, data.labels)) == (
        pytest.approx(5.0, abs=1e-3)
    )
    with pytest.raises(UserError, match="no factor 'size'"):
        make_target(data, "size", rows)
    with pytest.raises(UserError, match="two classes"):
        make_target(data, "label", rows)


def test_a_factor_benchmark_with_a_trained_run_as_an_arm(tmp_path: Path) -> None:
    from toolkit.experiments.downstream import train_interpolator, write_subset

    data = pole_like(tmp_path / "p.h5")
    cfg = DownstreamConfig(
        task=None, target="azimuth_deg", every=4, arms=["real", "mixup"], seeds=2, steps=3, batch_size=8,
        n_extra=16, interp_epochs=1, scorer_steps=20,
    )  # fmt: skip
    info = open_dataset(data)
    subset = write_subset(info, sparse_split(info, cfg.protocol("p"))[0], tmp_path / "sparse.h5")
    run = train_interpolator("ae", subset.path, tmp_path / "my-ae", cfg, "cpu", None)
    lines: list[str] = []
    report = run_benchmark(
        data, tmp_path / "work", DownstreamConfig(**{**cfg.__dict__, "runs": [str(run)]}), log=lines.append
    )
    arm = "run:my-ae"
    assert list(report["arms"]) == ["real", "mixup", arm]
    assert report["metric"] == "mean absolute error of azimuth_deg" and report["task"] == "p-azimuth_deg"
    assert any("warning" in line and "sparse.h5" in line for line in lines)  # not the benchmark's own subset
    assert open_dataset(tmp_path / "work" / "extra-run-my-ae.h5").settings["method"] == "ae"
    fidelity = report["label_fidelity"]
    assert set(fidelity["arms"]) == {"mixup", arm} and fidelity["scorer"]["kind"] == "factor regressor"
    assert set(fidelity["arms"]["mixup"]["per_factor"]) == {"elevation_deg", "azimuth_deg"}
    assert "label error" in report["table"] and "- plain AE" not in report["table"]
    assert "- run my-ae" in report["table"] and "- pixel mixup" in report["table"]
    assert set(report["verdicts"]) == {"mixup", arm}


def test_a_benchmark_of_other_settings_in_the_same_folder_is_refused(tmp_path: Path) -> None:
    data = pole_like(tmp_path / "p.h5")
    cfg = DownstreamConfig(arms=["real"], seeds=1, steps=2, batch_size=8, scorer_steps=0)
    run_benchmark(data, tmp_path / "work", cfg, log=quiet)
    run_benchmark(
        data, tmp_path / "work", DownstreamConfig(**{**cfg.__dict__, "seeds": 2}), log=quiet
    )  # more seeds: fine
    with pytest.raises(UserError, match=r"other settings \(steps\)"):
        run_benchmark(data, tmp_path / "work", DownstreamConfig(**{**cfg.__dict__, "steps": 3}), log=quiet)
    plan = json.loads((tmp_path / "work" / "plan.json").read_text())
    assert plan["protocol"]["target"] == "direction" and plan["steps"] == 2


def test_identical_arms_give_no_measurable_gain() -> None:
    real = [16.1, 15.2, 17.3]
    v = paired_verdict("aeai", real, list(real))
    assert v.mean == 0 and v.half_width == 0
    assert v.conclusion == "AEAI interpolation: no measurable gain (+0.0 % ± 0.0 %)"


def test_a_known_mean_and_interval() -> None:
    # Paired relative changes -30 %, -31 %, -29 %: mean -30 %, sd 1 %, half width t(2) * 1 / sqrt(3).
    v = paired_verdict("aeai", [10.0, 10.0, 20.0], [7.0, 6.9, 14.2])
    assert v.mean == pytest.approx(-30.0) and v.half_width == pytest.approx(4.303 / np.sqrt(3), rel=1e-6)
    assert v.interval == pytest.approx((-30.0 - 2.4843, -30.0 + 2.4843), abs=1e-3)
    assert v.conclusion == "AEAI interpolation helps: -30.0 % ± 2.5 %"
    worse = paired_verdict("photometric", [10.0, 10.0, 10.0], [11.0, 11.2, 11.1])
    assert worse.conclusion == "photometric augmentation hurts: +11.0 % ± 2.5 %"
    two_seeds = paired_verdict("photometric", [10.0, 10.0], [11.0, 11.2])  # t(1) = 12.7: a wide interval
    assert two_seeds.conclusion == "photometric augmentation: no measurable gain (+11.0 % ± 12.7 %)"
    noisy = paired_verdict("mixup", [10.0, 10.0, 10.0], [8.0, 12.0, 9.0])
    assert noisy.conclusion.startswith("pixel mixup: no measurable gain (-3.3 %")
    # An error rate of 0 % leaves nothing to be relative to: the change is in the metric's units.
    zero = paired_verdict("ae", [0.0, 0.5], [0.0, 0.0])
    assert zero.unit == "" and zero.mean == pytest.approx(-0.25)
    assert t_quantile_975(30) == 2.042 and t_quantile_975(1000) == pytest.approx(1.962, abs=1e-3)
    assert [v.arm for v in verdicts({"real": [1.0], "ae": [0.5]})] == ["ae"] and verdicts({"ae": [1.0]}) == []


def test_the_eta_counts_every_phase_at_its_measured_rate() -> None:
    now = [0.0]
    clock = BenchmarkClock(
        [Phase("train ae", "interp", 10), Phase("real seed 0", "cnn", 100), Phase("real seed 1", "cnn", 100)],
        now=lambda: now[0],
    )
    assert clock.remaining() == (0.0, ["train ae", "real seed 0", "real seed 1"])
    clock.start("train ae")
    clock.advance(0, 10)
    assert clock.remaining()[1] == ["train ae", "real seed 0", "real seed 1"]  # nothing measured yet
    now[0] = 5.0
    clock.advance(5, 10)  # 5 s for half of 10 epochs: 1 s an epoch
    assert clock.remaining() == (5.0, ["real seed 0", "real seed 1"])
    now[0] = 10.0
    clock.finish()
    clock.start("real seed 0")
    clock.advance(0, 100)
    now[0] = 12.0
    clock.advance(20, 100)  # 0.1 s a step
    seconds, unknown = clock.remaining()
    assert seconds == pytest.approx(80 * 0.1 + 100 * 0.1) and unknown == []
    assert clock.text() == "0:18"


def test_label_fidelity_of_a_perfect_interpolator_is_the_scorers_own_error(tmp_path: Path) -> None:
    from toolkit.augment.fidelity import ScorerConfig, fidelity_summary, train_scorer

    data = open_dataset(pole_like(tmp_path / "p.h5"))
    protocol = DownstreamConfig().protocol("p")
    train, held_out = sparse_split(data, protocol)
    # Half of the held-out views measure the scorer's own error, the other half are what a perfect interpolator
    # would make between the training views: the true in-between frames, with their true labels.
    own, between = held_out[::2], held_out[1::2]
    arrays = [(data.read_images(rows), data.params[rows], data.labels[rows]) for rows in (train, own, between)]
    torch.manual_seed(0)
    scorer = train_scorer(arrays[0], arrays[1], data.periods, data.param_names, 1, ScorerConfig(steps=300))
    images, params, labels = arrays[2]
    perfect = fidelity_summary(scorer, lambda rows: images[rows], params, labels)
    wrong = params.copy()
    wrong[:, 1] = (wrong[:, 1] + 40) % 360  # frames 40 degrees away from their labels
    mislabelled = fidelity_summary(scorer, lambda rows: images[rows], wrong, labels)
    assert scorer.own_error is not None and scorer.own_error < 20
    assert perfect["mean"] == pytest.approx(scorer.own_error, rel=0.3)
    assert mislabelled["mean"] > perfect["mean"] + 15


def test_the_command_on_any_file_writes_the_table_and_the_verdicts(tmp_path: Path) -> None:
    from helpers import invoke_cli

    data = write_dataset(tmp_path / "objects.h5", n_labels=2, n_views=24, size=32)
    args = ["downstream", "--data", str(data), "--target", "label", "--every", "3", "--arms", "real,mixup"]
    args += ["--seeds", "2", "--steps", "3", "--n-extra", "16", "--scorer-steps", "10", "--device", "cpu"]
    result = invoke_cli(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "runs" / "downstream-objects-label"
    report = json.loads((out / "report.json").read_text())
    assert report["protocol"]["split_factor"] == "azimuth_deg" and report["train_images"] == 2 * 8
    assert report["label_fidelity"]["scorer"]["kind"] == "factor regressor"
    md = (out / "report.md").read_text()
    assert "| mixup |" in md and "- pixel mixup" in md and "95 % CI" in md
    assert "- pixel mixup" in result.stderr  # the table on the terminal
    missing = invoke_cli("downstream", "--target", "label", cwd=tmp_path)
    assert missing.returncode == 1 and "--data" in missing.stderr
