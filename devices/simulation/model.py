"""Simulation model: the village as a pure function of a seed and the times it is stepped at.

Given a seed, :class:`VillageModel` turns ``step(now)`` into the messages a village
would send at ``now`` under the native contract of DESIGN.md
(``village/{site}/ap/{id}/state``, ``…/sensor/{id}/state``). Wifi clients follow the
day (busy in the evening, none at night), counters only grow, an AP now and then goes
silent or degrades, and the first water-level sensor (``wl-01``) plays a flood that
rises past the warning levels 180, 220 and 260 cm and falls back.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from devices.simulation import aps, sensors
from devices.simulation.flood import Flood
from devices.simulation.payload import Message, button_message, state_message, status_message
from devices.simulation.village import ButtonAction, SimDevice, check_site, make_devices

log = logging.getLogger(__name__)


@dataclass
class _Presence:
    silent_until: float = -math.inf  # real time (the runner's clock)


class VillageModel:
    """The village as a deterministic function of (seed, the times ``step`` is called at).

    ``start`` and every ``now`` are epoch seconds from the caller's clock. The
    scenario runs on a model clock ``start + (now - start) * time_scale`` so a demo
    can play an hour's flood in a minute; the ``ts`` in payloads stays ``now`` (the
    hub compares it with arrival times). Durations of dropouts are model time too.

    Not thread-safe: the runner (``devices.simulator.Simulator``) calls it under a lock.
    """

    def __init__(
        self,
        seed: int,
        n_aps: int,
        n_sensors: int,
        start: float,
        *,
        site: str = "thon-dong",
        n_buttons: int = 0,
        timezone: str = "Asia/Ho_Chi_Minh",
        time_scale: float = 1.0,
        flood_delay_min: float = 2.0,
        flood_minutes: float = 60.0,
        flood_base_cm: float = 120.0,
        flood_peak_cm: float = 275.0,
        dropout_per_h: float = 0.1,
        degrade_per_h: float = 0.15,
    ) -> None:
        check_site(site)
        for what, n in (("aps", n_aps), ("sensors", n_sensors), ("buttons", n_buttons)):
            if not 0 <= n <= 999:
                raise ValueError(f"{what}: {n} is not between 0 and 999")
        if time_scale <= 0 or flood_minutes <= 0:
            raise ValueError("time_scale and flood_minutes must be > 0")
        if flood_peak_cm <= flood_base_cm:
            raise ValueError("flood_peak_cm must be above flood_base_cm")
        if dropout_per_h < 0 or degrade_per_h < 0:
            raise ValueError("dropout_per_h and degrade_per_h must be ≥ 0")
        self.seed = seed
        self.site = site
        self.start = float(start)
        self.time_scale = float(time_scale)
        self.tz = ZoneInfo(timezone)
        self.flood = Flood(
            float(flood_delay_min), float(flood_minutes), float(flood_base_cm), float(flood_peak_cm)
        )
        self.dropout_per_h = float(dropout_per_h)
        self.degrade_per_h = float(degrade_per_h)
        self.devices: tuple[SimDevice, ...] = make_devices(n_aps, n_sensors, n_buttons)
        self._aps: dict[str, aps.ApState] = {}
        self._sensors: dict[str, sensors.SensorState] = {}
        self._presence = {d.id: _Presence() for d in self.devices}
        self._last: float | None = None
        for device in self.devices:
            # One generator per device, seeded by (seed, id): a device's story does not
            # change when devices are added after it.
            rng = random.Random(f"{self.seed}/{device.id}")
            if device.role == "ap":
                self._aps[device.id] = aps.new_ap(device.id, rng, self.start)
            elif device.role in ("water_level", "weather"):
                self._sensors[device.id] = sensors.new_sensor(device.id, rng, self.flood.base_cm)

    def device(self, device_id: str) -> SimDevice:
        for device in self.devices:
            if device.id == device_id:
                return device
        raise KeyError(f"no simulated device {device_id!r}")

    def status_message(self, device: SimDevice, online: bool) -> Message:
        """The retained status a device publishes (birth) or leaves as its will."""
        return status_message(self.site, device, online)

    # Time ------------------------------------------------------------------------------

    def model_time(self, now: float) -> float:
        return self.start + (now - self.start) * self.time_scale

    def local_hour(self, now: float) -> float:
        local = datetime.fromtimestamp(self.model_time(now), self.tz)
        return local.hour + local.minute / 60 + local.second / 3600

    def _elapsed_min(self, now: float) -> float:
        return (self.model_time(now) - self.start) / 60

    def flood_level_cm(self, now: float) -> float:
        """The flood sensor's level at ``now`` without noise: a fast rise, a slower fall."""
        return self.flood.level_cm(self._elapsed_min(now))

    # Availability ------------------------------------------------------------------------

    @property
    def silent(self) -> frozenset[str]:
        """Devices in a dropout as of the last ``step`` (their connection should be down)."""
        if self._last is None:
            return frozenset()
        last = self._last
        return frozenset(d for d, p in self._presence.items() if p.silent_until > last)

    def force_dropout(self, device_id: str, now: float, seconds: float) -> None:
        """Make a device go silent from ``now`` for ``seconds`` of real time (0 ends it)."""
        self.device(device_id)
        self._presence[device_id].silent_until = now + seconds if seconds > 0 else -math.inf

    # The step --------------------------------------------------------------------------

    def step(self, now: float) -> list[Message]:
        """Advance the model to ``now`` and return what the devices publish at that time.

        Devices in a dropout publish nothing; buttons publish only when pressed
        (:meth:`button_event`). Call with non-decreasing ``now``.
        """
        dt = 0.0 if self._last is None else max(0.0, now - self._last)
        self._last = now
        dt_model = dt * self.time_scale
        hour = self.local_hour(now)
        out: list[Message] = []
        for device in self.devices:
            if device.role == "ap":
                self._ap_availability(device, now, dt_model)
            if self._presence[device.id].silent_until > now:
                continue
            if device.role == "ap":
                body = aps.ap_state(self._aps[device.id], now, self.model_time(now), dt_model, hour)
            elif device.role == "water_level":
                st = self._sensors[device.id]
                level = self.flood_level_cm(now) if device.id == "wl-01" else st.base_level
                body = sensors.water_level(st, level, now, dt_model, hour)
            elif device.role == "weather":
                storming = self.flood.storming(self._elapsed_min(now))
                body = sensors.weather(
                    self._sensors[device.id],
                    now,
                    self.model_time(now),
                    self.tz,
                    storming,
                    dt_model,
                    hour,
                )
            else:
                continue
            out.append(state_message(self.site, device, body))
        return out

    def _ap_availability(self, device: SimDevice, now: float, dt_model: float) -> None:
        st, presence = self._aps[device.id], self._presence[device.id]
        if presence.silent_until <= now:
            until = aps.dropout(st, now, dt_model, self.dropout_per_h, self.time_scale)
            if until is not None:
                presence.silent_until = until
                log.debug("%s drops out until %.0f", device.id, until)
        aps.degrade(st, now, dt_model, self.degrade_per_h, self.time_scale)

    def button_event(
        self, device_id: str, action: ButtonAction, template: str | None = None
    ) -> Message:
        """What a button box publishes when pressed (``template`` only for ``announce``)."""
        device = self.device(device_id)
        if device.kind != "button":
            raise ValueError(f"{device_id} is not a button box")
        if action not in ("emergency", "stop", "announce"):
            raise ValueError(f"unknown button action {action!r}")
        return button_message(self.site, device, action, template)
