"""Pick the interpolator to augment with by measurement: among trained runs, the one with the lowest interval
MSE on its validation intervals (every image of the interval a training image, so nothing held out is used
to choose), as `sweep` scores its configurations. Each score is cached in its run folder."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

from toolkit.aeai.run import CHECKPOINT, load_checkpoint, load_run
from toolkit.datasets import open_dataset
from toolkit.errors import UserError
from toolkit.evaluate.config import SUMMARY, Ends, EvalConfig
from toolkit.experiments.reproduce import evaluate_run
from toolkit.progress import ProgressFactory, no_progress

SCORE = "interval_mse"  # lower is better


@dataclass
class Selection:
    """The chosen run, its score and every candidate's."""

    run: Path
    score: float
    scores: dict[str, float]  # run folder -> validation interval MSE
    measure: str  # what the score is, in words

    def as_settings(self) -> dict:
        """What an augmented file records about the choice."""
        return {"selected_run": str(self.run), "selected_score": self.score, "selection": self.measure,
                "candidate_scores": self.scores}  # fmt: skip


def select_best(
    candidates: list[Path],
    data_path: Path | None = None,
    evaluation: EvalConfig | None = None,
    device: str = "cpu",
    bar: ProgressFactory = no_progress,
) -> Selection:
    """The candidate run with the lowest validation interval MSE (on `data_path`, or each run's own data)."""
    evaluation = evaluation or EvalConfig(ends=Ends.validation)
    if evaluation.ends != Ends.validation:
        raise UserError("runs are chosen on their validation intervals only (ends=validation)")
    if not candidates:
        raise UserError("--run best needs the runs to choose from: --candidates RUN...")
    scores: dict[str, float] = {}
    for run in map(Path, candidates):
        loaded = load_run(run, device=device)
        data = open_dataset(data_path or loaded.data_path)
        epoch = int(load_checkpoint(run / CHECKPOINT)["epoch"])
        labels = None if loaded.label is None else [loaded.label]
        with bar(f"score {run.name}", "frames") as update:
            report = evaluate_run(run, data, epoch, labels, evaluation, device, update)
        score = report["result"]["summary"].get(SCORE)
        if score is None:
            raise UserError(
                f"{run}: its split leaves no validation interval of {evaluation.max_interval:g} to score it on; "
                "choose among runs trained on a grid of factors with more training images"
            )
        scores[str(run)] = float(score)
    finite = {run: score for run, score in scores.items() if math.isfinite(score)}  # a diverged run scores nan
    if not finite:
        raise UserError(f"no candidate has a finite validation {SUMMARY[SCORE][0]}: {scores}")
    best = min(finite, key=finite.__getitem__)
    measure = f"validation {SUMMARY[SCORE][0]} at {evaluation.max_interval:g} ({asdict(evaluation)})"
    return Selection(Path(best), scores[best], scores, measure)
