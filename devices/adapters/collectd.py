"""collectd adapter: the MQTT plugin's ``collectd/<host>/<plugin>/<type>`` values -> Reading.

Wire format (collectd src/mqtt.c): topic ``<prefix>/<host>/<plugin>[-<plugin
instance>]/<type>[-<type instance>]``, payload ``<epoch>:<v1>[:<v2>...]`` plus a
NUL (it publishes strlen+1 bytes). A rate with no previous sample is ``nan``
(vectors: the first ``if_octets`` after start).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import NamedTuple

from devices.adapters import _util as u
from devices.events import DecodeError, Event, Reading

# Value names of multi-valued types, from types.db (collectd 5.12, Debian 12).
# Other multi-valued types get .0 .1 ...; one value gets no suffix.
NAMED_VALUES: dict[str, tuple[str, ...]] = {
    "load": ("shortterm", "midterm", "longterm"),
    "if_octets": ("rx", "tx"),
    "if_packets": ("rx", "tx"),
    "if_errors": ("rx", "tx"),
    "if_dropped": ("rx", "tx"),
}

# OpenWrt's iwinfo plugin (900-add-iwinfo-plugin.patch) types with a native meaning.
IWINFO_ALIASES = {"stations": "clients", "signal_power": "signal_dbm", "signal_noise": "noise_dbm"}


class _Layout(NamedTuple):
    """How the values of one ``<plugin>/<type>`` are named (computed once per pair)."""

    names: tuple[str, ...]
    alias: str | None  # the native metric with the same meaning, for health thresholds
    complement: bool  # alias = 100 - value (cpu idle -> busy)


def _alias(plugin_part: str, type_part: str) -> tuple[str | None, bool]:
    plugin = plugin_part.partition("-")[0]
    if plugin == "iwinfo":  # OpenWrt collectd-mod-iwinfo, one instance per wifi interface
        return IWINFO_ALIASES.get(type_part), False
    if plugin_part == "cpu":  # aggregate only (ReportByCpu false); ValuesPercentage true
        if type_part == "percent-idle":
            return "cpu_pct", True
        if type_part == "percent-active":  # ReportByState false
            return "cpu_pct", False
    if plugin_part == "uptime" and type_part == "uptime":
        return "uptime_s", False
    if plugin_part == "memory" and type_part == "percent-used":
        return "mem_pct", False
    if plugin == "thermal" and type_part == "temperature":
        return "temp_c", False
    return None, False


@lru_cache(maxsize=4096)
def _layout(plugin_part: str, type_part: str, count: int) -> _Layout:
    base = f"{plugin_part}.{type_part}"
    known = NAMED_VALUES.get(type_part.partition("-")[0])
    if known is not None:
        if count != len(known):
            raise DecodeError(f"type '{type_part}' has {len(known)} values, got {count}")
        return _Layout(tuple(f"{base}.{k}" for k in known), None, False)
    if count > 1:
        return _Layout(tuple(f"{base}.{i}" for i in range(count)), None, False)
    alias, complement = _alias(plugin_part, type_part)
    return _Layout((base,), alias, complement)


def _value(raw: str, i: int) -> float | None:
    """One value; ``nan`` (and collectd's ``U``, "unknown") means no value this time."""
    try:
        v = float(raw)
    except ValueError:
        if raw == "U":
            return None
        raise DecodeError(f"value {i} {raw[:40]!r} is not a number") from None
    if math.isfinite(v):
        return v
    if math.isnan(v):
        return None
    raise DecodeError(f"value {i} is infinite")


class CollectdAdapter:
    """One Reading per message, device id = collectd's Hostname (through ``rename``)."""

    name = "collectd"

    def __init__(self, *, root: str, kind: str, rename: Mapping[str, str]) -> None:
        self.filters: tuple[str, ...] = (f"{root}/#",)
        self._prefix = root + "/"
        self._cut = len(self._prefix)
        self._kind = kind
        self._rename = dict(rename)

    def claims(self, topic: str) -> bool:
        return topic.startswith(self._prefix)

    def parse(self, topic: str, payload: bytes) -> list[Event]:
        parts = topic[self._cut :].split("/")
        if len(parts) != 3 or not topic.startswith(self._prefix) or not all(parts):
            raise DecodeError(
                f"unknown topic shape: {u.shown(topic)} (want {self._prefix}<host>/<plugin>/<type>)"
            )
        host, plugin_part, type_part = parts
        device = u.device_id(host, self._rename)
        fields = u.text(payload).split(":")
        if len(fields) < 2:
            raise DecodeError("not collectd's <time>:<value>[:<value>...]")
        try:
            seconds = float(fields[0])
        except ValueError:
            raise DecodeError(f"time {fields[0][:40]!r} is not a number") from None
        ts = u.epoch(seconds, "time")
        layout = _layout(plugin_part, type_part, len(fields) - 1)
        metrics: dict[str, float] = {}
        for i, (name, raw) in enumerate(zip(layout.names, fields[1:], strict=True)):
            v = _value(raw, i + 1)
            if v is not None:
                metrics[name] = v
        if layout.alias is not None and layout.names[0] in metrics:
            v = metrics[layout.names[0]]
            metrics[layout.alias] = 100.0 - v if layout.complement else v
        return [Reading(self.name, device, self._kind, metrics, ts)]
