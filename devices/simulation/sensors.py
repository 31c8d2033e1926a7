"""Simulation behaviour of the sensors: solar batteries, water-level gauges, weather stations."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from devices.simulation._maths import chance, clamp


@dataclass
class SensorState:
    """What a sensor carries from one step to the next; ``rng`` is its own generator."""

    rng: random.Random
    battery: float
    base_level: float = 0.0
    temp_offset: float = 0.0
    rain_day: str = ""
    rain_mm: float = 0.0
    shower_until: float = -math.inf


def new_sensor(device_id: str, rng: random.Random, flood_base_cm: float) -> SensorState:
    """A sensor as found at the start; ``wl-01`` (the flood gauge) rests at the flood's base."""
    return SensorState(
        rng=rng,
        battery=rng.uniform(60.0, 95.0),
        base_level=flood_base_cm if device_id == "wl-01" else rng.uniform(60.0, 110.0),
        temp_offset=rng.uniform(-1.0, 1.0),
    )


def _battery(st: SensorState, dt_model: float, hour: float) -> float:
    # Solar panel: charges in daylight, drains at night.
    rate = 1.5 if 8 <= hour < 16 else -0.4  # % per hour
    st.battery = clamp(st.battery + rate * dt_model / 3600, 5.0, 100.0)
    return round(st.battery, 1)


def water_level(
    st: SensorState, level_cm: float, now: float, dt_model: float, hour: float
) -> dict[str, object]:
    """A gauge's ``state`` body: ``level_cm`` (the flood's or its resting level) with noise."""
    return {
        "water_level_cm": round(level_cm + st.rng.gauss(0, 0.4), 1),
        "battery_pct": _battery(st, dt_model, hour),
        "ts": round(now, 3),
    }


def weather(
    st: SensorState,
    now: float,
    model_now: float,
    tz: ZoneInfo,
    storming: bool,
    dt_model: float,
    hour: float,
) -> dict[str, object]:
    """A weather station's ``state`` body: the day's temperature curve, showers, the storm."""
    rng = st.rng
    day = datetime.fromtimestamp(model_now, tz).date().isoformat()
    if day != st.rain_day:  # the daily rain total restarts at local midnight
        st.rain_day, st.rain_mm = day, 0.0
    if st.shower_until <= model_now and chance(rng, 0.05, dt_model):
        st.shower_until = model_now + rng.uniform(600.0, 2400.0)
    if storming:
        rate = rng.uniform(8.0, 30.0)  # the storm behind the flood, mm/h
    elif st.shower_until > model_now:
        rate = rng.uniform(1.0, 6.0)
    else:
        rate = 0.0
    st.rain_mm += rate * dt_model / 3600
    raining = rate > 0
    temp = 27 + 4.5 * math.cos(2 * math.pi * (hour - 14.5) / 24) + st.temp_offset
    temp += rng.gauss(0, 0.3) - (2.0 if raining else 0.0)
    humidity = 98 - (temp - 22) * 3.2 + (10 if raining else 0) + rng.gauss(0, 1.5)
    wind = abs(rng.gauss(1.8, 0.8)) + (rng.uniform(2.0, 6.0) if raining else 0.0)
    return {
        "temp_c": round(temp, 1),
        "humidity_pct": round(clamp(humidity, 35, 100), 1),
        "rain_mm": round(st.rain_mm, 1),
        "wind_ms": round(wind, 1),
        "battery_pct": _battery(st, dt_model, hour),
        "ts": round(now, 3),
    }
