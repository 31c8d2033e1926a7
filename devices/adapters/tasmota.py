"""Tasmota adapter: ``tele/<topic>/LWT|STATE|SENSOR|INFO1|...`` -> Availability and Reading.

Tasmota's default FullTopic is ``%prefix%/%topic%/`` with prefixes ``cmnd``,
``stat`` and ``tele`` (tasmota/docs MQTT.md). Only ``tele`` carries reports;
``stat`` replies to commands and ``cmnd`` are commands (Tasmota even sends an
empty ``cmnd/<t>/POWER`` to itself on connect), so those are recognised and
Ignored, and not subscribed to.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

from devices.adapters import _util as u
from devices.events import Availability, DecodeError, Event, Ignored, Reading

# STATE leaves that mean what a native metric means (tasmota/docs MQTT.md, STATE):
# Wifi.RSSI is a 0-100 quality, Wifi.Signal the dBm (firmware >= 8.x only).
STATE_ALIASES = {"Wifi.RSSI": "rssi_pct", "Wifi.Signal": "signal_dbm", "UptimeSec": "uptime_s"}


class TasmotaAdapter:
    """Device id = the Tasmota ``%topic%`` (through ``rename``)."""

    name = "tasmota"

    def __init__(self, *, root: str, kind: str, rename: Mapping[str, str]) -> None:
        self.filters: tuple[str, ...] = (f"{root}/#",)
        self._tele = root + "/"
        self._cut = len(self._tele)
        # Siblings only where the root is Tasmota's own prefix: "tele" or ".../tele"
        # (a FullTopic like "home/%prefix%/%topic%/"). A custom root such as the
        # DeepSleep doc's "state" has no known command/reply prefixes.
        self._stat: str | None = None
        self._cmnd: str | None = None
        self._prefixes: tuple[str, ...] = (self._tele,)
        if root == "tele" or root.endswith("/tele"):
            base = root[: -len("tele")]
            self._stat, self._cmnd = base + "stat/", base + "cmnd/"
            self._prefixes = (self._tele, self._stat, self._cmnd)
        self._kind = kind
        self._rename = dict(rename)

    def claims(self, topic: str) -> bool:
        return topic.startswith(self._prefixes)

    def parse(self, topic: str, payload: bytes) -> list[Event]:
        if not topic.startswith(self._tele):
            if self._cmnd is not None and topic.startswith(self._cmnd):
                return [Ignored(self.name, "a command to a Tasmota device (cmnd/), not a report")]
            if self._stat is not None and topic.startswith(self._stat):
                # Command replies; the same facts come again on tele/<t>/STATE.
                return [Ignored(self.name, "a Tasmota command reply (stat/)")]
            raise DecodeError(f"unknown topic shape: {u.shown(topic)}")
        parts = topic[self._cut :].split("/")
        if len(parts) != 2 or not parts[1]:
            raise DecodeError(f"unknown topic shape: {u.shown(topic)} (want {self._tele}<t>/<X>)")
        raw, leaf = parts
        device = u.device_id(raw, self._rename)
        if leaf == "LWT":
            return [self._lwt(device, payload)]
        if leaf == "SENSOR":
            return [self._report(device, payload, None)]
        if leaf == "STATE":
            return [self._report(device, payload, STATE_ALIASES)]
        if leaf == "INFO1":
            return [self._info1(device, payload)]
        return [self._other(device, leaf, payload)]

    def _lwt(self, device: str, payload: bytes) -> Event:
        if not payload:
            return Ignored(self.name, "empty LWT: a retained message being cleared")
        # An Offline is expected=False even from a DeepSleep node (which says Offline on
        # purpose before sleeping, DeepSleep.md): the topic alone cannot tell them apart,
        # so a per-device setting must (health.devices.<id>.sleeps).
        return Availability(self.name, device, self._kind, u.online(payload, "Online", "Offline"))

    def _report(self, device: str, payload: bytes, aliases: Mapping[str, str] | None) -> Reading:
        obj = u.json_object(payload)
        metrics: dict[str, float] = {}
        info: dict[str, object] = {}
        ts: datetime | None = None
        for key, value in obj.items():
            if key == "Time":
                # Device-local time without an offset (Timezone setting): not UTC, unusable.
                continue
            if key == "Epoch":
                ts = u.timestamp(u.number(value, key), key)
                continue
            u.flatten(value, key, metrics, info)
        if aliases:
            for leaf, alias in aliases.items():
                if leaf in metrics:
                    metrics[alias] = metrics[leaf]
        return Reading(self.name, device, self._kind, metrics, ts, info)

    def _info1(self, device: str, payload: bytes) -> Reading:
        obj = u.json_object(payload)
        # Since 9.x the fields sit under "Info1"; older firmware sent them at the top.
        inner = obj.get("Info1", obj)
        if not isinstance(inner, dict):
            raise DecodeError("field 'Info1' is not a JSON object")
        info: dict[str, object] = {}
        for field, key in (("Module", "module"), ("Version", "version")):
            value = inner.get(field)
            if value is None:
                continue
            if not isinstance(value, str):
                raise DecodeError(f"field '{field}' is not a string")
            info[key] = value
        return Reading(self.name, device, self._kind, {}, None, info)

    def _other(self, device: str, leaf: str, payload: bytes) -> Event:
        # Plain-text tele topics are device-side alarms such as POWER_LOW ON/OFF
        # (MQTT.md): kept as a 1/0 metric so rules can act on them. JSON ones
        # (INFO2, INFO3, RESULT of RF/IR receivers...) carry nothing the hub stores.
        s = u.text(payload)
        if s == "ON" or s == "OFF":
            return Reading(self.name, device, self._kind, {leaf: 1 if s == "ON" else 0})
        try:
            v = float(s)
        except ValueError:
            return Ignored(self.name, f"Tasmota tele/<t>/{leaf[:40]} is not decoded")
        if not math.isfinite(v):
            raise DecodeError(f"tele/{leaf[:40]} value is not a finite number")
        return Reading(self.name, device, self._kind, {leaf: v})
