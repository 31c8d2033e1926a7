"""Native adapter: the hub's own ``village/{site}/...`` contract (DESIGN "MQTT contract")."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal

from devices.adapters import _util as u
from devices.events import (
    DEVICE_KINDS,
    AnnounceCommand,
    Availability,
    ButtonPress,
    DecodeError,
    Event,
    Ignored,
    Reading,
)

#: AP state fields of the contract; any subset may come.
AP_NUMBERS = frozenset(
    {
        "clients",
        "rx_bytes",
        "tx_bytes",
        "signal_dbm",
        "noise_dbm",
        "channel",
        "uptime_s",
        "cpu_pct",
        "mem_pct",
        "temp_c",
    }
)
AP_STRINGS = frozenset({"ssid", "fw"})
Action = Literal["emergency", "stop", "announce"]
BUTTON_ACTIONS: tuple[Action, ...] = ("emergency", "stop", "announce")

# Home Assistant's discovery prefix (default): the hub may publish discovery there and
# HA publishes its birth message there; other adapters' filters (ESPHome's ``+/status``)
# bring those topics in, and they are nobody's input.
HA_PREFIX = "homeassistant/"

_SOURCE = "native"


class NativeAdapter:
    """Decodes ``village/{site}/...``; the hub's own mirrored topics come back as Ignored."""

    name = "native"

    def __init__(self, *, root: str, rename: Mapping[str, str]) -> None:
        self.filters: tuple[str, ...] = (f"{root}/#",)
        self._prefix = root + "/"
        self._cut = len(self._prefix)
        self._rename = dict(rename)

    def claims(self, topic: str) -> bool:
        return topic.startswith(self._prefix) or topic.startswith(HA_PREFIX)

    def parse(self, topic: str, payload: bytes) -> list[Event]:
        if not topic.startswith(self._prefix):
            if topic.startswith(HA_PREFIX):
                return [Ignored(_SOURCE, "Home Assistant discovery or birth message")]
            raise DecodeError(f"unknown topic shape: {u.shown(topic)}")
        parts = topic[self._cut :].split("/")
        n = len(parts)
        if n == 3:
            kind, raw, leaf = parts
            if leaf == "state" and kind in ("ap", "sensor"):
                return [self._state(kind, raw, payload)]
            if leaf == "status":
                return [self._status(kind, raw, payload)]
            if leaf == "event" and kind == "button":
                return [self._button(raw, payload)]
            if leaf == "cmd" and kind == "speaker":
                return [Ignored(_SOURCE, "the hub's own speaker command")]
        elif n == 2:
            if parts[0] == "cmd" and parts[1] == "announce":
                return [AnnounceCommand(_SOURCE, u.json_object(payload))]
            if (parts[0] == "hub" and parts[1] == "status") or (
                parts[0] == "playout" and parts[1] == "state"
            ):
                return [Ignored(_SOURCE, f"the hub's own {parts[0]}/{parts[1]}")]
        if parts[0] in ("announcements", "alerts", "hub"):
            # Includes hub/devices/<id>/state|health, the Home Assistant mirror.
            return [Ignored(_SOURCE, f"the hub's own {parts[0]} mirror")]
        raise DecodeError(f"unknown topic shape: {u.shown(topic)}")

    def _state(self, kind: str, raw: str, payload: bytes) -> Reading:
        device = u.device_id(raw, self._rename)
        obj = u.json_object(payload)
        ts: datetime | None = None
        metrics: dict[str, float] = {}
        info: dict[str, object] = {}
        if kind == "ap":
            for key, value in obj.items():
                if key in AP_NUMBERS:
                    metrics[key] = u.number(value, key)
                elif key == "ts":
                    ts = None if value is None else u.timestamp(value)
                elif key in AP_STRINGS:
                    if not isinstance(value, str):
                        raise DecodeError(f"field '{key}' is not a string")
                    info[key] = value
                elif not isinstance(value, str):
                    # Unknown numeric fields are kept (newer AP firmware) and unknown
                    # strings shown; a bool, null or nested value is outside the contract.
                    metrics[key] = u.number(value, key)
                else:
                    info[key] = value
        else:
            for key, value in obj.items():
                if key == "ts":
                    ts = None if value is None else u.timestamp(value)
                else:
                    metrics[key] = u.number(value, key)
        return Reading(_SOURCE, device, kind, metrics, ts, info)

    def _status(self, kind: str, raw: str, payload: bytes) -> Event:
        if not payload:
            # Status is retained (DESIGN); an empty retained publish clears it.
            return Ignored(_SOURCE, "empty status: a retained message being cleared")
        if kind not in DEVICE_KINDS:
            raise DecodeError(f"unknown device kind {kind[:40]!r}: use {', '.join(DEVICE_KINDS)}")
        device = u.device_id(raw, self._rename)
        return Availability(_SOURCE, device, kind, u.online(payload))

    def _button(self, raw: str, payload: bytes) -> ButtonPress:
        device = u.device_id(raw, self._rename)
        obj = u.json_object(payload)
        action = obj.get("action")
        if action in BUTTON_ACTIONS:
            template = obj.get("template")
            if template is not None and not isinstance(template, str):
                raise DecodeError("field 'template' is not a string")
            raw_ts = obj.get("ts")
            ts = None if raw_ts is None else u.timestamp(raw_ts)
            return ButtonPress(_SOURCE, device, action, template, ts)
        raise DecodeError(f"field 'action' must be one of {', '.join(BUTTON_ACTIONS)}")
