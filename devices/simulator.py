"""Village simulator: the start of the flow, simulated APs, sensors and button boxes on MQTT.

What ``langso simulate`` runs, and what the integration tests and demos publish
through. Two parts:

- :class:`VillageModel` is pure: given a seed, it turns ``step(now)`` into the
  messages a village would send at ``now`` under the native contract of DESIGN.md
  (``village/{site}/ap/{id}/state``, ``…/sensor/{id}/state``). Wifi clients follow
  the day (busy in the evening, none at night), counters only grow, an AP now and
  then goes silent or degrades, and the first water-level sensor (``wl-01``) plays a
  flood that rises past the warning levels 180, 220 and 260 cm and falls back.
- :class:`Simulator` gives every simulated device its own paho-mqtt connection, so
  each has its own Last Will (``offline``, retained) and birth (``online``,
  retained) on ``village/{site}/{kind}/{id}/status``, drops a connection uncleanly
  when the model says an AP went silent (the broker then publishes the will), and
  reconnects it afterwards.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, NamedTuple
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger(__name__)

#: Water levels (cm) at which the village's flood warnings 1, 2 and 3 start.
FLOOD_LEVELS_CM: tuple[float, float, float] = (180.0, 220.0, 260.0)

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
SSID = "LangSo-Wifi-Mien-Phi"
AP_FIRMWARE = "OpenWrt 23.05.3"

#: Share of an AP's evening peak of wifi clients, per local hour 0..23 (interpolated).
CLIENT_PROFILE = (
    0.02, 0.01, 0.01, 0.01, 0.02, 0.08, 0.25, 0.35, 0.3, 0.25, 0.25, 0.35,
    0.45, 0.35, 0.3, 0.3, 0.4, 0.55, 0.8, 0.95, 1.0, 0.9, 0.55, 0.15,
)  # fmt: skip

DeviceRole = Literal["ap", "water_level", "weather", "button"]
ButtonAction = Literal["emergency", "stop", "announce"]


@dataclass(frozen=True, slots=True)
class SimDevice:
    """One simulated device: its contract ``kind`` and ``id``, a display name, its role."""

    kind: Literal["ap", "sensor", "button"]
    id: str
    name: str
    role: DeviceRole


class Message(NamedTuple):
    """One MQTT publication: full topic, payload bytes, retain flag."""

    topic: str
    payload: bytes
    retain: bool = False


def _clamp(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


def _json(data: dict[str, object]) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def client_share(hour: float) -> float:
    """The share of the evening peak of wifi clients at a local hour (0 ≤ hour < 24)."""
    low = int(hour) % 24
    frac = hour - math.floor(hour)
    a, b = CLIENT_PROFILE[low], CLIENT_PROFILE[(low + 1) % 24]
    return a + (b - a) * frac


@dataclass
class _ApState:
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


@dataclass
class _SensorState:
    rng: random.Random
    battery: float
    base_level: float = 0.0
    temp_offset: float = 0.0
    rain_day: str = ""
    rain_mm: float = 0.0
    shower_until: float = -math.inf


@dataclass
class _Presence:
    silent_until: float = -math.inf  # real time (the runner's clock)


class VillageModel:
    """The village as a deterministic function of (seed, the times ``step`` is called at).

    ``start`` and every ``now`` are epoch seconds from the caller's clock. The
    scenario runs on a model clock ``start + (now - start) * time_scale`` so a demo
    can play an hour's flood in a minute; the ``ts`` in payloads stays ``now`` (the
    hub compares it with arrival times). Durations of dropouts are model time too.

    Not thread-safe: :class:`Simulator` calls it under a lock.
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
        if not _SITE.match(site):
            raise ValueError(f"site {site!r}: lower-case letters, digits and '-' only")
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
        self.flood_delay_min = float(flood_delay_min)
        self.flood_minutes = float(flood_minutes)
        self.flood_base_cm = float(flood_base_cm)
        self.flood_peak_cm = float(flood_peak_cm)
        self.dropout_per_h = float(dropout_per_h)
        self.degrade_per_h = float(degrade_per_h)
        self.devices: tuple[SimDevice, ...] = self._make_devices(n_aps, n_sensors, n_buttons)
        self._aps: dict[str, _ApState] = {}
        self._sensors: dict[str, _SensorState] = {}
        self._presence = {d.id: _Presence() for d in self.devices}
        self._last: float | None = None
        for device in self.devices:
            self._init_state(device)

    # Structure -------------------------------------------------------------------------

    @staticmethod
    def _make_devices(n_aps: int, n_sensors: int, n_buttons: int) -> tuple[SimDevice, ...]:
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

    def _init_state(self, device: SimDevice) -> None:
        # One generator per device, seeded by (seed, id): a device's story does not
        # change when devices are added after it.
        rng = random.Random(f"{self.seed}/{device.id}")
        if device.role == "ap":
            first = device.id == "ap-01"  # the cultural house: the busiest AP, good signal
            self._aps[device.id] = _ApState(
                rng=rng,
                max_clients=40 if first else rng.randint(8, 20),
                signal_base=-50.0 if first else rng.uniform(-76.0, -55.0),
                mem_base=rng.uniform(30.0, 45.0),
                channel=(1, 6, 11)[(int(device.id[3:]) - 1) % 3],
                boot=self.start - rng.uniform(1.0, 40.0) * 86400,
                rx=rng.randint(10**8, 10**10),
                tx=rng.randint(10**8, 10**10),
            )
        elif device.role in ("water_level", "weather"):
            self._sensors[device.id] = _SensorState(
                rng=rng,
                battery=rng.uniform(60.0, 95.0),
                base_level=(
                    self.flood_base_cm if device.id == "wl-01" else rng.uniform(60.0, 110.0)
                ),
                temp_offset=rng.uniform(-1.0, 1.0),
            )

    def device(self, device_id: str) -> SimDevice:
        for device in self.devices:
            if device.id == device_id:
                return device
        raise KeyError(f"no simulated device {device_id!r}")

    def status_topic(self, device: SimDevice) -> str:
        return f"village/{self.site}/{device.kind}/{device.id}/status"

    def status_message(self, device: SimDevice, online: bool) -> Message:
        """The retained status a device publishes (birth) or leaves as its will."""
        return Message(self.status_topic(device), b"online" if online else b"offline", True)

    # Time ------------------------------------------------------------------------------

    def model_time(self, now: float) -> float:
        return self.start + (now - self.start) * self.time_scale

    def local_hour(self, now: float) -> float:
        local = datetime.fromtimestamp(self.model_time(now), self.tz)
        return local.hour + local.minute / 60 + local.second / 3600

    def flood_level_cm(self, now: float) -> float:
        """The flood sensor's level at ``now`` without noise: a fast rise, a slower fall."""
        minutes = (self.model_time(now) - self.start) / 60
        phase = (minutes - self.flood_delay_min) / self.flood_minutes
        if not 0.0 < phase < 1.0:
            return self.flood_base_cm
        rise = 0.4
        if phase < rise:
            share = (1 - math.cos(math.pi * phase / rise)) / 2
        else:
            share = (1 + math.cos(math.pi * (phase - rise) / (1 - rise))) / 2
        return self.flood_base_cm + (self.flood_peak_cm - self.flood_base_cm) * share

    def _flood_phase(self, now: float) -> float:
        minutes = (self.model_time(now) - self.start) / 60
        return (minutes - self.flood_delay_min) / self.flood_minutes

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

    def _chance(self, rng: random.Random, per_h: float, dt_model: float) -> bool:
        return per_h > 0 and rng.random() < 1 - math.exp(-per_h * dt_model / 3600)

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
                payload = self._ap_state(device, now, dt_model, hour)
            elif device.role == "water_level":
                payload = self._water_level(device, now, dt_model, hour)
            elif device.role == "weather":
                payload = self._weather(device, now, dt_model, hour)
            else:
                continue
            topic = f"village/{self.site}/{device.kind}/{device.id}/state"
            out.append(Message(topic, _json(payload), False))
        return out

    def _ap_availability(self, device: SimDevice, now: float, dt_model: float) -> None:
        st, presence = self._aps[device.id], self._presence[device.id]
        if presence.silent_until <= now and self._chance(st.rng, self.dropout_per_h, dt_model):
            # A link loss (backhaul cable, power to the pole): the AP vanishes for a while.
            presence.silent_until = now + st.rng.uniform(120.0, 900.0) / self.time_scale
            log.debug("%s drops out until %.0f", device.id, presence.silent_until)
        if st.degraded_until <= now and self._chance(st.rng, self.degrade_per_h, dt_model):
            st.degraded_until = now + st.rng.uniform(180.0, 600.0) / self.time_scale
            st.degraded = st.rng.choice(("cpu", "signal"))

    def _ap_state(
        self, device: SimDevice, now: float, dt_model: float, hour: float
    ) -> dict[str, object]:
        st = self._aps[device.id]
        rng = st.rng
        target = st.max_clients * client_share(hour)
        st.clients = max(0, round(rng.gauss(target, max(0.4, target * 0.15))))
        st.tx += int((st.clients * rng.uniform(20e3, 60e3) + 300) * dt_model)
        st.rx += int((st.clients * rng.uniform(3e3, 10e3) + 200) * dt_model)
        degraded = st.degraded if st.degraded_until > now else None
        signal = _clamp(st.signal_base + rng.gauss(0, 2.0), -85.0, -45.0)
        cpu = _clamp(4 + st.clients * 1.5 + rng.gauss(0, 3.0), 1.0, 85.0)
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
            "uptime_s": int(self.model_time(now) - st.boot),
            "cpu_pct": round(cpu, 1),
            "mem_pct": round(_clamp(st.mem_base + st.clients * 0.4 + rng.gauss(0, 1), 10, 95), 1),
            "temp_c": round(42 + cpu * 0.15 + ambient + rng.gauss(0, 0.5), 1),
            "ssid": SSID,
            "fw": AP_FIRMWARE,
            "ts": round(now, 3),
        }

    def _battery(self, st: _SensorState, dt_model: float, hour: float) -> float:
        # Solar panel: charges in daylight, drains at night.
        rate = 1.5 if 8 <= hour < 16 else -0.4  # % per hour
        st.battery = _clamp(st.battery + rate * dt_model / 3600, 5.0, 100.0)
        return round(st.battery, 1)

    def _water_level(
        self, device: SimDevice, now: float, dt_model: float, hour: float
    ) -> dict[str, object]:
        st = self._sensors[device.id]
        level = self.flood_level_cm(now) if device.id == "wl-01" else st.base_level
        return {
            "water_level_cm": round(level + st.rng.gauss(0, 0.4), 1),
            "battery_pct": self._battery(st, dt_model, hour),
            "ts": round(now, 3),
        }

    def _weather(
        self, device: SimDevice, now: float, dt_model: float, hour: float
    ) -> dict[str, object]:
        st, rng = self._sensors[device.id], self._sensors[device.id].rng
        model_now = self.model_time(now)
        day = datetime.fromtimestamp(model_now, self.tz).date().isoformat()
        if day != st.rain_day:  # the daily rain total restarts at local midnight
            st.rain_day, st.rain_mm = day, 0.0
        if st.shower_until <= model_now and self._chance(rng, 0.05, dt_model):
            st.shower_until = model_now + rng.uniform(600.0, 2400.0)
        phase = self._flood_phase(now)
        if -0.25 < phase < 0.45:
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
            "humidity_pct": round(_clamp(humidity, 35, 100), 1),
            "rain_mm": round(st.rain_mm, 1),
            "wind_ms": round(wind, 1),
            "battery_pct": self._battery(st, dt_model, hour),
            "ts": round(now, 3),
        }

    def button_event(
        self, device_id: str, action: ButtonAction, template: str | None = None
    ) -> Message:
        """What a button box publishes when pressed (``template`` only for ``announce``)."""
        device = self.device(device_id)
        if device.kind != "button":
            raise ValueError(f"{device_id} is not a button box")
        if action not in ("emergency", "stop", "announce"):
            raise ValueError(f"unknown button action {action!r}")
        body: dict[str, object] = {"action": action}
        if template is not None:
            body["template"] = template
        return Message(f"village/{self.site}/button/{device_id}/event", _json(body), False)


# --- the runner: one MQTT connection per device -------------------------------------------


@dataclass(eq=False)
class _Link:
    """One device's MQTT connection. ``client`` is replaced by a fresh one on reconnect."""

    device: SimDevice
    client: mqtt.Client | None = None
    online: threading.Event = field(default_factory=threading.Event)  # birth queued
    lost: bool = False  # the connection ended unasked (set in the network thread)
    dropped: bool = False  # we cut it on purpose (a dropout)


class Simulator:
    """Runs a :class:`VillageModel` against a broker, one paho client per device.

    ``clock`` gives the ``now`` passed to the model (epoch seconds); ``sleep`` waits
    between ticks (default: an interruptible wait on the ``stop_event`` of
    :meth:`run`). Network waits when stopping are bounded in real time.

    Threads: :meth:`run` runs in the caller's thread and does all publishing and
    connection changes; each client's callbacks run in that client's paho network
    thread (``loop_start``) and only set flags. :meth:`force_dropout` and
    :meth:`press` may be called from any thread.
    """

    def __init__(
        self,
        host: str,
        port: int,
        model: VillageModel,
        *,
        interval: float = 10.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] | None = None,
        username: str | None = None,
        password: str | None = None,
        keepalive: int = 30,
        client_id_prefix: str = "langso-sim",
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be > 0 seconds")
        self.host = host
        self.port = port
        self.model = model
        self.interval = float(interval)
        self._clock = clock
        self._sleep = sleep
        self._username = username
        self._password = password
        self._keepalive = keepalive
        self._prefix = client_id_prefix
        self._lock = threading.Lock()  # the model and the links' transitions
        self._links = {d.id: _Link(d) for d in model.devices}
        self._stopping = False

    @property
    def site(self) -> str:
        return self.model.site

    def online_ids(self) -> frozenset[str]:
        """Devices whose connection is up and whose birth message was sent."""
        return frozenset(i for i, link in self._links.items() if link.online.is_set())

    def force_dropout(self, device_id: str, seconds: float) -> None:
        """Cut a device's connection uncleanly at the next tick, for ``seconds``."""
        with self._lock:
            self.model.force_dropout(device_id, self._clock(), seconds)

    def restore(self, device_id: str) -> None:
        """End a dropout: the device reconnects at the next tick."""
        self.force_dropout(device_id, 0.0)

    def press(self, button_id: str, action: ButtonAction, template: str | None = None) -> bool:
        """Publish a button box's event now; ``False`` if the box is not connected."""
        message = self.model.button_event(button_id, action, template)
        link = self._links[button_id]
        client = link.client
        if client is None or not link.online.is_set():
            return False
        client.publish(message.topic, message.payload, qos=1, retain=message.retain)
        return True

    # Running ---------------------------------------------------------------------------

    def run(self, stop_event: threading.Event, duration: float | None = None) -> None:
        """Connect every device, publish every ``interval`` until stopped, then disconnect.

        Returns when ``stop_event`` is set or after ``duration`` seconds (by the clock).
        On the way out each connected device publishes ``offline`` (retained) and
        disconnects cleanly.
        """
        start = self._clock()
        deadline = None if duration is None else start + duration
        self._stopping = False
        log.info(
            "simulating %d devices of %s on %s:%d",
            len(self._links),
            self.site,
            self.host,
            self.port,
        )
        try:
            for link in self._links.values():
                self._connect(link)
            self._await_online(stop_event, min(self.interval, 5.0))
            next_tick = self._clock()
            while not stop_event.is_set():
                now = self._clock()
                if deadline is not None and now >= deadline:
                    break
                if now >= next_tick:
                    self._tick(now)
                    next_tick += self.interval
                    if next_tick <= now:  # fell behind (a slow broker): skip, don't burst
                        next_tick = now + self.interval
                wake = next_tick if deadline is None else min(next_tick, deadline)
                self._wait(stop_event, max(0.0, wake - self._clock()))
        finally:
            self._shutdown()

    def _wait(self, stop_event: threading.Event, seconds: float) -> None:
        if self._sleep is None:
            stop_event.wait(seconds)
        else:
            self._sleep(seconds)

    def _await_online(self, stop_event: threading.Event, timeout: float) -> None:
        # Let the first tick find the devices connected; a slow or absent broker only
        # delays them (paho keeps retrying), it does not stop the run.
        deadline = time.monotonic() + timeout
        for link in self._links.values():
            if stop_event.is_set() or not link.online.wait(max(0.0, deadline - time.monotonic())):
                break

    def _tick(self, now: float) -> None:
        with self._lock:
            messages = self.model.step(now)
            silent = self.model.silent
            for link in self._links.values():
                if link.device.id in silent:
                    if not link.dropped:
                        self._drop(link)
                elif link.dropped or link.lost:
                    self._reconnect(link)
        for message in messages:
            link = self._links[message.topic.split("/")[3]]
            client = link.client
            if client is not None and link.online.is_set():
                client.publish(message.topic, message.payload, qos=1, retain=message.retain)

    def _new_client(self, link: _Link) -> mqtt.Client:
        device = link.device
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"{self._prefix}-{self.site}-{device.id}",
            clean_session=True,
            userdata=link,
            protocol=mqtt.MQTTv311,
            # The runner decides when a device comes back (after its dropout), so paho
            # must not reconnect on its own; it still retries the first connection.
            reconnect_on_failure=False,
        )
        if self._username is not None:
            client.username_pw_set(self._username, self._password)
        will = self.model.status_message(device, online=False)
        client.will_set(will.topic, will.payload, qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        return client

    def _connect(self, link: _Link) -> None:
        # A fresh client per connection: paho's loop_start() on a reused client leaks
        # the previous socket pair, and a new one starts from a clean state.
        client = self._new_client(link)
        link.client, link.lost, link.dropped = client, False, False
        link.online.clear()
        client.connect_async(self.host, self.port, keepalive=self._keepalive)
        client.loop_start()

    def _drop(self, link: _Link) -> None:
        """Cut the connection without DISCONNECT, as a power cut would: the will fires."""
        client, link.client = link.client, None
        link.dropped, link.lost = True, False
        link.online.clear()
        if client is None:
            return
        sock = client.socket()
        if isinstance(sock, socket.socket):
            # FIN without an MQTT DISCONNECT: Mosquitto sees an unexpected close and
            # publishes the will. The network thread reads EOF and (no auto-reconnect)
            # ends; closing the socket itself is left to paho.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        client.loop_stop()
        log.info("%s dropped out (connection cut)", link.device.id)

    def _reconnect(self, link: _Link) -> None:
        old = link.client
        if old is not None:
            old.loop_stop()  # its thread has ended or is ending
        self._connect(link)

    def _on_connect(
        self,
        client: mqtt.Client,
        link: _Link,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        # Paho network thread of this client. A refusal is not a connection.
        if link.client is not client:
            return
        if reason_code.is_failure:
            log.warning("%s: the broker refused the connection: %s", link.device.id, reason_code)
            return
        birth = self.model.status_message(link.device, online=True)
        client.publish(birth.topic, birth.payload, qos=1, retain=True)
        link.online.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        link: _Link,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        # Paho network thread of this client; the run loop reconnects at its next tick.
        if link.client is not client or self._stopping:
            return
        link.online.clear()
        link.lost = True
        log.info("%s lost its connection: %s", link.device.id, reason_code)

    def _shutdown(self, timeout: float = 1.0) -> None:
        """Publish ``offline`` for each connected device, disconnect all, join threads."""
        self._stopping = True
        with self._lock:
            links = list(self._links.values())
        pending: list[mqtt.MQTTMessageInfo] = []
        for link in links:
            if link.client is not None and link.online.is_set():
                status = self.model.status_message(link.device, online=False)
                pending.append(
                    link.client.publish(status.topic, status.payload, qos=1, retain=True)
                )
        deadline = time.monotonic() + timeout  # real time: it bounds a network wait
        for info in pending:
            # Not sent in time (or not queued): the retained status stays as it was.
            with contextlib.suppress(ValueError, RuntimeError):
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
        for link in links:
            if link.client is not None:
                link.client.disconnect()
        for link in links:
            client, link.client = link.client, None
            link.online.clear()
            if client is not None:
                client.loop_stop()
        log.info("simulator stopped")


def run_simulator(
    host: str,
    port: int,
    site: str,
    aps: int,
    sensors: int,
    interval: float,
    seed: int | None,
    stop_event: threading.Event,
    *,
    buttons: int = 0,
    time_scale: float = 1.0,
    username: str | None = None,
    password: str | None = None,
    duration: float | None = None,
) -> None:
    """What ``langso simulate`` calls: build the village and run it until ``stop_event``."""
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    log.info("simulator seed %d (pass it again to replay the same village)", seed)
    model = VillageModel(
        seed, aps, sensors, time.time(), site=site, n_buttons=buttons, time_scale=time_scale
    )
    simulator = Simulator(
        host, port, model, interval=interval, username=username, password=password
    )
    simulator.run(stop_event, duration)
