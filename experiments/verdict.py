"""A verdict a user can act on: did an arm's extra data change the downstream error, beyond seed noise?

The arms share their CNN seeds, so each seed gives a paired change against real only (seed s of the arm
against seed s of real). The mean of those changes and its 95 % confidence interval (Student's t with n - 1
degrees of freedom) say whether the change is measurable: when the interval holds 0 it is not. The change is
relative (%) when every real-only score is positive, otherwise in the metric's own units (an error rate of 0 %
leaves nothing to be relative to). Every metric of the benchmark is an error, so lower is better.
Torch-free.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

# Two-sided 95 % quantiles of Student's t, t_{0.975}(df); beyond the table 1.96 + 2.4 / df is within 0.003.
_T975 = {
    1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
    11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
    20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048,
    29: 2.045, 30: 2.042,
}  # fmt: skip

ARM_TITLES = {
    "photometric": "photometric augmentation",
    "mixup": "pixel mixup",
    "ae": "plain AE interpolation",
    "aeai": "AEAI interpolation",
    "aeai-no-d": "AEAI interpolation without D",
    "aeai-no-c": "AEAI interpolation without the cycle loss",
    "aeai-no-s": "AEAI interpolation without the smoothness loss",
}


def t_quantile_975(df: int) -> float:
    """t_{0.975} with `df` degrees of freedom (df >= 1)."""
    return _T975[df] if df in _T975 else 1.96 + 2.4 / df


@dataclass
class Verdict:
    """The paired change of one arm against real only."""

    arm: str
    seeds: int
    mean: float  # mean change, in `unit`
    half_width: float | None  # of the 95 % interval; None with one seed
    unit: str  # "%" (relative) or the metric's units ("" then)
    amount: str  # "-31.0 % ± 6.0 %"
    conclusion: str

    @property
    def interval(self) -> tuple[float, float] | None:
        if self.half_width is None:
            return None
        return self.mean - self.half_width, self.mean + self.half_width

    def as_dict(self) -> dict:
        return {**asdict(self), "interval": self.interval}


def _amount(mean: float, half: float | None, unit: str) -> str:
    space = " " if unit else ""
    if half is None:
        return f"{mean:+.1f}{space}{unit} (one seed, no interval)"
    return f"{mean:+.1f}{space}{unit} ± {half:.1f}{space}{unit}"


def paired_verdict(arm: str, real: list[float], scores: list[float]) -> Verdict:
    """Mean change of `scores` against `real` over the seeds both have, its 95 % CI, and a one-line conclusion."""
    n = min(len(real), len(scores))
    base, other = np.asarray(real[:n], np.float64), np.asarray(scores[:n], np.float64)
    relative = n > 0 and bool((base > 0).all())
    change = 100 * (other - base) / base if relative else other - base  # (n,)
    unit = "%" if relative else ""
    title = ARM_TITLES.get(arm, arm.replace("run:", "run "))
    if n == 0:
        return Verdict(arm, 0, math.nan, None, unit, "—", f"{title}: no paired seeds to compare")
    mean = float(change.mean())
    half = float(t_quantile_975(n - 1) * change.std(ddof=1) / math.sqrt(n)) if n > 1 else None
    amount = _amount(mean, half, unit)
    if half is None or abs(mean) <= half:
        conclusion = f"{title}: no measurable gain ({amount})"
    elif mean < 0:
        conclusion = f"{title} helps: {amount}"
    else:
        conclusion = f"{title} hurts: {amount}"
    return Verdict(arm, n, mean, half, unit, amount, conclusion)


def verdicts(scores: dict[str, list[float]]) -> list[Verdict]:
    """The verdict of every arm but real only (none without a real-only arm)."""
    if "real" not in scores:
        return []
    return [paired_verdict(arm, scores["real"], s) for arm, s in scores.items() if arm != "real"]
