"""Zigbee2MQTT adapter: ``zigbee2mqtt/<name>[/availability]`` and ``bridge/state`` -> events.

Zigbee2MQTT (zigbee2mqtt.io "MQTT topics and messages") publishes a device's
state as one JSON object on ``<base>/<friendly_name>``; a friendly name may
hold ``/`` and spaces, so the name is everything between the base topic and
the final ``/availability`` (or the end).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from devices.adapters import _util as u
from devices.events import Availability, DecodeError, Event, Ignored, Reading

# Exposes of type "binary" that are alarms or presence: true/false become 1/0 so
# that rules and charts can use them. Other booleans (child_lock...) go to info.
BINARY_FIELDS = frozenset(
    {
        "contact",
        "occupancy",
        "water_leak",
        "tamper",
        "battery_low",
        "smoke",
        "gas",
        "carbon_monoxide",
        "presence",
        "vibration",
    }
)
_AVAILABILITY = "/availability"


def _online(payload: bytes) -> bool:
    """Availability in both forms: legacy ``online`` and JSON ``{"state":"online"}`` (Z2M 2.x)."""
    if payload[:1] != b"{":
        return u.online(payload)
    state = u.json_object(payload).get("state")
    if state == "online" or state == "offline":
        return state == "online"
    raise DecodeError("field 'state' must be 'online' or 'offline'")


class Zigbee2mqttAdapter:
    """Device id = the friendly name made into an id (``Kitchen Motion`` -> ``kitchen-motion``)."""

    name = "zigbee2mqtt"

    def __init__(self, *, root: str, kind: str, rename: Mapping[str, str]) -> None:
        self.filters: tuple[str, ...] = (f"{root}/#",)
        self._prefix = root + "/"
        self._cut = len(self._prefix)
        self._kind = kind
        self._rename = dict(rename)
        # One bridge per base topic: a second Zigbee2MQTT on another base is another gateway.
        self.bridge_id = f"{u.slug(root) or 'zigbee2mqtt'}-bridge"

    def claims(self, topic: str) -> bool:
        return topic.startswith(self._prefix)

    def parse(self, topic: str, payload: bytes) -> list[Event]:
        rest = topic[self._cut :]
        if not topic.startswith(self._prefix) or not rest:
            raise DecodeError(f"unknown topic shape: {u.shown(topic)}")
        if rest.startswith("bridge/"):
            if rest != "bridge/state":
                # bridge/event, logging, info, devices, groups, request/..., response/...
                return [Ignored(self.name, f"Zigbee2MQTT {rest[:60]}: not a device report")]
            if not payload:
                return [Ignored(self.name, "empty bridge/state: a retained message being cleared")]
            return [Availability(self.name, self.bridge_id, "gateway", _online(payload))]
        if not payload:
            # Zigbee2MQTT clears the retained state and availability of a renamed or
            # removed device by publishing an empty retained message.
            return [Ignored(self.name, "empty payload: a retained message being cleared")]
        if rest.endswith(_AVAILABILITY):
            device = u.foreign_id(rest[: -len(_AVAILABILITY)], self._rename)
            return [Availability(self.name, device, self._kind, _online(payload))]
        head, _, leaf = rest.rpartition("/")
        if leaf in ("set", "get") or head.rpartition("/")[2] in ("set", "get"):
            # Commands to the device: <name>/set, <name>/get, <name>/set/<attribute>.
            return [Ignored(self.name, "a command to a Zigbee2MQTT device")]
        if leaf == "action" and payload[:1] != b"{":
            # Legacy action topic (plain string); the action is also in the state JSON.
            return [Ignored(self.name, "Zigbee2MQTT legacy action topic")]
        return [self._state(rest, payload)]

    def _state(self, friendly: str, payload: bytes) -> Reading:
        device = u.foreign_id(friendly, self._rename)
        value = u.json_value(payload)
        if not isinstance(value, dict):
            # advanced.output "attribute" publishes <name>/<attribute> plain values.
            raise DecodeError("payload is not a JSON object (Zigbee2MQTT advanced.output: json)")
        metrics: dict[str, float] = {}
        info: dict[str, object] = {}
        ts: datetime | None = None
        for key, item in value.items():
            if key == "last_seen":
                # advanced.last_seen: ISO_8601, ISO_8601_local (with offset), or epoch ms.
                if isinstance(item, str):
                    ts = u.timestamp(item, key)
                elif item is not None:
                    ts = u.epoch(u.number(item, key) / 1000, key)
            elif key in BINARY_FIELDS and isinstance(item, bool):
                metrics[key] = 1 if item else 0
            else:
                u.flatten(item, key, metrics, info)
        return Reading(self.name, device, self._kind, metrics, ts, info)
