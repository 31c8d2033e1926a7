"""Home Assistant MQTT discovery: the retained configs that show the village in HA.

Its place in the flow: beside the MQTT mirror (hub/mqtt publishes what these pure
functions return). For each device the hub knows it publishes one ``sensor`` per
numeric metric and a ``binary_sensor`` for its health; for the hub itself, "on air"
and the title on air. Every entity's availability follows the hub's own status
topic (its will), and a native device's status topic too.

Where a device's readings come from:
- native devices (``village/{site}/ap|sensor/{id}/state``) are read by HA from
  their own topic, with a ``value_template`` picking the metric;
- devices of foreign wire formats (collectd, Tasmota, ESPHome, Zigbee2MQTT) and
  native kinds without a state topic are read from a hub-owned mirror,
  ``village/{site}/hub/devices/{id}/state``, which the hub publishes (retained)
  with :func:`mirror_payload` when the metrics change.

Configs use the full key names (no abbreviations) of HA's documented schema:
https://www.home-assistant.io/integrations/sensor.mqtt/ and
https://www.home-assistant.io/integrations/binary_sensor.mqtt/ (the voluptuous
schemas in home-assistant/core ``homeassistant/components/mqtt/sensor.py``,
``binary_sensor.py``, ``schemas.py``; device classes and their units in
``homeassistant/components/sensor/const.py``).

The entity id HA gives is set with ``default_entity_id`` (``sensor.langso_…``), not
``object_id``: HA 2025.10 deprecated ``object_id`` and stops honouring it in 2026.4.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

from hub.ingest.limits import TopicLimit

DISCOVERY_PREFIX = "homeassistant"
MANUFACTURER = "Làng Số Hub"
#: Kinds whose native contract has a ``state`` topic (DESIGN, "MQTT contract").
NATIVE_STATE_KINDS = frozenset({"ap", "sensor"})


class Message(NamedTuple):
    """One retained MQTT publish: discovery config, or its removal (empty payload)."""

    topic: str
    payload: str
    retain: bool = True


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What the hub knows of a device, as discovery needs it.

    ``source`` is the adapter that decoded it (``native``, ``collectd``…);
    ``metrics`` the numeric metric names seen; ``info`` its non-numeric facts
    (``fw`` becomes the device's ``sw_version``). ``wire_id`` is the id in the
    device's own topics when ``adapters.native.rename`` maps it to another hub id.
    ``has_status``: a native device publishes its ``status`` topic (the contract
    says every device does; set False for one that does not, or HA would keep its
    entities unavailable).
    """

    id: str
    kind: str
    source: str = "native"
    name: str | None = None
    metrics: tuple[str, ...] = ()
    info: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    has_status: bool = True
    wire_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", tuple(self.metrics))
        object.__setattr__(self, "info", MappingProxyType(dict(self.info)))


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """How HA should show one metric (device class and unit as HA documents them)."""

    name: str
    device_class: str | None = None
    unit: str | None = None
    state_class: str | None = "measurement"


#: Known metrics. Units follow HA's DEVICE_CLASS_UNITS (sensor/const.py): signal_strength
#: dB/dBm, temperature °C, distance cm, battery and humidity %, data_size B.
METRICS: dict[str, MetricSpec] = {
    "clients": MetricSpec("Thiết bị đang kết nối", unit="clients"),
    "rx_bytes": MetricSpec("Dữ liệu nhận", "data_size", "B", "total_increasing"),
    "tx_bytes": MetricSpec("Dữ liệu gửi", "data_size", "B", "total_increasing"),
    "signal_dbm": MetricSpec("Tín hiệu", "signal_strength", "dBm"),
    "noise_dbm": MetricSpec("Nhiễu", "signal_strength", "dBm"),
    "channel": MetricSpec("Kênh wifi", state_class=None),
    "uptime_s": MetricSpec("Thời gian chạy", "duration", "s", "total_increasing"),
    "cpu_pct": MetricSpec("CPU", unit="%"),
    "mem_pct": MetricSpec("Bộ nhớ", unit="%"),
    "temp_c": MetricSpec("Nhiệt độ", "temperature", "°C"),
    "water_level_cm": MetricSpec("Mực nước", "distance", "cm"),
    "battery_pct": MetricSpec("Pin", "battery", "%"),
    "humidity_pct": MetricSpec("Độ ẩm", "humidity", "%"),
    "rssi_pct": MetricSpec("Chất lượng wifi", unit="%"),
    "linkquality": MetricSpec("Chất lượng Zigbee", unit="lqi"),
}

#: Metrics outside the table are read by the hub's naming convention (name_unit).
_SUFFIXES: tuple[tuple[str, str | None, str], ...] = (
    ("_dbm", "signal_strength", "dBm"),
    ("_cm", "distance", "cm"),
    ("_c", "temperature", "°C"),
    ("_pct", None, "%"),
)


def metric_spec(metric: str) -> MetricSpec:
    spec = METRICS.get(metric)
    if spec is not None:
        return spec
    for suffix, device_class, unit in _SUFFIXES:
        if metric.endswith(suffix):
            return MetricSpec(metric, device_class, unit)
    return MetricSpec(metric)


# -- topics and payloads the hub publishes ---------------------------------------------------
def hub_status_topic(site: str) -> str:
    return f"village/{site}/hub/status"


def mirror_topic(site: str, device_id: str) -> str:
    return f"village/{site}/hub/devices/{device_id}/state"


def health_topic(site: str, device_id: str) -> str:
    return f"village/{site}/hub/devices/{device_id}/health"


def is_native(device: DeviceInfo) -> bool:
    """Does HA read this device's readings from its own topic?"""
    return device.source == "native" and device.kind in NATIVE_STATE_KINDS


def state_topic_for(site: str, device: DeviceInfo) -> str:
    if is_native(device):
        return f"village/{site}/{device.kind}/{device.wire_id or device.id}/state"
    return mirror_topic(site, device.id)


def device_status_topic(site: str, device: DeviceInfo) -> str | None:
    if device.source == "native" and device.has_status:
        return f"village/{site}/{device.kind}/{device.wire_id or device.id}/status"
    return None


def mirror_payload(metrics: Mapping[str, float]) -> bytes:
    """The mirror topic's JSON: the latest value of each metric (non-finite ones left
    out: JSON has no NaN)."""
    clean = {
        k: (int(v) if float(v).is_integer() and abs(v) < 2**53 else float(v))
        for k, v in metrics.items()
        if math.isfinite(v)
    }
    return json.dumps(clean, sort_keys=True, separators=(",", ":")).encode()


def health_payload(status: str) -> bytes:
    """The health topic: ``online`` (degraded is still connected), ``offline``, or
    ``None`` — HA's payload that sets a binary sensor to unknown."""
    if status in ("online", "degraded"):
        return b"online"
    if status == "offline":
        return b"offline"
    return b"None"


# -- ids ------------------------------------------------------------------------------------
def slug(text: str) -> str:
    """An object id for a discovery topic ([a-zA-Z0-9_-]); a short hash keeps two names
    that differ only in other characters apart."""
    s = re.sub(r"[^a-zA-Z0-9_-]", "_", text)
    if s != text:
        s += "_" + hashlib.blake2b(text.encode(), digest_size=3).hexdigest()
    return s


def _entity_slug(text: str) -> str:
    # Entity ids are lower-case letters, digits and single underscores.
    return re.sub(r"_+", "_", re.sub(r"[^a-z0-9]", "_", text.lower())).strip("_")


def node_id(site: str) -> str:
    return f"langso_{site}"


def device_identifier(site: str, device_id: str) -> str:
    return f"langso_{site}_{device_id}"


def hub_identifier(site: str) -> str:
    return f"langso_{site}_hub"


def config_topic(component: str, site: str, object_id: str) -> str:
    return f"{DISCOVERY_PREFIX}/{component}/{node_id(site)}/{slug(object_id)}/config"


def _value_template(metric: str) -> str:
    # ``| default('')``: a native AP sends any subset of its fields; a missing one
    # renders empty, which HA ignores for a numeric sensor instead of logging an
    # undefined-variable warning on every message.
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", metric):
        return f"{{{{ value_json.{metric} | default('') }}}}"
    return f"{{{{ value_json[{json.dumps(metric)}] | default('') }}}}"


def _availability(site: str, device: DeviceInfo | None) -> list[dict[str, str]]:
    topics = [hub_status_topic(site)]
    own = device_status_topic(site, device) if device is not None else None
    if own is not None:
        topics.append(own)
    return [
        {"topic": t, "payload_available": "online", "payload_not_available": "offline"}
        for t in topics
    ]


def _origin(version: str | None) -> dict[str, str]:
    o = {"name": MANUFACTURER}
    if version:
        o["sw_version"] = version
    return o


def _device_block(site: str, device: DeviceInfo) -> dict[str, Any]:
    block: dict[str, Any] = {
        "identifiers": [device_identifier(site, device.id)],
        "name": device.name or device.id,
        "manufacturer": MANUFACTURER,
        "model": device.kind,
        "via_device": hub_identifier(site),
    }
    fw = device.info.get("fw")
    if isinstance(fw, str | int | float) and str(fw):
        block["sw_version"] = str(fw)
    return block


def _hub_device_block(site: str, version: str | None) -> dict[str, Any]:
    block: dict[str, Any] = {
        "identifiers": [hub_identifier(site)],
        "name": f"{MANUFACTURER} ({site})",
        "manufacturer": MANUFACTURER,
        "model": "hub",
    }
    if version:
        block["sw_version"] = version
    return block


def _dump(config: Mapping[str, Any]) -> str:
    return json.dumps(config, ensure_ascii=False, separators=(",", ":"))


# -- configs ---------------------------------------------------------------------------------
def device_configs(site: str, device: DeviceInfo, *, version: str | None = None) -> list[Message]:
    """Discovery configs of one device: a sensor per metric and its connectivity."""
    dev = _device_block(site, device)
    origin = _origin(version)
    avail = _availability(site, device)
    state_topic = state_topic_for(site, device)
    out: list[Message] = []
    for metric in sorted(set(device.metrics)):
        spec = metric_spec(metric)
        uid = f"{device_identifier(site, device.id)}_{metric}"
        cfg: dict[str, Any] = {
            "name": spec.name,
            "unique_id": uid,
            "default_entity_id": f"sensor.{_entity_slug(uid)}",
            "state_topic": state_topic,
            "value_template": _value_template(metric),
        }
        if spec.device_class:
            cfg["device_class"] = spec.device_class
        if spec.unit:
            cfg["unit_of_measurement"] = spec.unit
        if spec.state_class:
            cfg["state_class"] = spec.state_class
        cfg |= {"availability": avail, "availability_mode": "all", "device": dev}
        cfg["origin"] = origin
        out.append(Message(config_topic("sensor", site, f"{device.id}_{metric}"), _dump(cfg)))
    uid = f"{device_identifier(site, device.id)}_connectivity"
    health = {
        "name": "Kết nối",
        "unique_id": uid,
        "default_entity_id": f"binary_sensor.{_entity_slug(uid)}",
        "state_topic": health_topic(site, device.id),
        "payload_on": "online",
        "payload_off": "offline",
        "device_class": "connectivity",
        # Only the hub's status: when the device is offline this entity says OFF,
        # rather than becoming unavailable itself.
        "availability": _availability(site, None),
        "availability_mode": "all",
        "device": dev,
        "origin": origin,
    }
    out.append(
        Message(config_topic("binary_sensor", site, f"{device.id}_connectivity"), _dump(health))
    )
    return out


def hub_configs(site: str, *, version: str | None = None) -> list[Message]:
    """The hub's own entities: its connection, "on air" and the title on air."""
    dev = _hub_device_block(site, version)
    origin = _origin(version)
    hub = hub_identifier(site)
    playout = f"village/{site}/playout/state"
    status = {
        "name": "Kết nối",
        "unique_id": f"{hub}_status",
        "default_entity_id": f"binary_sensor.{_entity_slug(hub)}_status",
        "state_topic": hub_status_topic(site),
        "payload_on": "online",
        "payload_off": "offline",
        "device_class": "connectivity",
        # No availability: this entity is the hub's availability, and shows OFF.
        "device": dev,
        "origin": origin,
    }
    on_air = {
        "name": "Đang phát",
        "unique_id": f"{hub}_on_air",
        "default_entity_id": f"binary_sensor.{_entity_slug(hub)}_on_air",
        "state_topic": playout,
        "value_template": "{{ 'ON' if value_json.state == 'playing' else 'OFF' }}",
        "payload_on": "ON",
        "payload_off": "OFF",
        "icon": "mdi:bullhorn",
        "availability": _availability(site, None),
        "availability_mode": "all",
        "device": dev,
        "origin": origin,
    }
    title = {
        "name": "Bản tin đang phát",
        "unique_id": f"{hub}_on_air_title",
        "default_entity_id": f"sensor.{_entity_slug(hub)}_on_air_title",
        "state_topic": playout,
        "value_template": "{{ value_json.title or '' }}",
        "icon": "mdi:text-box-outline",
        "availability": _availability(site, None),
        "availability_mode": "all",
        "device": dev,
        "origin": origin,
    }
    return [
        Message(config_topic("binary_sensor", site, "hub_status"), _dump(status)),
        Message(config_topic("binary_sensor", site, "hub_on_air"), _dump(on_air)),
        Message(config_topic("sensor", site, "hub_on_air_title"), _dump(title)),
    ]


def removal(topic: str) -> Message:
    """An empty retained config: HA removes the entity and the broker forgets it."""
    return Message(topic, "", True)


def device_removals(site: str, device: DeviceInfo) -> list[Message]:
    """Removals of every config :func:`device_configs` publishes for ``device``."""
    return [removal(m.topic) for m in device_configs(site, device)]


class HomeAssistantMirror:
    """Keeps Home Assistant's view current: configs when a device or a metric first
    appears, the mirror state of foreign devices, the health topic on status changes.

    Called from the ingest writer thread (and ``connected`` from paho's); ``publish``
    only queues, so nothing here blocks.

    Configs are not published the moment a device needs them: :meth:`device` (and
    :meth:`connected`) put the device in a queue and :meth:`drain` publishes at most
    about :attr:`burst` messages per call (after each ingest batch and on the hub's
    timer), fewer while ``backlog()`` says earlier publishes are still unacknowledged.
    A village's first minute, or a reconnect, brings hundreds of devices of about ten
    configs each: published at once, those thousands of QoS 1 messages waited in
    paho's queue at about 2 KB of RAM each (10 MB for 500 devices).

    At most ``max_configs`` configs (``ingest.max_discovery_configs``, the hub's own
    included) are published: each one is a retained message the broker and Home
    Assistant keep for good. The rest are counted (``limit.withheld``) and logged once.
    """

    #: Messages published per :meth:`drain` (whole devices: it may run over by one).
    burst = 200

    def __init__(
        self,
        site: str,
        publish: Callable[[str, bytes, bool], None],
        *,
        version: str | None = None,
        backlog: Callable[[], int] = lambda: 0,
        max_configs: int = 5_000,
    ) -> None:
        self.site = site
        self._publish = publish
        self.version = version
        self._backlog = backlog
        self._announced: dict[str, frozenset[str]] = {}
        self._pending: OrderedDict[str, DeviceInfo] = OrderedDict()
        self._lock = threading.Lock()
        self.limit = TopicLimit(
            max_configs, "Home Assistant discovery configs", "ingest.max_discovery_configs"
        )

    def _within_limit(self, key: str, messages: list[Message]) -> list[Message]:
        allowed = self.limit.allow(key, [m.topic for m in messages])
        return (
            messages
            if len(allowed) == len(messages)
            else [m for m in messages if m.topic in allowed]
        )

    def _send(self, messages: Iterable[Message]) -> None:
        for m in messages:
            self._publish(m.topic, m.payload.encode(), m.retain)

    def connected(self, devices: Iterable[DeviceInfo]) -> None:
        """After (re)connecting: the hub's own entities now, every known device's queued."""
        with self._lock:
            self._announced.clear()
            self._pending.clear()
        # Everything goes out again after a reconnect: the count starts again too; the
        # hub's own entities first ("the hub" is no device id: those hold no space).
        self.limit.reset()
        self._send(self._within_limit("the hub", hub_configs(self.site, version=self.version)))
        for d in devices:
            self.device(d)

    def needs(self, device_id: str, names: Iterable[str], *, native: bool) -> bool:
        """Cheap check per reading: a new device, a new metric, or a mirror to update."""
        if not native:
            return True
        known = self._announced.get(device_id)
        return known is None or not known.issuperset(names)

    def device(self, dev: DeviceInfo, metrics: Mapping[str, float] | None = None) -> None:
        names = frozenset(dev.metrics)
        with self._lock:
            known = self._announced.get(dev.id)
            if known is None or not names <= known:
                self._announced[dev.id] = names | (known or frozenset())
                self._pending[dev.id] = dev  # its newest view replaces a queued one
        if metrics and not is_native(dev):
            self._publish(mirror_topic(self.site, dev.id), mirror_payload(metrics), True)

    @property
    def pending(self) -> int:
        """Devices whose configs are queued."""
        return len(self._pending)

    def drain(self, budget: int | None = None) -> int:
        """Publish queued configs, about ``budget`` messages at most (less what is still
        unacknowledged); how many were sent."""
        limit = (self.burst if budget is None else budget) - self._backlog()
        sent = 0
        while sent < limit:
            with self._lock:
                if not self._pending:
                    break
                _, dev = self._pending.popitem(last=False)
            messages = device_configs(self.site, dev, version=self.version)
            self._send(self._within_limit(dev.id, messages))
            sent += len(messages)
        return sent

    def health(self, device_id: str, status: str) -> None:
        self._publish(health_topic(self.site, device_id), health_payload(status), True)
