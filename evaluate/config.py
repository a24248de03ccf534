"""Which intervals `evaluate` measures: a torch-free dataclass, so that the command line starts fast."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from toolkit.errors import UserError


class Ends(StrEnum):
    all = "all"  # every interval of the grid
    train = "train"  # both ends from the run's training split
    test = "test"  # both ends from the test split: interpolation between images the model never saw


@dataclass
class EvalConfig:
    """Which intervals to measure; lengths are in the parameters' units (degrees)."""

    min_interval: float = 15.0  # shortest interval of the per-length curve (paper: 15)
    max_interval: float = 80.0  # the largest interval: per-alpha curves, retrieval, summaries (paper: 80)
    ends: Ends = Ends.all
    max_intervals: int = 288  # cap on intervals per parameter at the largest length (pole: half of 576); 0 = all
    curve_intervals: int = 24  # cap per parameter for each shorter length of the per-length curve; 0 = all
    batch_size: int = 256  # frames decoded per batch

    def validate(self) -> None:
        if self.min_interval <= 0 or self.max_interval < self.min_interval:
            raise UserError(
                f"need 0 < --min-interval <= --interval, got {self.min_interval:g} and {self.max_interval:g}"
            )
        if self.max_intervals < 0 or self.curve_intervals < 0:
            raise UserError("--max-intervals and --curve-intervals must be 0 (all) or positive")
        if self.batch_size <= 0:
            raise UserError(f"--batch-size must be positive, got {self.batch_size}")
