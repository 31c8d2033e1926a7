"""The device pages' words for what devices report: labels for every key, values in words.

A device sends keys (``ssid``, ``fw``, ``uptime_s``, ``Info1.Module``…); the pages show
none of them raw: a known key has its label in the word tables (``metric.*``, ``info.*``,
``source.*``), an unknown one is humanised ("update state"); a duration is said in words
("11 ngày 8 giờ"); a count is a whole number even where the chart averaged it. Pure
functions over a :class:`hub.words.Translator`; :mod:`hub.web.views` formats the rest.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

from hub.store.devices import LoggedEvent
from hub.web import views
from hub.words import Translator

#: Metrics that count things: shown whole, an average (a chart's point) rounded.
COUNTS = frozenset({"clients", "channel", "restarts", "reboots"})
_SPLIT = re.compile(r"[._\s]+|(?<=[a-z])(?=[A-Z])")


def humanised(key: str) -> str:
    """``update.state`` -> "Update state", ``RSSI`` stays "RSSI", ``LinkQuality`` ->
    "Link quality": a key no table names, as readable as it gets."""
    words = [w for w in _SPLIT.split(key) if w]
    if not words:
        return key
    shown = [w if w.isupper() or any(c.isdigit() for c in w) else w.lower() for w in words]
    first = shown[0]
    return " ".join([first[:1].upper() + first[1:], *shown[1:]])


def metric_label(t: Translator, name: str) -> str:
    key = f"metric.{name}"
    return t(key) if t.has(key) else humanised(name)


def info_label(t: Translator, name: str) -> str:
    key = f"info.{name.lower()}"
    return t(key) if t.has(key) else humanised(name)


def info_text(t: Translator, value: object) -> str:
    if isinstance(value, bool):
        return t("info.yes" if value else "info.no")
    return str(value)


def source_label(t: Translator, source: str) -> str:
    key = f"source.{source}"
    return t(key) if t.has(key) else humanised(source)


def duration_text(t: Translator, seconds: float) -> str:
    """A duration in words, its two largest units: "11 ngày 8 giờ", "5 phút", "40 giây"."""
    s = max(0, int(seconds))
    days, hours, minutes = s // 86_400, s % 86_400 // 3600, s % 3600 // 60
    if days:
        parts = [t("dur.d", n=days)] + ([t("dur.h", n=hours)] if hours else [])
    elif hours:
        parts = [t("dur.h", n=hours)] + ([t("dur.min", n=minutes)] if minutes else [])
    elif minutes:
        parts = [t("dur.min", n=minutes)]
    else:
        parts = [t("dur.s", n=s)]
    return " ".join(parts)


def is_duration(name: str) -> bool:
    return name.endswith("_s") and views.metric_unit(name) == "s"


def number_for(t: Translator, name: str) -> Callable[[float], str]:
    """How a chart writes this metric's values: counts whole, the rest as the page does."""
    if name in COUNTS:
        return lambda v: t.number(round(v))
    return t.number


def metric_text(t: Translator, name: str, value: float) -> str:
    """A metric's value as the device page reads it."""
    if is_duration(name):
        return duration_text(t, value)
    if name in COUNTS:
        return t.number(round(value))
    return views.metric_text(t, name, value)


def metric_rows(t: Translator, metrics: Mapping[str, float]) -> list[tuple[str, str]]:
    """(label, value) of every metric, in the pages' order."""
    return [
        (metric_label(t, n), metric_text(t, n, metrics[n])) for n in views.ordered_metrics(metrics)
    ]


def event_rows(t: Translator, events: Iterable[LoggedEvent]) -> list[views.EventRow]:
    """The device page's recent events, their readings worded as the rest of the page."""
    out = []
    for e in events:
        data = e.data
        if e.type == "status":
            text = t("event.online" if data.get("online") else "event.offline")
        elif e.type == "reading":
            metrics = data.get("metrics", {})
            shown = [
                f"{metric_label(t, n)} {metric_text(t, n, metrics[n])}"
                for n in views.ordered_metrics(metrics)[:3]
            ]
            text = t("event.reading") + (": " + " · ".join(shown) if shown else "")
        elif e.type == "button":
            text = t("event.button", action=data.get("action", "?"))
        else:
            text = t("event.announce")
        out.append(views.EventRow(e.ts, text))
    return out
