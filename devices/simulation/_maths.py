"""Simulation helpers: clamping a reading and drawing a Poisson event over a model step."""

from __future__ import annotations

import math
import random


def clamp(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


def chance(rng: random.Random, per_h: float, dt_model: float) -> bool:
    """Whether an event of rate ``per_h`` (per model hour) happens within ``dt_model`` s."""
    return per_h > 0 and rng.random() < 1 - math.exp(-per_h * dt_model / 3600)
