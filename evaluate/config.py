"""Which intervals `evaluate` measures: a torch-free dataclass, so that the command line starts fast."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from toolkit.errors import UserError


class Ends(StrEnum):
    """Which intervals are measured, by where their images lie in the run's split."""

    all = "all"  # every interval of the grid, whatever the split
    validation = "validation"  # every image of the interval (ends and in-between truths) a training image: for tuning
    test = "test"  # both ends test images and no in-between truth a training image: what a report quotes


# What each choice means, in the words a report prints beside its numbers.
ENDS_MEANING = {
    Ends.all: "every interval of the grid, whatever the run's split",
    Ends.validation: "intervals whose ends and in-between images are all training images (for tuning)",
    Ends.test: "intervals between two test images with no training image in between",
}


@dataclass
class EvalConfig:
    """Which intervals to measure; lengths are in the parameters' units (degrees)."""

    min_interval: float = 15.0  # shortest interval of the per-length curve (paper: 15)
    max_interval: float = 80.0  # the largest interval: per-alpha MSE curves and summaries (paper's figure 6: 80)
    retrieval_interval: float = 70.0  # alpha retrieval and ACAI smoothness (paper's figure 7: intervals of 70)
    ends: Ends = Ends.all
    max_intervals: int = 288  # cap on intervals per parameter at the largest length (pole: half of 576); 0 = all
    curve_intervals: int = 24  # cap per parameter for each shorter length of the per-length curve; 0 = all
    batch_size: int = 256  # frames decoded per batch

    def validate(self) -> None:
        if self.min_interval <= 0 or self.max_interval < self.min_interval:
            raise UserError(
                f"need 0 < --min-interval <= --interval, got {self.min_interval:g} and {self.max_interval:g}"
            )
        if self.retrieval_interval < self.min_interval:
            raise UserError(
                f"--retrieval-interval {self.retrieval_interval:g} is shorter than --min-interval {self.min_interval:g}"
            )
        if self.max_intervals < 0 or self.curve_intervals < 0:
            raise UserError("--max-intervals and --curve-intervals must be 0 (all) or positive")
        if self.batch_size <= 0:
            raise UserError(f"--batch-size must be positive, got {self.batch_size}")


# The one-number summaries of `measures.summarize`, with their titles and formats: errors, spreads and
# fractions whose ideal is 0 (ACAI's smoothness too), so lower is better for every one of them.
SUMMARY = {
    "interval_mse": ("interval MSE", "{:.5f}"),
    "alpha_iqr": ("alpha IQR", "{:.3f}"),
    "alpha_mean_abs_error": ("alpha abs. error", "{:.3f}"),
    "alpha_off_interval": ("retrieved off interval", "{:.1%}"),
    "parameter_distance_rms": ("param. distance RMS", "{:.2f}"),
    "smoothness": ("ACAI smoothness", "{:.3f}"),
}
