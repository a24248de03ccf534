"""What `toolkit reproduce` trains and measures: its settings, its plan of runs, the records the page is built
from, and the verdicts it draws. Torch-free, so that the command line lists the methods without importing torch.

Plan, per dataset: seed 0 of the seven methods (AEAI and its six baselines) and of the three AEAI ablations;
then seeds 1..N-1 of AEAI, of its ablations and of the strongest baseline (the lowest validation interval MSE
at seed 0), so that AEAI's wins and each ablation's loss are judged against seed noise.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toolkit.aeai.config import ABLATIONS, DEFAULT_LRS, TrainConfig, method_settings, sparse_checkpoints
from toolkit.datasets import DatasetInfo
from toolkit.errors import UserError
from toolkit.evaluate.config import SUMMARY, Ends, EvalConfig

DATASETS = ("pole", "turntable")
RENDER_COMMANDS = {"pole": "toolkit render-pole", "turntable": "toolkit render-turntable"}
NAMES = (*DEFAULT_LRS, *ABLATIONS)
BASELINES = tuple(name for name in DEFAULT_LRS if name != "aeai")
# Figure 6 of the paper (COIL-100, L = 80): mean interval MSE over alpha, read off the plot by eye.
PAPER_FIGURE_6 = {"aeai": 0.0023, "vae": 0.0038, "amr": 0.0036, "acai": 0.0050, "gaia": 0.0061, "aae": 0.0095}
RECONSTRUCTION = "test_reconstruction_mse"  # shown beside the summary (lower is better), not part of the verdicts
EVALUATION = "evaluation-{ends}.json"  # a run's cached evaluation on the test (or validation) intervals
REFERENCES = "references-seed{seed}.json"  # the dissolve and ground-truth rows of a dataset, per split seed
CONVERGED_WITHIN = 2.0  # a run reconstructs when its test MSE is at most this times the plain AE's
STRIPS = "strips.png"
STRIP_PAIRS = 3
STRIP_STEPS = 10


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
    # Every run holds out one arc of 18 of 72 azimuths per grid line (the pole: per elevation), so the test
    # intervals (80 degrees: two per line; 70: four) lie wholly outside training; validation intervals, all of
    # whose images are training images, choose the strongest baseline. Nothing is chosen on the test split.
    split: str = "arc"
    test_fraction: float = 0.25
    evaluation: EvalConfig = field(default_factory=lambda: EvalConfig(ends=Ends.test))

    @property
    def validation(self) -> EvalConfig:
        """The evaluation on validation intervals: what choices are made on."""
        return dataclasses.replace(self.evaluation, ends=Ends.validation)

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
        # TrainConfig's messages name the options
        TrainConfig(batch_size=self.batch_size, device=self.device, split=self.split).validate()
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
            "interval": f"{self.evaluation.max_interval:g}",
            "retrieval-interval": f"{self.evaluation.retrieval_interval:g}",
            "min-interval": f"{self.evaluation.min_interval:g}",
        }
        return "toolkit reproduce " + " ".join(f"--{k} {v}" for k, v in options.items())


@dataclass
class RunRecord:
    """One trained and measured run, as the page needs it."""

    name: str
    seed: int
    run_dir: Path
    evaluation: dict  # the cached file on the test intervals: key, seconds, result (what `evaluate_model` returns)
    validation: dict  # the same on the validation intervals
    metrics: dict  # the last line of metrics.jsonl
    train_seconds: float | None  # None: trained by something other than this command

    @property
    def scores(self) -> dict[str, float | None]:
        """The test scores the page reports."""
        result = self.evaluation["result"]
        return {**result["summary"], RECONSTRUCTION: result["reconstruction_mse"].get("test")}


@dataclass
class DatasetSection:
    """A dataset's runs and what was chosen and drawn from them."""

    dataset: str
    data: DatasetInfo
    label: int | None
    records: list[RunRecord]
    references: list[tuple[str, dict]]  # (name, result) of the dissolve and the ground truth on the test intervals
    strongest: str | None
    plots: list[Path]
    strip_pairs: np.ndarray  # (n, 2) dataset rows of the strip's pairs (its image: STRIPS next to the plots)

    def unconverged(self) -> dict[str, float]:
        """Names whose mean test reconstruction MSE exceeds CONVERGED_WITHIN x the plain AE's at the same budget,
        with that ratio; empty without an AE run."""
        means = self.means()
        ae = means.get("ae", {}).get(RECONSTRUCTION)
        if not ae:
            return {}
        ratios = {name: row[RECONSTRUCTION] / ae for name, row in means.items() if RECONSTRUCTION in row}
        return {name: ratio for name, ratio in ratios.items() if ratio > CONVERGED_WITHIN}

    def means(self) -> dict[str, dict[str, float]]:
        """Per name, each score's mean over its seeds (scores that are None are left out)."""
        return mean_scores(self.values())

    def values(self) -> dict[str, dict[str, list[float]]]:
        """Per name (in plan order), each score's values over the seeds."""
        table: dict[str, dict[str, list[float]]] = {}
        for record in self.records:
            row = table.setdefault(record.name, {})
            for key, value in record.scores.items():
                if value is not None:
                    row.setdefault(key, []).append(value)
        return table


def mean_scores(values: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, float]]:
    """Per name, each score's mean over its seeds."""
    return {name: {k: float(np.mean(v)) for k, v in row.items()} for name, row in values.items()}


def planned_runs(cfg: ReproduceConfig) -> int:
    """How many runs the plan holds: seed 0 of every name, more seeds for AEAI, its ablations and one baseline
    per dataset."""
    extra = sum(name in cfg.methods for name in ("aeai", *ABLATIONS)) + any(name in BASELINES for name in cfg.methods)
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
        split=cfg.split,
        test_fraction=cfg.test_fraction,
        sample_every=max(1, epochs // 10),  # about ten sample grids per run, whatever its epochs
        checkpoint_every=sparse_checkpoints(epochs),  # one-step turntable epochs: not a checkpoint each
        device=cfg.device,
        **method_settings(name),
    )


def strongest_baseline(interval_mse: dict[str, float]) -> str | None:
    """The baseline (neither AEAI nor an ablation) with the lowest interval MSE (on validation intervals: the
    choice must not see the test split); None if none was run."""
    baselines = {name: value for name, value in interval_mse.items() if name in BASELINES}
    return min(baselines, key=baselines.__getitem__) if baselines else None


def beyond_noise(better: list[float], worse: list[float]) -> bool:
    """Whether the mean of `worse` exceeds that of `better` by more than two seed standard deviations (the larger
    sample std of the two; with one seed each there is no std, and any excess counts)."""
    spread = max((float(np.std(v, ddof=1)) for v in (better, worse) if len(v) > 1), default=0.0)
    return float(np.mean(worse)) - float(np.mean(better)) > 2 * spread


def aeai_beaten_by(values: dict[str, dict[str, list[float]]], excluded: set[str] = frozenset()) -> list[str]:
    """Baselines (other than `excluded`, e.g. unconverged ones) whose interval MSE AEAI does not beat beyond seed
    noise (`beyond_noise`), given each name's scores over its seeds (AEAI wins when this is empty)."""
    aeai = values["aeai"]["interval_mse"]
    return [
        n for n in BASELINES if n in values and n not in excluded and not beyond_noise(aeai, values[n]["interval_mse"])
    ]


def ablation_worse_on(values: dict[str, dict[str, list[float]]], ablation: str) -> list[str]:
    """Summary measures on which `ablation` is worse than full AEAI beyond seed noise (higher is worse for all)."""
    full, ablated = values["aeai"], values[ablation]
    return [key for key in SUMMARY if full.get(key) and ablated.get(key) and beyond_noise(full[key], ablated[key])]
