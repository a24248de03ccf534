"""The paper's comparison as one resumable script: train every method on the pole set and one turntable object,
measure them, and write a results page whose every number comes from those runs.

Plan, per dataset: seed 0 of the seven methods (AEAI and its six baselines) and of the three AEAI ablations;
then seeds 1..N-1 of AEAI and of the strongest baseline (the lowest interval MSE at seed 0). Each run lives in
runs/reproduce/<dataset>/<name>-seed<k>: a finished run is skipped, a partial one resumed (the trainer's
--resume), and its evaluation is cached in the run folder, so a rerun after Ctrl-C continues where it stopped.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import itertools
import json
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from toolkit.aeai.config import ABLATIONS, DEFAULT_LRS, EvalConfig, TrainConfig, method_settings, sparse_checkpoints
from toolkit.aeai.run import CHECKPOINT, METRICS, write_json
from toolkit.datasets import DatasetInfo
from toolkit.errors import UserError

DATASETS = ("pole", "turntable")
RENDER_COMMANDS = {"pole": "toolkit render-pole", "turntable": "toolkit render-turntable"}
NAMES = (*DEFAULT_LRS, *ABLATIONS)
BASELINES = tuple(name for name in DEFAULT_LRS if name != "aeai")
# Figure 6 of the paper (COIL-100, L = 80): mean interval MSE over alpha, read off the plot by eye.
PAPER_FIGURE_6 = {"aeai": 0.0023, "vae": 0.0038, "amr": 0.0036, "acai": 0.0050, "gaia": 0.0061, "aae": 0.0095}
# The keys of `metrics.summarize`: errors and spreads whose ideal is 0 (ACAI's smoothness too), so lower is
# better for every one of them.
SUMMARY = {
    "interval_mse": ("interval MSE", "{:.5f}"),
    "alpha_iqr": ("alpha IQR", "{:.3f}"),
    "alpha_mean_abs_error": ("alpha abs. error", "{:.3f}"),
    "parameter_distance_rms": ("param. distance RMS", "{:.2f}"),
    "smoothness": ("ACAI smoothness", "{:.3f}"),
}
RECONSTRUCTION = "test_reconstruction_mse"  # shown beside the summary (lower is better), not part of the verdicts
EVALUATION = "evaluation.json"  # the cached evaluation in a run folder
WALL_TIME = "wall_time.json"  # seconds spent training the run, summed over every (resumed) session
STRIPS = "strips.png"
STRIP_PAIRS = 3
STRIP_STEPS = 10

Log = Callable[[str], None]
ProgressFactory = Callable[[str, str], contextlib.AbstractContextManager[Callable[..., None]]]


@dataclass
class ReproduceConfig:
    """What `toolkit reproduce` trains and measures; the defaults are the page in docs/results.md."""

    pole: Path = Path("data/pole.h5")
    turntable: Path = Path("data/turntable.h5")
    object: int = 0  # the turntable label trained and measured (the paper: one COIL-100 object)
    datasets: tuple[str, ...] = DATASETS
    methods: tuple[str, ...] = NAMES
    seeds: int = 3
    # Comparable optimizer steps: the pole's 461 training images make 14 batches of 32 an epoch (1680 steps in
    # 120 epochs); one turntable object's 58 make one batch an epoch, so it needs 1680 epochs for the same.
    epochs_pole: int = 120
    epochs_turntable: int = 1680
    batch_size: int = 32
    device: str = "auto"
    runs: Path = Path("runs/reproduce")
    out: Path = Path("docs/results.md")
    # ends=all: a 58-image object holds few 80-degree intervals between two test images, too few to compare on.
    evaluation: EvalConfig = field(default_factory=EvalConfig)

    def validate(self) -> None:
        """Raise a UserError naming the first bad setting."""
        for option, chosen, allowed in (("--datasets", self.datasets, DATASETS), ("--methods", self.methods, NAMES)):
            unknown = [name for name in chosen if name not in allowed]
            if unknown or not chosen:
                raise UserError(f"{option}: unknown {', '.join(unknown) or '(none)'}; choose from {', '.join(allowed)}")
        numbers = {
            "--seeds": self.seeds,
            "--epochs-pole": self.epochs_pole,
            "--epochs-turntable": self.epochs_turntable,
        }
        for option, value in numbers.items():
            if value < 1:
                raise UserError(f"{option} must be at least 1, got {value}")
        TrainConfig(batch_size=self.batch_size, device=self.device).validate()  # its messages name the options
        self.evaluation.validate()

    def epochs(self, dataset: str) -> int:
        return self.epochs_pole if dataset == "pole" else self.epochs_turntable

    def data_path(self, dataset: str) -> Path:
        return self.pole if dataset == "pole" else self.turntable

    def command_line(self) -> str:
        """The command, every option spelled out, that reproduces this configuration."""
        options = {
            "pole": self.pole,
            "turntable": self.turntable,
            "object": self.object,
            "datasets": ",".join(self.datasets),
            "methods": ",".join(self.methods),
            "seeds": self.seeds,
            "epochs-pole": self.epochs_pole,
            "epochs-turntable": self.epochs_turntable,
            "batch-size": self.batch_size,
            "device": self.device,
            "runs": self.runs,
            "out": self.out,
        }
        return "toolkit reproduce " + " ".join(f"--{k} {v}" for k, v in options.items())


@dataclass
class RunRecord:
    """One trained and measured run, as the page needs it."""

    name: str
    seed: int
    run_dir: Path
    evaluation: dict  # the cached file: epoch, key, seconds, result (what `evaluate_model` returns)
    metrics: dict  # the last line of metrics.jsonl
    train_seconds: float | None  # None: trained by something other than this command

    @property
    def scores(self) -> dict[str, float | None]:
        result = self.evaluation["result"]
        return {**result["summary"], RECONSTRUCTION: result["reconstruction_mse"].get("test")}


@dataclass
class DatasetSection:
    """A dataset's runs and what was chosen and drawn from them."""

    dataset: str
    data: DatasetInfo
    label: int | None
    records: list[RunRecord]
    strongest: str | None
    plots: list[Path]
    strip_pairs: np.ndarray  # (n, 2) dataset rows of the strip's pairs (its image: STRIPS next to the plots)

    def means(self) -> dict[str, dict[str, float]]:
        """Per name, each score's mean over its seeds (scores that are None are left out)."""
        return {name: {k: float(np.mean(v)) for k, v in values.items()} for name, values in self.values().items()}

    def values(self) -> dict[str, dict[str, list[float]]]:
        """Per name (in plan order), each score's values over the seeds."""
        table: dict[str, dict[str, list[float]]] = {}
        for record in self.records:
            row = table.setdefault(record.name, {})
            for key, value in record.scores.items():
                if value is not None:
                    row.setdefault(key, []).append(value)
        return table


def check_datasets(cfg: ReproduceConfig) -> dict[str, DatasetInfo]:
    """Open each chosen dataset file; a missing one names the command that renders it."""
    from toolkit.datasets import open_dataset

    opened = {}
    for dataset in cfg.datasets:
        path = cfg.data_path(dataset)
        if not path.is_file():
            raise UserError(f"{path}: no such dataset file; render it first with `{RENDER_COMMANDS[dataset]}`")
        opened[dataset] = open_dataset(path)
    if "turntable" in opened and cfg.object not in set(opened["turntable"].labels.tolist()):
        names = opened["turntable"].label_names
        raise UserError(f"--object {cfg.object}: {cfg.turntable} holds labels 0..{len(names) - 1} ({', '.join(names)})")
    return opened


def planned_runs(cfg: ReproduceConfig) -> int:
    """How many runs the plan holds: seed 0 of every name, more seeds for AEAI and one baseline per dataset."""
    extra = ("aeai" in cfg.methods) + any(name in BASELINES for name in cfg.methods)
    return len(cfg.datasets) * (len(cfg.methods) + (cfg.seeds - 1) * extra)


def train_config(cfg: ReproduceConfig, dataset: str, name: str, seed: int) -> TrainConfig:
    """The training settings of one run: the paper's defaults, the ablation's zero weight, this plan's sizes."""
    epochs = cfg.epochs(dataset)
    return TrainConfig(
        data=str(cfg.data_path(dataset).resolve()),
        epochs=epochs,
        batch_size=cfg.batch_size,
        label=cfg.object if dataset == "turntable" else None,
        seed=seed,
        sample_every=max(1, epochs // 10),  # about ten sample grids per run, whatever its epochs
        checkpoint_every=sparse_checkpoints(epochs),  # one-step turntable epochs: not a checkpoint each
        device=cfg.device,
        **method_settings(name),
    )


def train_run(config: TrainConfig, run_dir: Path, progress: Callable[..., None]) -> int:
    """Train `config` into `run_dir`, skipping a finished run and resuming a partial one; returns its epochs.

    A run saved with other settings is refused rather than continued: its numbers would mix two experiments.
    """
    from toolkit.aeai.run import load_checkpoint
    from toolkit.aeai.trainer import resume_config, train

    resume = (run_dir / CHECKPOINT).exists()
    if resume:
        try:
            config = resume_config(run_dir, config.to_dict(), prefix="")
        except UserError as e:
            raise UserError(f"{run_dir}: {e}; delete that folder or choose another --runs") from None
        done = int(load_checkpoint(run_dir / CHECKPOINT)["epoch"])
        if done > config.epochs:
            raise UserError(f"{run_dir} holds {done} epochs, more than the {config.epochs} asked for")
        if done == config.epochs:
            return done
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        result = train(config, run_dir, resume=resume, progress=progress)
    finally:
        times = _read_json(run_dir / WALL_TIME) or {"train_seconds": 0.0}
        times["train_seconds"] += time.perf_counter() - started
        write_json(run_dir / WALL_TIME, times)
    if result.interrupted:
        raise KeyboardInterrupt  # the trainer saved the epoch; the whole plan stops with it
    return result.epoch


def evaluate_run(
    run_dir: Path,
    data: DatasetInfo,
    epoch: int,
    labels: list[int] | None,
    evaluation: EvalConfig,
    device,
    progress: Callable[..., None],
) -> dict:
    """The run's evaluation on the images of `labels` (None: all), cached in the run folder per checkpoint and
    settings."""
    from toolkit.aeai.metrics import evaluate_model
    from toolkit.aeai.run import load_run
    from toolkit.aeai.visualize import save_report
    from toolkit.augment.generate import sha256_file

    key = {
        "checkpoint_sha256": sha256_file(run_dir / CHECKPOINT),  # a retrained run of the same epochs differs
        "epoch": epoch,
        "labels": labels,
        "settings": json.loads(json.dumps(asdict(evaluation))),
    }
    cached = _read_json(run_dir / EVALUATION)
    if cached is not None and cached.get("key") == key:
        return cached
    loaded = load_run(run_dir, device=str(device))
    started = time.perf_counter()
    result = evaluate_model(loaded.model, data, loaded.split, evaluation, device, labels, progress)
    report = {"key": key, "seconds": time.perf_counter() - started, "result": result}
    save_report(report, run_dir / EVALUATION)
    return report


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None  # never written, or torn by a kill: recomputed


def last_metrics(run_dir: Path) -> dict:
    """The last epoch's line of the run's metrics.jsonl."""
    lines = (run_dir / METRICS).read_text().splitlines()
    return json.loads(lines[-1]) if lines else {}


def strongest_baseline(interval_mse: dict[str, float]) -> str | None:
    """The baseline (neither AEAI nor an ablation) with the lowest interval MSE; None if none was run."""
    baselines = {name: value for name, value in interval_mse.items() if name in BASELINES}
    return min(baselines, key=baselines.__getitem__) if baselines else None


def aeai_beaten_by(means: dict[str, dict[str, float]]) -> list[str]:
    """Baselines whose mean interval MSE is at most AEAI's (AEAI wins when this is empty)."""
    aeai = means["aeai"]["interval_mse"]
    return [name for name in BASELINES if name in means and means[name]["interval_mse"] <= aeai]


def ablation_worse_on(means: dict[str, dict[str, float]], ablation: str) -> list[str]:
    """Summary measures on which `ablation` is worse (higher: lower is better for all) than full AEAI."""
    full, ablated = means["aeai"], means[ablation]
    return [key for key in SUMMARY if key in full and key in ablated and ablated[key] > full[key]]


def run_dataset(
    cfg: ReproduceConfig,
    dataset: str,
    data: DatasetInfo,
    device,
    counter: Iterator[int],
    total: int,
    log: Log,
    bar: ProgressFactory,
) -> DatasetSection:
    """Train and measure every run of one dataset (seed 0 of all, then the extra seeds); draw its figures."""

    def run(name: str, seed: int) -> RunRecord:
        config = train_config(cfg, dataset, name, seed)
        run_dir = cfg.runs / dataset / f"{name}-seed{seed}"
        title = f"run {next(counter)}/{total} {dataset}/{name}-seed{seed}"
        with bar(f"{title} train", "img") as update:
            epoch = train_run(config, run_dir, update)
        labels = None if config.label is None else [config.label]
        with bar(f"{title} evaluate", "frames") as update:
            evaluation = evaluate_run(run_dir, data, epoch, labels, cfg.evaluation, device, update)
        times = _read_json(run_dir / WALL_TIME)
        seconds = times["train_seconds"] if times else None
        record = RunRecord(name, seed, run_dir, evaluation, last_metrics(run_dir), seconds)
        log(f"{title}: trained to epoch {epoch}, interval MSE {record.scores['interval_mse']:.5f}")
        return record

    records = [run(name, 0) for name in cfg.methods]
    strongest = strongest_baseline({r.name: r.scores["interval_mse"] for r in records})
    extra = [name for name in ("aeai", strongest) if name in cfg.methods]
    records += [run(name, seed) for name in extra for seed in range(1, cfg.seeds)]
    folder = cfg.out.with_suffix("") / dataset
    folder.mkdir(parents=True, exist_ok=True)
    first_seeds = [r for r in records if r.seed == 0]
    plots = draw_plots(first_seeds, folder)
    pairs = draw_strips(first_seeds, data, folder / STRIPS, cfg.evaluation.max_interval, device)
    label = cfg.object if dataset == "turntable" else None
    return DatasetSection(dataset, data, label, records, strongest, plots, pairs)


def draw_plots(records: list[RunRecord], folder: Path) -> list[Path]:
    """The paper-style plots, every run in one legend."""
    from toolkit.aeai.visualize import plot_all

    return plot_all([(r.name, r.evaluation["result"]) for r in records], folder)


def draw_strips(records: list[RunRecord], data: DatasetInfo, path: Path, gap: float, device) -> np.ndarray:
    """One image: a few fixed test pairs, one row per run and the pixel cross-dissolve; returns the pairs."""
    from toolkit.aeai import visualize as vis
    from toolkit.aeai.run import load_run

    # The runs of one seed share their split, so the first run's test pairs are test pairs of all of them.
    pairs = vis.example_pairs(load_run(records[0].run_dir, str(device)), data, STRIP_PAIRS, gap)
    first, second = data.read_images(pairs[:, 0]), data.read_images(pairs[:, 1])
    alphas = np.linspace(0.0, 1.0, STRIP_STEPS)
    rows = [
        (r.name, vis.decode_pairs(load_run(r.run_dir, str(device)).model, first, second, alphas, device))
        for r in records
    ]
    rows.append(("dissolve", vis.dissolve_pairs(first, second, alphas)))
    vis.save_image(vis.strip_image(first, second, rows, scale=max(1, round(64 / data.image_size))), path)
    return pairs


def reproduce(cfg: ReproduceConfig, log: Log = print, bar: ProgressFactory | None = None) -> Path:
    """Run the whole plan (continuing whatever earlier invocations left) and write the results page."""
    from toolkit.aeai.trainer import resolve_device
    from toolkit.files import atomic_write, check_writable_dir, output_lock

    cfg.validate()
    opened = check_datasets(cfg)
    device = resolve_device(cfg.device)
    check_writable_dir(cfg.out)
    cfg.runs.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    counter, total = itertools.count(1), planned_runs(cfg)
    bar = bar or (lambda description, unit: contextlib.nullcontext(lambda *args, **fields: None))
    with output_lock(cfg.runs / "plan"):
        sections = [run_dataset(cfg, d, opened[d], device, counter, total, log, bar) for d in cfg.datasets]
        page = render_page(cfg, sections, device, time.perf_counter() - started)
        with atomic_write(cfg.out) as tmp:
            tmp.write_text(page)
    return cfg.out


# The page ----------------------------------------------------------------------------------------------------


def _stat(values: list[float], fmt: str) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(np.mean(values))} ± {fmt.format(np.std(values, ddof=1))}"


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f} s" if value < 600 else f"{value / 60:.1f} min"


def _seeds(seeds: range) -> str:
    if len(seeds) == 0:
        return "none"
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}..{seeds[-1]}"


def versions() -> dict[str, str]:
    """Versions of what produced the numbers; bpy (which rendered the data) when it is installed."""
    import numpy
    import torch

    import toolkit

    found = {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__}
    found["toolkit"] = toolkit.__version__
    if importlib.util.find_spec("bpy") is not None:
        found["bpy"] = importlib.metadata.version("bpy")
    return found


def summary_table(section: DatasetSection) -> list[str]:
    """Mean ± std (sample std) over seeds of every one-number summary, one row per name."""
    values = section.values()
    columns = {**SUMMARY, RECONSTRUCTION: ("test reconstruction MSE", "{:.5f}")}
    columns = {k: v for k, v in columns.items() if any(k in row for row in values.values())}
    lines = [
        "| method | seeds | " + " | ".join(title for title, _ in columns.values()) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for name, row in values.items():
        cells = [_stat(row.get(key, []), fmt) for key, (_, fmt) in columns.items()]
        seeds = sum(r.name == name for r in section.records)
        lines.append(f"| {name} | {seeds} | " + " | ".join(cells) + " |")
    return lines


def verdicts(means: dict[str, dict[str, float]]) -> list[str]:
    """The acceptance questions, answered from the means."""
    if "aeai" not in means:
        return ["- AEAI was not run: no verdicts."]
    lines = []
    if any(name in means for name in BASELINES):
        beaten = aeai_beaten_by(means)
        answer = f"**no** (matched or beaten by {', '.join(beaten)})" if beaten else "**yes**"
        lines.append(f"- AEAI has a lower mean interval MSE at the largest interval than every baseline: {answer}")
    for ablation in ABLATIONS:
        if ablation in means:
            worse = [SUMMARY[k][0] for k in ablation_worse_on(means, ablation)]
            answer = f"**yes** ({', '.join(worse)})" if worse else "**no**"
            lines.append(f"- {ablation} is worse than full AEAI on at least one summary measure: {answer}")
    return lines


def runs_table(sections: list[DatasetSection]) -> list[str]:
    lines = [
        "| run | epochs | optimizer steps | final test MSE | training wall time | evaluation time |",
        "|---|---|---|---|---|---|",
    ]
    for section in sections:
        for r in section.records:
            m = r.metrics
            lines.append(
                f"| {section.dataset}/{r.name}-seed{r.seed} | {m.get('epoch')} | {m.get('step')} | "
                f"{m.get('test_mse', float('nan')):.5f} | {_seconds(r.train_seconds)} | "
                f"{_seconds(r.evaluation['seconds'])} |"
            )
    return lines


def paper_table(sections: list[DatasetSection]) -> list[str]:
    """Our mean interval MSE beside the paper's figure 6, absolute and relative to AEAI."""
    means = {s.dataset: s.means() for s in sections}
    header = "| method | paper, COIL-100 | paper / AEAI |"
    for dataset in means:
        header += f" ours, {dataset} | ours / AEAI |"
    lines = [header, "|---|---|---|" + "---|---|" * len(means)]
    for name, paper in PAPER_FIGURE_6.items():
        cells = [f"{paper:.4f}", f"{paper / PAPER_FIGURE_6['aeai']:.2f}"]
        for table in means.values():
            ours = table.get(name, {}).get("interval_mse")
            aeai = table.get("aeai", {}).get("interval_mse")
            cells += [
                "—" if ours is None else f"{ours:.4f}",
                "—" if ours is None or aeai is None else f"{ours / aeai:.2f}",
            ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def dataset_lines(cfg: ReproduceConfig, section: DatasetSection) -> list[str]:
    data, first = section.data, section.records[0]
    grid = first.evaluation["result"]["grid"]
    axes = ", ".join(f"{a['name']} ({a['values']} values, step {a['step']:g})" for a in grid["axes"])
    if section.label is None:
        subject = f"all {data.n} images"
    else:
        subject = f"object {section.label} ({data.label_names[section.label]}) only"
    mse_seed0 = {r.name: r.scores["interval_mse"] for r in section.records if r.seed == 0 and r.name in BASELINES}
    folder = cfg.out.with_suffix("").name
    pairs = ", ".join(f"{i}→{j}" for i, j in section.strip_pairs.tolist())
    lines = [
        f"## {section.dataset}",
        "",
        f"`{data.path}`: {data.n} images, {data.image_size}x{data.image_size}; trained and measured on {subject}: "
        f"{grid['images']} images on the grid {axes}. Rendered with: {data.describe_settings()}.",
        "",
    ]
    if section.strongest is not None:
        lines += [
            f"Strongest baseline after seed 0 (lowest interval MSE): **{section.strongest}** "
            f"({mse_seed0[section.strongest]:.5f}); it and AEAI ran with {_seeds(range(cfg.seeds))}.",
            "",
        ]
    lines += ["### One-number summaries (lower is better in every column)", "", *summary_table(section), ""]
    lines += ["### Verdicts", "", *verdicts(section.means()), ""]
    lines += ["### Plots (seed 0 of every method)", ""]
    lines += [f"![{p.stem}]({folder}/{section.dataset}/{p.name})" for p in section.plots]
    lines += [
        "",
        f"### Interpolation strips (seed 0; test pairs {pairs}; {STRIP_STEPS} frames; last row: pixel dissolve)",
        "",
        f"![strips]({folder}/{section.dataset}/{STRIPS})",
        "",
    ]
    return lines


def render_page(cfg: ReproduceConfig, sections: list[DatasetSection], device, seconds: float) -> str:
    """The Markdown results page."""
    from toolkit.aeai.bench import describe_machine

    machine = describe_machine(str(device))
    hardware = f"{machine['cpu']}, {machine['cores_available']} cores, {machine['torch_threads']} torch threads"
    if "gpu" in machine:
        hardware += f", GPU {machine['gpu']}"
    records = [r for s in sections for r in s.records]
    trained = sum(r.train_seconds or 0.0 for r in records)
    evaluated = sum(r.evaluation["seconds"] for r in records)
    e = cfg.evaluation
    sizes = ", ".join(f"{s.dataset} {s.data.image_size}x{s.data.image_size}" for s in sections)
    epochs = ", ".join(f"{s.dataset} {cfg.epochs(s.dataset)}" for s in sections)
    lines = [
        "# Results: AEAI, its baselines and its ablations",
        "",
        f"Written by `toolkit reproduce` on {time.strftime('%Y-%m-%d %H:%M')}. Every number on this page was "
        f"computed by that command from the runs in `{cfg.runs}`; run it again to continue or regenerate it.",
        "",
        "## Setup",
        "",
        f"- Command: `{cfg.command_line()}`",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()),
        f"- Hardware: {hardware}; device {device}; {machine['platform']}",
        f"- Image size: {sizes}. Epochs: {epochs} (batch {cfg.batch_size}; optimizer steps per run in the "
        "table at the end). Every other training setting: the paper's and the baselines' authors' defaults.",
        "- Seeds: seed 0 for every method and ablation; more for AEAI and the strongest baseline (chosen per "
        f"dataset after seed 0): {_seeds(range(1, cfg.seeds))}. Mean ± sample std where there are several seeds.",
        f"- Evaluation (`toolkit evaluate`'s measures): intervals up to {e.max_interval:g} degrees (from "
        f"{e.min_interval:g}), ends={e.ends}: intervals between any two images, train or test, because one "
        "turntable object holds too few long intervals between two test images. At most "
        f"{e.max_intervals} intervals per parameter at the largest length, {e.curve_intervals} at each shorter one. "
        "The pole is measured on its full grid, the turntable on the trained object only. 'interval MSE' is the "
        "mean MSE of the in-between frames at the largest interval of each parameter, weighted by frames.",
        f"- Wall time: training {_seconds(trained)}, evaluation {_seconds(evaluated)} over all {len(records)} runs "
        f"(summed over resumed sessions); this invocation {_seconds(seconds)}.",
        "",
    ]
    for section in sections:
        lines += dataset_lines(cfg, section)
    lines += [
        "## Comparison with the paper's figure 6",
        "",
        "The paper's values are its mean interval MSE over alpha on COIL-100 at L = 80, read off figure 6 by eye; "
        "its datasets differ from ours (real photographs vs. our renders, other objects and image sizes), so "
        "only the order of the methods and their ratios to AEAI compare, not the values. The paper's beta-VAE "
        "is `vae` here.",
        "",
        *paper_table(sections),
        "",
        "## Runs",
        "",
        *runs_table(sections),
        "",
    ]
    return "\n".join(lines)
