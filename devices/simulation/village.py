"""Simulation structure: which devices a village of n APs, sensors and button boxes has."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

_SITE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")  # the hub's `site` rule: no MQTT wildcards

AP_NAMES = (
    "Nhà văn hóa",
    "Xóm Đông",
    "Xóm Tây",
    "Xóm Bắc",
    "Xóm Nam",
    "Chợ",
    "Trường tiểu học",
    "Trạm y tế",
    "Đình làng",
    "Bến đò",
    "Sân bóng",
    "Chùa",
)

DeviceRole = Literal["ap", "water_level", "weather", "button"]
ButtonAction = Literal["emergency", "stop", "announce"]


@dataclass(frozen=True, slots=True)
class SimDevice:
    """One simulated device: its contract ``kind`` and ``id``, a display name, its role."""

    kind: Literal["ap", "sensor", "button"]
    id: str
    name: str
    role: DeviceRole


def check_site(site: str) -> None:
    """Raise ``ValueError`` unless ``site`` can stand in a topic level as the hub expects."""
    if not _SITE.match(site):
        raise ValueError(f"site {site!r}: lower-case letters, digits and '-' only")


def make_devices(n_aps: int, n_sensors: int, n_buttons: int) -> tuple[SimDevice, ...]:
    """The village's devices in publishing order: APs, then sensors, then button boxes."""
    devices: list[SimDevice] = []
    for i in range(1, n_aps + 1):
        name = AP_NAMES[i - 1] if i <= len(AP_NAMES) else f"Điểm wifi {i}"
        devices.append(SimDevice("ap", f"ap-{i:02d}", name, "ap"))
    n_wl = n_ws = 0
    for i in range(n_sensors):
        # Every fourth sensor (the first one included) is a water-level gauge.
        if i % 4 == 0:
            n_wl += 1
            name = "Mực nước sông, cầu làng" if n_wl == 1 else f"Mực nước kênh {n_wl}"
            devices.append(SimDevice("sensor", f"wl-{n_wl:02d}", name, "water_level"))
        else:
            n_ws += 1
            name = f"Trạm thời tiết {n_ws}"
            devices.append(SimDevice("sensor", f"ws-{n_ws:02d}", name, "weather"))
    for i in range(1, n_buttons + 1):
        name = "Hộp nút nhà văn hóa" if i == 1 else f"Hộp nút {i}"
        devices.append(SimDevice("button", f"btn-{i:02d}", name, "button"))
    return tuple(devices)
