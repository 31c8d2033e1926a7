"""Simulation behaviour of an access point: wifi clients over the day, counters, dropouts."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal

from devices.simulation._maths import chance, clamp

SSID = "LangSo-Wifi-Mien-Phi"
AP_FIRMWARE = "OpenWrt 23.05.3"

#: Share of an AP's evening peak of wifi clients, per local hour 0..23 (interpolated).
CLIENT_PROFILE = (
    0.02, 0.01, 0.01, 0.01, 0.02, 0.08, 0.25, 0.35, 0.3, 0.25, 0.25, 0.35,
    0.45, 0.35, 0.3, 0.3, 0.4, 0.55, 0.8, 0.95, 1.0, 0.9, 0.55, 0.15,
)  # fmt: skip


def client_share(hour: float) -> float:
    """The share of the evening peak of wifi clients at a local hour (0 ≤ hour < 24)."""
    low = int(hour) % 24
    frac = hour - math.floor(hour)
    a, b = CLIENT_PROFILE[low], CLIENT_PROFILE[(low + 1) % 24]
    return a + (b - a) * frac


@dataclass
class ApState:
    """What an AP carries from one step to the next; ``rng`` is the AP's own generator."""

    rng: random.Random
    max_clients: int
    signal_base: float
    mem_base: float
    channel: int
    boot: float
    rx: int
    tx: int
    clients: int = 0
    degraded_until: float = -math.inf
    degraded: Literal["cpu", "signal"] = "cpu"


def new_ap(device_id: str, rng: random.Random, start: float) -> ApState:
    """An AP as found at ``start`` (model time): booted days ago, counters well under way."""
    first = device_id == "ap-01"  # the cultural house: the busiest AP, good signal
    return ApState(
        rng=rng,
        max_clients=40 if first else rng.randint(8, 20),
        signal_base=-50.0 if first else rng.uniform(-76.0, -55.0),
        mem_base=rng.uniform(30.0, 45.0),
        channel=(1, 6, 11)[(int(device_id[3:]) - 1) % 3],
        boot=start - rng.uniform(1.0, 40.0) * 86400,
        rx=rng.randint(10**8, 10**10),
        tx=rng.randint(10**8, 10**10),
    )


def dropout(
    st: ApState, now: float, dt_model: float, per_h: float, time_scale: float
) -> float | None:
    """When a link loss that starts in this step ends (real time), or ``None`` if none does.

    A link loss (backhaul cable, power to the pole) makes the AP vanish for a while.
    """
    if not chance(st.rng, per_h, dt_model):
        return None
    return now + st.rng.uniform(120.0, 900.0) / time_scale


def degrade(st: ApState, now: float, dt_model: float, per_h: float, time_scale: float) -> None:
    """Maybe start a spell of saturated CPU or a weak signal (until a real time)."""
    if st.degraded_until <= now and chance(st.rng, per_h, dt_model):
        st.degraded_until = now + st.rng.uniform(180.0, 600.0) / time_scale
        st.degraded = st.rng.choice(("cpu", "signal"))


def ap_state(
    st: ApState, now: float, model_now: float, dt_model: float, hour: float
) -> dict[str, object]:
    """The AP's ``state`` body at ``now`` (``ts``), after ``dt_model`` seconds of traffic."""
    rng = st.rng
    target = st.max_clients * client_share(hour)
    st.clients = max(0, round(rng.gauss(target, max(0.4, target * 0.15))))
    st.tx += int((st.clients * rng.uniform(20e3, 60e3) + 300) * dt_model)
    st.rx += int((st.clients * rng.uniform(3e3, 10e3) + 200) * dt_model)
    degraded = st.degraded if st.degraded_until > now else None
    signal = clamp(st.signal_base + rng.gauss(0, 2.0), -85.0, -45.0)
    cpu = clamp(4 + st.clients * 1.5 + rng.gauss(0, 3.0), 1.0, 85.0)
    if degraded == "signal":
        signal = rng.uniform(-85.0, -81.0)
    elif degraded == "cpu":
        cpu = rng.uniform(91.0, 99.5)
    ambient = 3 * math.cos(2 * math.pi * (hour - 14) / 24)
    return {
        "clients": st.clients,
        "rx_bytes": st.rx,
        "tx_bytes": st.tx,
        "signal_dbm": round(signal),
        "noise_dbm": round(-95 + rng.gauss(0, 1.5)),
        "channel": st.channel,
        "uptime_s": int(model_now - st.boot),
        "cpu_pct": round(cpu, 1),
        "mem_pct": round(clamp(st.mem_base + st.clients * 0.4 + rng.gauss(0, 1), 10, 95), 1),
        "temp_c": round(42 + cpu * 0.15 + ambient + rng.gauss(0, 0.5), 1),
        "ssid": SSID,
        "fw": AP_FIRMWARE,
        "ts": round(now, 3),
    }
