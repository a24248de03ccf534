"""`toolkit sweep`: the paper's log grid search over TrainConfig fields, each configuration a resumable run scored
by its interval MSE on the validation intervals (the plan, names and table: `sweep_plan.py`).

`grid` trains the full product of the knobs' values, optionally one shard of it (configuration k belongs to shard
k % n + 1), and writes the report once every configuration has a finished run; `coordinate` tunes one knob at a
time. Each run trains through `runs.train_or_resume` and caches its evaluation, so a rerun after Ctrl-C skips
what is done and continues a partial run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402

from toolkit.aeai.run import CHECKPOINT, SPLIT, load_checkpoint  # noqa: E402
from toolkit.datasets import DatasetInfo, Split, open_dataset  # noqa: E402
from toolkit.devices import resolve_device  # noqa: E402
from toolkit.errors import UserError  # noqa: E402
from toolkit.evaluate.config import SUMMARY  # noqa: E402
from toolkit.experiments.reproduce import evaluate_run  # noqa: E402
from toolkit.experiments.runs import last_metrics, train_or_resume  # noqa: E402
from toolkit.experiments.sweep_plan import (  # noqa: E402
    REPORT,
    SCORE,
    SweepConfig,
    SweepRecord,
    coordinate_search,
    format_value,
    planned_count,
    ranked,
    report_json,
    select_shard,
    table_markdown,
    train_command,
)
from toolkit.files import atomic_write, write_json  # noqa: E402
from toolkit.progress import Log, ProgressFactory, no_progress  # noqa: E402


@dataclass
class SweepResult:
    """What a sweep command did: the report's files and the winner, or how many configurations are missing."""

    records: list[SweepRecord]
    missing: int  # configurations of the grid without a finished run (0 when the report was written)
    report: dict[str, Path] | None = None  # json, md, png
    command: str | None = None  # the best configuration as `toolkit train ...`

    @property
    def best(self) -> SweepRecord:
        return ranked(self.records)[0]


def open_data(cfg: SweepConfig) -> DatasetInfo:
    path = Path(cfg.fixed.get("data", "data/pole.h5"))
    if not path.is_file():
        raise UserError(f"{path}: no such dataset file; render one with `toolkit render-pole` or pass --data")
    return open_dataset(path)


def finished(cfg: SweepConfig, values: dict) -> bool:
    """Whether the configuration's run has trained all the epochs of its budget."""
    run_dir = cfg.run_dir(values)
    if not (run_dir / CHECKPOINT).is_file() or not (run_dir / SPLIT).is_file():
        return False
    budget = cfg.train_config(values).budget(len(Split.load(run_dir / SPLIT).train))
    return int(load_checkpoint(run_dir / CHECKPOINT)["epoch"]) >= budget.epochs


def score_configuration(
    cfg: SweepConfig, values: dict, data: DatasetInfo, device, title: str, bar: ProgressFactory
) -> SweepRecord:
    """Train (or skip, or resume) one configuration's run and score it on the validation intervals (cached)."""
    config = cfg.train_config(values)
    run_dir = cfg.run_dir(values)
    with bar(f"{title} train", "img") as update:
        epoch = train_or_resume(config, run_dir, update)
    labels = None if config.label is None else [config.label]
    with bar(f"{title} score", "frames") as update:
        report = evaluate_run(run_dir, data, epoch, labels, cfg.evaluation, device, update)
    summary = report["result"]["summary"]
    if summary.get(SCORE) is None:
        raise UserError(
            f"{run_dir}: its split leaves no validation interval of {cfg.evaluation.max_interval:g} degrees to score "
            "it on; lower --interval or hold out less (--test-fraction)"
        )
    return SweepRecord(values, run_dir, epoch, summary, last_metrics(run_dir))


def sweep(cfg: SweepConfig, log: Log = print, bar: ProgressFactory = no_progress) -> SweepResult:
    """Run the sweep's strategy (continuing whatever earlier invocations left); write the report when complete."""
    cfg.validate()
    data = open_data(cfg)
    device = resolve_device(cfg.device)
    cfg.runs.mkdir(parents=True, exist_ok=True)
    total = planned_count(cfg)
    records: list[SweepRecord] = []

    def score(values: dict, k: int, verb: str = "config") -> float:
        # The coordinate search skips a point it has scored, so its count is an upper bound.
        title = f"{verb} {k}/{'≤' if cfg.strategy == 'coordinate' else ''}{total}"
        record = score_configuration(cfg, values, data, device, title, bar)
        records.append(record)
        shown = ", ".join(f"{name}={format_value(v)}" for name, v in values.items())
        log(f"{title} {shown}: validation {SUMMARY[SCORE][0]} {record.score:.5f} (epoch {record.epoch})")
        return record.score

    if cfg.strategy == "coordinate":
        coordinate_search(cfg, lambda values: score(values, len(records) + 1))
        return write_report(cfg, records)
    points = cfg.points()
    if not cfg.join:
        for k, values in select_shard(points, cfg.shard):
            score(values, k + 1)
    missing = [values for values in points if not finished(cfg, values)]
    if missing:
        if cfg.join:
            raise UserError(
                f"--join: {len(missing)} of {total} configurations have no finished run under {cfg.runs} (e.g. "
                f"{cfg.run_dir(missing[0]).name}); run their --shard first"
            )
        log(
            f"shard {cfg.shard}: done; {len(missing)} of {total} configurations still missing: run the other shards, "
            "then this command with --join instead of --shard"
        )
        return SweepResult(records, len(missing))
    records.clear()  # every run is finished: score them all (trained and evaluated runs are only read)
    for k, values in enumerate(points, 1):
        score(values, k, "score")
    return write_report(cfg, records)


def write_report(cfg: SweepConfig, records: list[SweepRecord]) -> SweepResult:
    """RUNS/sweep.json, sweep.md and sweep.png from the scored configurations."""
    paths = {kind: cfg.runs / name for kind, name in REPORT.items()}
    write_json(paths["json"], report_json(cfg, records))
    with atomic_write(paths["md"]) as tmp:
        tmp.write_text(table_markdown(cfg, records))
    plot_sweep(cfg, records, paths["png"])
    result = SweepResult(records, 0, paths)
    result.command = train_command(cfg.settings(result.best.values))
    return result


def _numeric(values: tuple) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def plot_sweep(cfg: SweepConfig, records: list[SweepRecord], path: Path) -> Path:
    """Score against each knob's values (log x axis where numeric), one panel per knob, the best marked."""
    best = ranked(records)[0]
    fig, axes = plt.subplots(1, len(cfg.knobs), figsize=(4.2 * len(cfg.knobs), 3.4), squeeze=False)
    for i, (ax, knob) in enumerate(zip(axes[0], cfg.knobs, strict=True)):
        numeric = _numeric(knob.values)
        position: Callable[[object], float] = float if numeric else list(knob.values).index  # type: ignore[assignment]
        scores = [(position(r.values[knob.name]), r.score) for r in records if math.isfinite(r.score)]
        ax.scatter(*zip(*scores, strict=True), s=16, color="0.6", label="configuration", zorder=2)
        per_value = {}
        for x, y in scores:
            per_value[x] = min(y, per_value.get(x, math.inf))
        ax.plot(sorted(per_value), [per_value[x] for x in sorted(per_value)], "-", color="C0", label="best at value")
        ax.scatter([position(best.values[knob.name])], [best.score], marker="*", s=220, color="C3", zorder=3)
        ax.annotate("best", (position(best.values[knob.name]), best.score), textcoords="offset points", xytext=(6, 6))
        if numeric:
            positive = [float(v) for v in knob.values if v > 0]
            if positive and len(positive) == len(knob.values):
                ax.set_xscale("log")
            elif positive:
                ax.set_xscale("symlog", linthresh=min(positive))  # shows 0 (an ablation) beside the decades
        else:
            ax.set_xticks(range(len(knob.values)), [format_value(v) for v in knob.values])
        ax.set_xlabel(knob.name)
        ax.set_ylabel(f"validation {SUMMARY[SCORE][0]}" if i == 0 else "")
        ax.grid(True, alpha=0.3)
    axes[0][0].legend(fontsize="small")
    fig.suptitle(f"sweep ({cfg.strategy}, {len(records)} configurations): lower is better", fontsize="medium")
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
