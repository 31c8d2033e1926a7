"""What the pages show of the devices: cards, metric series, alerts, events, in words.

Plain functions over the hub that return small frozen records for the templates,
read through :mod:`hub.services.devices` and :mod:`hub.services.alerts`; the routes
in :mod:`hub.web.pages` only choose and render.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from hub.app import Hub
from hub.errors import NotFound
from hub.store.alerts import Alert
from hub.store.devices import STATUSES as STATUSES  # the pages' and the tests' name for it
from hub.store.devices import Device
from hub.words import Translator

#: Which metrics a device card shows first, and the order of a device's charts.
PREFERRED: tuple[str, ...] = (
    "clients",
    "signal_dbm",
    "water_level_cm",
    "battery_pct",
    "temperature_c",
    "humidity_pct",
    "rain_mm",
    "cpu_pct",
    "mem_pct",
    "temp_c",
    "rx_bytes",
    "tx_bytes",
    "noise_dbm",
)
#: Not worth a chart (a setting, or a counter better read as a number).
NOT_CHARTED = frozenset({"channel", "uptime_s"})
#: Ever-growing counters: charted as a rate.
COUNTERS_SUFFIX = "_bytes"
RANGES: Mapping[str, float] = {"24h": 86_400.0, "7d": 7 * 86_400.0, "30d": 30 * 86_400.0}
NBSP = "\u00a0"  # between a number and its unit: "12 %" never breaks across lines
#: Points per chart: enough for a phone's width, small enough for a Pi.
CHART_POINTS = 240


def metric_unit(name: str) -> str:
    if name.endswith(COUNTERS_SUFFIX):
        return "kB/s"
    for suffix, unit in (
        ("_pct", "%"),
        ("_dbm", "dBm"),
        ("_cm", "cm"),
        ("_mm", "mm"),
        ("_c", "°C"),
        ("_v", "V"),
        ("_s", "s"),
    ):
        if name.endswith(suffix):
            return unit
    return ""


def metric_label(t: Translator, name: str) -> str:
    key = f"metric.{name}"
    return t(key) if t.has(key) else name.replace("_", " ")


def metric_text(t: Translator, name: str, value: float) -> str:
    """A metric's current value as read on a card: ``−61 dBm``, ``77 %``, ``1,2 GB``."""
    if name.endswith(COUNTERS_SUFFIX):
        for size, unit in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
            if abs(value) >= size:
                return f"{t.number(value / size)}\u00a0{unit}"
        return f"{t.number(value)}\u00a0B"
    if name == "uptime_s":
        days, hours = int(value // 86_400), int(value % 86_400 // 3600)
        return f"{days}\u00a0d {hours}\u00a0h" if days else f"{hours}\u00a0h"
    unit = metric_unit(name)
    return f"{t.number(value)}{NBSP + unit if unit else ''}"


def ordered_metrics(names: Sequence[str] | Mapping[str, Any]) -> list[str]:
    names = list(names)
    first = [n for n in PREFERRED if n in names]
    return first + sorted(n for n in names if n not in PREFERRED)


def devices(hub: Hub, kind: str | None = None) -> list[Device]:
    return hub.devices.query(kind)


def device(hub: Hub, device_id: str) -> Device | None:
    try:
        return hub.devices.get(device_id)
    except NotFound:
        return None


def status_counts(cards: Sequence[Device]) -> dict[str, int]:
    c = Counter(d.status for d in cards)
    return {s: c.get(s, 0) for s in STATUSES}


def open_alerts(hub: Hub, device_id: str | None = None) -> list[Alert]:
    """Critical first, then the newest."""
    return hub.alerts.open(device_id)


def cleared_alerts(hub: Hub, device_id: str | None = None, limit: int = 30) -> list[Alert]:
    return hub.alerts.cleared(device_id, limit)


def alert_title(t: Translator, a: Alert) -> str:
    """What went wrong, in the page's language: a known rule, a threshold, else the message."""
    key = f"alert.rule.{a.rule}"
    if t.has(key):
        return t(key)
    if _RULE.match(a.rule):
        return t("alert.threshold", rule=rule_text(t, a.rule))
    return a.message


@dataclass(frozen=True, slots=True)
class EventRow:
    ts: float
    text: str


def recent_events(hub: Hub, t: Translator, device_id: str, limit: int = 10) -> list[EventRow]:
    out = []
    for e in hub.devices.events(device_id, limit=limit):
        data = e.data
        if e.type == "status":
            text = t("event.online" if data.get("online") else "event.offline")
        elif e.type == "reading":
            metrics = data.get("metrics", {})
            shown = [
                f"{metric_label(t, n)} {metric_text(t, n, metrics[n])}"
                for n in ordered_metrics(metrics)[:3]
            ]
            text = t("event.reading") + (": " + " · ".join(shown) if shown else "")
        elif e.type == "button":
            text = t("event.button", action=data.get("action", "?"))
        else:
            text = t("event.announce")
        out.append(EventRow(e.ts, text))
    return out


def series(
    hub: Hub, device_id: str, name: str, t0: float, t1: float, *, points: int = CHART_POINTS
) -> list[tuple[float, float]]:
    """One metric over [t0, t1] in about ``points`` averaged points; counters become a rate
    (kB/s)."""
    out = hub.devices.averaged(device_id, name, t0, t1, points)
    if name.endswith(COUNTERS_SUFFIX):
        rate = []
        for (ta, va), (tb, vb) in pairwise(out):
            if tb > ta and vb >= va:  # a drop is a counter reset (reboot): no point there
                rate.append((tb, (vb - va) / (tb - ta) / 1000))
        return rate
    return out


_RULE = re.compile(r"^(?P<metric>.+?)(?P<op>>=|<=|>|<)(?P<value>-?[0-9.e+]+)$")


def rule_text(t: Translator, rule: str) -> str:
    """``cpu_pct>90`` (the monitor's rule name) as a person reads it: ``CPU > 90 %``."""
    m = _RULE.match(rule)
    if m is None:
        return rule
    op = {">=": "≥", "<=": "≤"}.get(m["op"], m["op"])
    value = m["value"]
    with contextlib.suppress(ValueError):
        value = t.number(float(value))
    unit = metric_unit(m["metric"])
    return f"{metric_label(t, m['metric'])} {op} {value}{NBSP + unit if unit else ''}"


def reason_text(t: Translator, reason: str | None) -> str:
    """The monitor's reason for a status (English, for logs) in the page's language."""
    if not reason:
        return ""
    if reason == "its status topic said online":
        return t("reason.said_online")
    if reason == "its status topic said offline":
        return t("reason.said_offline")
    if reason == "data received":
        return t("reason.data")
    m = re.match(r"^no data for ([0-9.]+) s$", reason)
    if m:
        return t("reason.silent", n=t.number(float(m[1]) / 60))
    if reason.startswith("thresholds: "):
        rules = ", ".join(rule_text(t, r) for r in reason[len("thresholds: ") :].split(", "))
        return t("reason.thresholds", rules=rules)
    return reason
