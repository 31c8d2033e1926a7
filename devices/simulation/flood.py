"""Simulation scenario: the flood the first water-level gauge plays, and the storm behind it."""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Water levels (cm) at which the village's flood warnings 1, 2 and 3 start.
FLOOD_LEVELS_CM: tuple[float, float, float] = (180.0, 220.0, 260.0)


@dataclass(frozen=True, slots=True)
class Flood:
    """A flood ``minutes`` long starting ``delay_min`` into the run, from base to peak and back.

    Times are model minutes since the start of the run.
    """

    delay_min: float
    minutes: float
    base_cm: float
    peak_cm: float

    def phase(self, elapsed_min: float) -> float:
        """0 at the start of the flood, 1 at its end (outside: before or after it)."""
        return (elapsed_min - self.delay_min) / self.minutes

    def level_cm(self, elapsed_min: float) -> float:
        """The level without noise: a fast rise, a slower fall."""
        phase = self.phase(elapsed_min)
        if not 0.0 < phase < 1.0:
            return self.base_cm
        rise = 0.4
        if phase < rise:
            share = (1 - math.cos(math.pi * phase / rise)) / 2
        else:
            share = (1 + math.cos(math.pi * (phase - rise) / (1 - rise))) / 2
        return self.base_cm + (self.peak_cm - self.base_cm) * share

    def storming(self, elapsed_min: float) -> bool:
        """Whether the heavy rain that feeds the flood falls (it starts before the rise)."""
        return -0.25 < self.phase(elapsed_min) < 0.45
