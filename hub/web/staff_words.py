"""The staff pages' words that are not a table: zones, the playout's notes, rules in words.

Everything here turns the hub's data into what a village head or a technician reads, in
Vietnamese or English: the zones a broadcast reached, why a broadcast did not play, an
event rule's trigger, conditions, actions and firings. No HTTP, no database.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from hub.automation.rule_model import (
    AlertTrigger,
    AnnounceAction,
    ButtonTrigger,
    Conditions,
    MetricTrigger,
    NotifyAction,
    PublishAction,
    Rule,
    ScheduleTrigger,
    StatusTrigger,
    SwitchAction,
)
from hub.broadcast.clusters import parse_note
from hub.web import views
from hub.words import Translator
from hub.words.schedule import describe_schedule
from hub.words.times import duration_text, ts_of


def zones_text(t: Translator, zones: Sequence[str], names: Mapping[str, str]) -> str:
    """The zones as people call them (``gpio.zone_names``), or "every zone"."""
    if "all" in zones or not zones:
        return t("zones.all")
    return ", ".join(names.get(z, z) for z in zones)


def detail_text(t: Translator, detail: str | None) -> str:
    """The playout's note on a broadcast (English, for logs) in the page's language, with
    what the remote clusters heard (``…; clusters 5/6; missing: …``) in words."""
    if not detail:
        return ""
    base, cut, rest = detail.partition("; clusters ")
    if cut:
        return "; ".join(
            p for p in (detail_text(t, base), clusters_text(t, "clusters " + rest)) if p
        )
    if detail.startswith("clusters "):
        return clusters_text(t, detail) or detail
    if detail.startswith("stopped by user:"):
        return t("hist.why.stopped", name=detail.removeprefix("stopped by user:"))
    known = {
        "stopped by shutdown": "hist.why.shutdown",
        "stopped by cancelled": "hist.why.cancelled",
        "the hub was not running": "hist.why.down",
        "the hub was down": "hist.why.down",
        "cancelled before it played": "hist.why.before",
    }
    if detail in known:
        return t(known[detail])
    if detail.startswith("preempted by "):
        return t("hist.why.preempted")
    return detail


# -- rules in words -----------------------------------------------------------------------
_OPS = {">": ">", ">=": "≥", "<": "<", "<=": "≤"}


def _measure(t: Translator, metric: str, value: float) -> str:
    unit = views.metric_unit(metric)
    return t.number(value) + (f"\u00a0{unit}" if unit else "")


def trigger_words(t: Translator, rule: Rule) -> str:
    trig = rule.trigger
    if isinstance(trig, MetricTrigger):
        text = t(
            "rules.trig.metric",
            metric=views.metric_label(t, trig.metric),
            op=_OPS[trig.op],
            value=_measure(t, trig.metric, trig.value),
        )
        if trig.for_s:
            text += t("rules.trig.for", d=duration_text(t, trig.for_s))
        if trig.hysteresis:
            up = trig.op in (">", ">=")
            back = trig.value - trig.hysteresis if up else trig.value + trig.hysteresis
            key = "rules.trig.clears_below" if up else "rules.trig.clears_above"
            text += t(key, value=_measure(t, trig.metric, back))
        return text
    if isinstance(trig, StatusTrigger):
        text = t("rules.trig.status", status=t(f"status.{trig.status}").lower())
        if trig.for_s:
            text += t("rules.trig.for", d=duration_text(t, trig.for_s))
        return text
    if isinstance(trig, AlertTrigger):
        what = t("rules.trig.alert_any")
        if trig.rule:
            key = f"alert.rule.{trig.rule}"
            what = t(key) if t.has(key) else views.rule_text(t, trig.rule)
        text = t("rules.trig.alert", what=what)
        if trig.severity:
            text += f" ({t(f'severity.{trig.severity}').lower()})"
        return text
    if isinstance(trig, ButtonTrigger):
        return t("rules.trig.button", action=t(f"rules.button.{trig.action}"))
    assert isinstance(trig, ScheduleTrigger)
    return t("rules.trig.schedule", when=describe_schedule(trig.rrule, trig.start, t.lang))


def condition_words(t: Translator, c: Conditions, zone_names: Mapping[str, str]) -> str:
    parts = []
    if c.kinds:
        parts.append(t("rules.cond.kinds", kinds=", ".join(t(f"kind.{k}") for k in c.kinds)))
    if c.devices:
        parts.append(t("rules.cond.devices", devices=", ".join(c.devices)))
    if c.zones:
        parts.append(t("rules.cond.zones", zones=", ".join(zone_names.get(z, z) for z in c.zones)))
    if c.during:
        parts.append(t("rules.cond.during", window=c.during.replace("-", "–")))
    return "; ".join(parts) if parts else t("rules.cond.none")


def action_words(t: Translator, a: Any, zone_names: Mapping[str, str]) -> str:
    if isinstance(a, AnnounceAction):
        return t(
            "rules.act.announce",
            priority=t(f"prio.{a.priority}").lower(),
            zones=zones_text(t, a.zones, zone_names),
        )
    if isinstance(a, NotifyAction):
        groups = [t(f"rules.group.{g}") if t.has(f"rules.group.{g}") else g for g in a.to]
        return t("rules.act.notify", to=t.join(groups))
    if isinstance(a, SwitchAction):
        return t("rules.act.switch", output=a.output, d=duration_text(t, a.duration_s))
    assert isinstance(a, PublishAction)
    return t("rules.act.publish", topic=a.topic)


def cause_words(t: Translator, cause: Mapping[str, Any], tz: ZoneInfo) -> str:
    kind = cause.get("event")
    if kind == "metric":
        metric = str(cause.get("metric", ""))
        return t(
            "rules.cause.metric",
            metric=views.metric_label(t, metric),
            value=_measure(t, metric, float(cause.get("value", 0))),
            op=_OPS.get(str(cause.get("op")), str(cause.get("op"))),
            limit=_measure(t, metric, float(cause.get("limit", 0))),
        )
    if kind == "status":
        return t("rules.cause.status", status=t(f"status.{cause.get('status')}").lower())
    if kind == "alert":
        return t("rules.cause.alert", message=cause.get("message") or cause.get("rule") or "")
    if kind == "button":
        return t("rules.cause.button", action=t(f"rules.button.{cause.get('action')}"))
    if kind == "schedule":
        at = ts_of(str(cause.get("at") or "")) or 0.0
        return t("rules.cause.schedule", at=t.when(at, tz))
    return json.dumps(dict(cause), ensure_ascii=False)


def result_parts(t: Translator, result: str) -> tuple[str, str, bool]:
    """An action's result as logged ("notify: no channel configured") -> (what, how, failed)."""
    kind, _, rest = result.partition(": ")
    key = f"rules.type.{kind}"
    return (
        (t(key) if t.has(key) else kind),
        rest,
        ": failed:" in result or rest.startswith("failed"),
    )


def clusters_text(t: Translator, detail: str | None) -> str:
    """The clusters' part of a playout log note in words ("" when it has none)."""
    note = parse_note(detail)
    if note is None:
        return ""
    if note.total == 0:
        return t("clusters.none")
    parts = [t("clusters.heard", heard=note.heard, total=note.total)]
    if note.missing:
        parts.append(t("clusters.missing", names=", ".join(note.missing)))
    if note.dropped:
        parts.append(t("clusters.dropped", names=", ".join(note.dropped)))
    return "; ".join(parts)
