"""The whole benchmark's ETA: its phases are known in advance (train an interpolator, generate its images,
train the CNN once per seed, ...), each of a kind whose cost per unit (epoch, image, step) is measured as the
phases run. Torch-free."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class Phase:
    name: str
    kind: str  # phases of one kind cost the same per unit: "interp" epochs, "extra" images, "cnn" steps
    units: float
    done: float = 0.0  # fraction completed
    first: tuple[float, float] | None = None  # (time, fraction done) of its first progress report


class BenchmarkClock:
    """Remaining time of a list of phases, from the measured seconds per unit of each kind."""

    def __init__(self, phases: list[Phase], now=time.perf_counter) -> None:
        self.phases = {p.name: p for p in phases}
        self.now = now
        self.spent: dict[str, list[float]] = {}  # kind -> [seconds, units] of what was measured
        self.current: tuple[Phase, float] | None = None

    def start(self, name: str) -> None:
        """Phase `name` begins (names the clock does not know are not counted)."""
        phase = self.phases.get(name)
        self.current = (phase, self.now()) if phase is not None else None

    def advance(self, done: int, total: int | None) -> None:
        """The current phase has done `done` of `total` of its own progress units."""
        if self.current is not None and total:
            phase = self.current[0]
            phase.done = min(max(done / total, 0.0), 1.0)
            if phase.first is None:  # a resumed phase reports what it had done before: not timed here
                phase.first = (self.now(), phase.done)

    def _speed(self, phase: Phase) -> tuple[float, float] | None:
        """(seconds, units) the phase has been measured at, from its first report on."""
        if phase.first is None:
            return None
        seconds, units = self.now() - phase.first[0], (phase.done - phase.first[1]) * phase.units
        return (seconds, units) if seconds > 0 and units > 0 else None

    def finish(self) -> None:
        """The current phase is complete: its seconds per unit join its kind's measure."""
        if self.current is None:
            return
        phase, began = self.current
        phase.done = 1.0
        measured = self._speed(phase) or (self.now() - began, phase.units)
        total = self.spent.setdefault(phase.kind, [0.0, 0.0])
        total[0], total[1] = total[0] + measured[0], total[1] + measured[1]
        self.current = None

    def rate(self, kind: str) -> float | None:
        """Seconds per unit of `kind`: measured, or from the running phase's own speed so far."""
        seconds, units = self.spent.get(kind, (0.0, 0.0))
        if units > 0:
            return seconds / units
        if self.current is not None and self.current[0].kind == kind:
            speed = self._speed(self.current[0])
            return speed[0] / speed[1] if speed else None
        return None

    def remaining(self) -> tuple[float, list[str]]:
        """Seconds left for the phases of measured kinds, and the names of the phases not yet estimable."""
        seconds, unknown = 0.0, []
        for phase in self.phases.values():
            left = phase.units * (1.0 - phase.done)
            if left <= 0:
                continue
            rate = self.rate(phase.kind)
            if rate is None:
                unknown.append(phase.name)
            else:
                seconds += left * rate
        return seconds, unknown

    def text(self) -> str:
        """'12:30' or '12:30 + train aeai, ...' for the phases whose cost is not known yet."""
        seconds, unknown = self.remaining()
        minutes, secs = divmod(int(round(seconds)), 60)
        hours, minutes = divmod(minutes, 60)
        clock = f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
        if unknown:
            clock += f" + {len(unknown)} phase{'s' if len(unknown) > 1 else ''} not yet timed ({unknown[0]}...)"
        return clock
