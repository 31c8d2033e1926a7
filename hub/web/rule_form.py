"""The rule's edit form (``/app/rules/{id}``): what a village head changes on a phone (on or
off, the limit, how long it must hold, where it clears, the pause, the texts, the zones, the
priority) turned into the rule book's changes, and each refusal said next to its field.

The checks are the rule model's and the rule book's, not new ones: the form fills the
stored rule with what was typed, :class:`hub.automation.rule_model.Rule` validates it and
each pydantic error goes to the field it came from (:func:`field_of`); the templates are
tried as a save tries them; the rest (this hub's zones, groups, outputs) is the rule book's.
What the form does not show (conditions, notification groups, a switch's output…) stays as
stored: the advanced TOML box edits that. No HTTP beyond reading the form, no SQL.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from pydantic import ValidationError

from hub.app import Hub
from hub.automation.rule_model import (
    AnnounceAction,
    MetricTrigger,
    Rule,
    StatusTrigger,
    output_limit,
    sample_context,
)
from hub.automation.templates import NAME_SAMPLES, check_template, render_template, spoken_context
from hub.errors import Invalid
from hub.web import views
from hub.web.rule_text import loc_text, placeholder_list, pydantic_reason, template_reason
from hub.web.staff_words import zones_text
from hub.words import Translator
from hub.words.times import duration_text

# -- the posted form ----------------------------------------------------------------------
#: Longest value kept per field. A template keeps more than the model's 2,000 characters,
#: so the model says it is too long rather than the text being cut without a word.
TEXT_LIMIT = 4000
LIMITS = {"definition": 20_000, "name": 400}
FIELD_LIMIT = 256


class Posted:
    """A posted rule form: every value of every field (the zone boxes send several)."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._values: dict[str, list[str]] = {}
        for key, value in items:
            limit = TEXT_LIMIT if key.endswith("template") else LIMITS.get(key, FIELD_LIMIT)
            self._values.setdefault(key, []).append(value[:limit])

    def one(self, name: str, default: str = "") -> str:
        values = self._values.get(name)
        return values[0] if values else default

    def all(self, name: str) -> list[str]:
        return list(self._values.get(name, []))


async def read_posted(request: Request) -> Posted:
    """The form's fields (multipart, as every staff form; no files)."""
    form = await request.form(max_files=0, max_fields=256)
    try:
        return Posted((k, v) for k, v in form.multi_items() if isinstance(v, str))
    finally:
        await form.close()


# -- numbers and durations as typed --------------------------------------------------------
UNITS = {"s": 1, "min": 60, "h": 3600}
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def number_text(value: float, lang: str) -> str:
    """A number for an input box: 180, 1,5 (Vietnamese) or 1.5."""
    text = str(int(value)) if value == int(value) else f"{value:.6f}".rstrip("0")
    return text.replace(".", ",") if lang == "vi" else text


def parse_number(text: str) -> float | None:
    """A number as a person types it: 180, 1,5, 1.5, 1.234,5, − 3; None if it is none."""
    s = text.strip().replace("\u00a0", "").replace(" ", "").replace("−", "-")
    if "," in s:
        s = s.replace(".", "").replace(",", ".")
    return float(s) if _NUMBER.fullmatch(s) else None


def split_duration(seconds: float, lang: str) -> tuple[str, str]:
    """Seconds as the form shows them: the largest unit that divides them."""
    for unit in ("h", "min"):
        if seconds >= UNITS[unit] and seconds % UNITS[unit] == 0:
            return number_text(seconds / UNITS[unit], lang), unit
    return number_text(seconds, lang), "s"


# -- the form's fields, from a rule and back -----------------------------------------------
#: Action fields the form edits, by action type.
ACTION_FIELDS: dict[str, tuple[str, ...]] = {
    "announce": ("priority", "zones", "template", "clear_template"),
    "notify": ("template", "clear_template"),
}


def _up(op: str) -> bool:
    return op in (">", ">=")


def values_of(rule: Rule, lang: str) -> dict[str, Any]:
    """The rule's fields as the form shows them (numbers in the page's way of writing)."""
    v: dict[str, Any] = {"name": rule.name, "enabled": rule.enabled}
    trig = rule.trigger
    if isinstance(trig, MetricTrigger):
        v["value"] = number_text(trig.value, lang)
        back = trig.value - trig.hysteresis if _up(trig.op) else trig.value + trig.hysteresis
        v["clear"] = number_text(round(back, 6), lang) if trig.hysteresis else ""
    if isinstance(trig, MetricTrigger | StatusTrigger):
        v["for_n"], v["for_unit"] = split_duration(trig.for_s, lang)
    v["cooldown_n"], v["cooldown_unit"] = split_duration(rule.cooldown_s, lang)
    for i, a in enumerate(rule.actions):
        for name in ACTION_FIELDS.get(a.type, ()):
            value = getattr(a, name)
            v[f"a{i}.{name}"] = list(value) if name == "zones" else (value or "")
    return v


def posted_values(p: Posted, rule: Rule) -> dict[str, Any]:
    """What was typed, to put back in the form after a refusal."""
    v: dict[str, Any] = {}
    for key in values_of(rule, "en"):
        if key == "enabled":
            v[key] = p.one(key) == "1"
        elif key.endswith(".zones"):
            v[key] = p.all(key)
        else:
            v[key] = p.one(key)
    return v


def _duration(p: Posted, name: str, problems: dict[str, str], t: Translator) -> float | None:
    n = parse_number(p.one(f"{name}_n"))
    unit = UNITS.get(p.one(f"{name}_unit"))
    if n is None or unit is None:
        problems[f"{name}_n"] = t("rules.err.number")
        return None
    return n * unit


def fill(
    rule: Rule, p: Posted, t: Translator, zones: Sequence[str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The stored rule with the form's fields put in, for the model to validate; and what
    the form itself refuses (a number that is none, no zone ticked)."""
    data = rule.model_dump(mode="json")
    problems: dict[str, str] = {}
    data["name"] = p.one("name").strip()
    data["enabled"] = p.one("enabled") == "1"
    trig = data["trigger"]
    if trig["type"] == "metric":
        limit = parse_number(p.one("value"))
        if limit is None:
            problems["value"] = t("rules.err.number")
        else:
            trig["value"] = limit
        clear_text = p.one("clear").strip()
        clear = parse_number(clear_text)
        if not clear_text:
            trig["hysteresis"] = 0.0
        elif clear is None:
            problems["clear"] = t("rules.err.number")
        elif limit is not None:
            # Below (or above) the limit, as a level: the model keeps it as a distance.
            trig["hysteresis"] = round(limit - clear if _up(trig["op"]) else clear - limit, 6)
    if trig["type"] in ("metric", "status"):
        held = _duration(p, "for", problems, t)
        if held is not None:
            trig["for_s"] = held
    pause = _duration(p, "cooldown", problems, t)
    if pause is not None:
        data["cooldown_s"] = pause
    for i, a in enumerate(data["actions"]):
        if a["type"] not in ACTION_FIELDS:
            continue
        a["template"] = p.one(f"a{i}.template").replace("\r\n", "\n").strip()
        a["clear_template"] = p.one(f"a{i}.clear_template").replace("\r\n", "\n").strip() or None
        if a["type"] == "announce":
            a["priority"] = p.one(f"a{i}.priority", a["priority"])
            chosen = p.all(f"a{i}.zones")
            if "all" in chosen:
                a["zones"] = ["all"]
            elif chosen:
                # The hub's order; a zone it has not is kept for the rule book to refuse.
                a["zones"] = [z for z in zones if z in chosen] + [
                    z for z in chosen if z not in zones
                ]
            else:
                problems[f"a{i}.zones"] = t("rules.err.no_zone")
    return data, problems


def field_of(loc: Sequence[int | str]) -> str | None:
    """The form field a model error is about (None: one the form does not show)."""
    parts = [str(x) for x in loc]
    top = {"name": "name", "enabled": "enabled", "cooldown_s": "cooldown_n"}
    if len(parts) == 1 and parts[0] in top:
        return top[parts[0]]
    if parts[0] == "trigger" and len(parts) == 3:
        return {"value": "value", "for_s": "for_n", "hysteresis": "clear"}.get(parts[2])
    if parts[0] == "actions" and len(parts) >= 4 and parts[3] in ACTION_FIELDS["announce"]:
        return f"a{parts[1]}.{parts[3]}"
    return None


_BOOK_AT = re.compile(r"^actions\.(\d+)\.(\w+): (.*)$", re.S)


def check(
    before: Rule, data: Mapping[str, Any], problems: Mapping[str, str], t: Translator, hub: Hub
) -> tuple[Rule | None, dict[str, str], list[str]]:
    """The rule, or what to fix: by field (next to it) and the rest (above the form). Every
    field says its own at once: the model's errors, then each template tried as a save
    tries it (with the stored rule's sample values), then the rule book's checks."""
    errors, general = dict(problems), []
    rule: Rule | None = None
    try:
        rule = Rule.model_validate(data)
    except ValidationError as e:
        for err in e.errors():
            field = field_of(err["loc"])
            why = pydantic_reason(t, err)
            if field == "clear" and err["type"] == "greater_than_equal":
                trig = data["trigger"]
                side = "below" if _up(trig["op"]) else "above"
                why = t(f"rules.err.clear_{side}", limit=number_text(trig["value"], t.lang))
            if field is None:
                general.append(t("rules.err.at", key=loc_text(err["loc"]), why=why))
            else:
                errors.setdefault(field, why)
    ctx = sample_context(before)
    for i, a in enumerate(data["actions"]):
        for name in ("template", "clear_template"):
            text, key = a.get(name), f"a{i}.{name}"
            if a["type"] in ACTION_FIELDS and isinstance(text, str) and text and key not in errors:
                try:
                    check_template(text, ctx, limit=output_limit(name))
                except ValueError as e:
                    errors[key] = template_reason(t, str(e))
    if rule is None or errors or general:
        return None, errors, general
    try:
        hub.rule_book.validate(rule)
    except Invalid as e:
        m = _BOOK_AT.match(str(e))
        field = f"a{m[1]}.{m[2]}" if m and m[2] in ACTION_FIELDS["announce"] else None
        if m and field:
            why = t("rules.err.zone") if m[2] == "zones" else template_reason(t, m[3])
            errors[field] = why
        else:
            general.append(t("rules.err.hub"))
            general.append(str(e))
        return None, errors, general
    return rule, errors, general


def changes_of(before: Rule, after: Rule) -> dict[str, Any]:
    """The rule's top-level keys the form changed, as the rule book takes (and audits) them."""
    old, new = before.model_dump(mode="json"), after.model_dump(mode="json")
    return {k: v for k, v in new.items() if old.get(k) != v}


def changed_fields(before: Rule, after: Rule) -> list[str]:
    """The form's fields whose value changed (for the notice after the save)."""
    old, new = values_of(before, "en"), values_of(after, "en")
    return [k for k in new if k not in ("for_unit", "cooldown_unit") and old.get(k) != new[k]]


# -- what the page shows -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ActionForm:
    index: int
    type: str
    fields: tuple[str, ...]
    spoken: bool


@dataclass(frozen=True, slots=True)
class RuleForm:
    values: Mapping[str, Any]
    errors: Mapping[str, str]
    general: Sequence[str]
    trigger: str
    op: str
    metric: str
    unit: str
    clears: str
    actions: Sequence[ActionForm]
    zones: Sequence[tuple[str, str]]
    updated: str
    #: False for a technician while the rule waits for the head's approval.
    may_switch: bool
    device: str
    contexts: str
    previews: Mapping[str, str]
    placeholders: str


SHOWN_OPS = {">": ">", ">=": "≥", "<": "<", "<=": "≤"}


def version_of(updated_at: float) -> str:
    return f"{updated_at:.6f}"


def _sample_device(hub: Hub, rule: Rule) -> tuple[str | None, str]:
    """A device the rule is about, for the preview: one that has the metric, if any."""
    c = rule.conditions
    kinds: list[str | None] = [*c.kinds] or [None]
    found = [d for k in kinds for d in hub.devices.query(k)]
    found = [
        d
        for d in found
        if (not c.devices or any(fnmatch.fnmatchcase(d.id, p) for p in c.devices))
        and (not c.zones or d.zone in c.zones)
    ]
    metric = rule.trigger.metric if isinstance(rule.trigger, MetricTrigger) else None
    best = next((d for d in found if metric in d.metrics), found[0] if found else None)
    return (best.id, best.name) if best else (None, "")


def contexts(hub: Hub, rule: Rule, t: Translator) -> tuple[str, dict[str, str]]:
    """What the preview fills the templates with, and the device it is for: a device the
    rule is about at the rule's limit, else the samples a save checks the templates with."""
    dev, name = _sample_device(hub, rule)
    trig = rule.trigger
    cause: dict[str, Any] = {}
    if isinstance(trig, MetricTrigger):
        cause = {"metric": trig.metric, "value": trig.value}
    elif isinstance(trig, StatusTrigger):
        cause = {"status": trig.status}
    if dev is None:
        return t("rules.form.preview_sample"), {**NAME_SAMPLES, **sample_context(rule)}
    now = hub.clock.now().timestamp()
    return name, {**hub.rules.context(rule, dev, cause, now), "state": "raised"}


def build_form(
    hub: Hub,
    t: Translator,
    rule: Rule,
    updated_at: float,
    *,
    may_switch: bool,
    values: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    general: Sequence[str] = (),
) -> RuleForm:
    shown = dict(values) if values is not None else values_of(rule, t.lang)
    device, written = contexts(hub, rule, t)
    spoken = spoken_context(written)
    actions = [
        ActionForm(i, a.type, ACTION_FIELDS[a.type], isinstance(a, AnnounceAction))
        for i, a in enumerate(rule.actions)
        if a.type in ACTION_FIELDS
    ]
    previews = {}
    for a in actions:
        for name in ("template", "clear_template"):
            text = str(shown.get(f"a{a.index}.{name}") or "")
            try:
                previews[f"a{a.index}.{name}"] = render_template(
                    text, spoken if a.spoken else written
                )
            except ValueError:
                previews[f"a{a.index}.{name}"] = ""
    trig = rule.trigger
    metric = trig.metric if isinstance(trig, MetricTrigger) else ""
    op = trig.op if isinstance(trig, MetricTrigger) else ">="
    names = hub.settings.gpio.zone_names
    return RuleForm(
        values=shown,
        errors=dict(errors or {}),
        general=list(general),
        trigger=trig.type,
        op=SHOWN_OPS[op],
        metric=views.metric_label(t, metric) if metric else "",
        unit=views.metric_unit(metric) if metric else "",
        clears="below" if _up(op) else "above",
        actions=actions,
        zones=[(z, names.get(z, z)) for z in hub.settings.gpio.zones],
        updated=version_of(updated_at),
        may_switch=may_switch,
        device=device,
        contexts=json.dumps({"written": written, "spoken": spoken}, ensure_ascii=False),
        previews=previews,
        placeholders=placeholder_list(tuple(rule.vars)),
    )


def saved_notice(
    t: Translator, rule: Rule, keys: Sequence[str], state: str, zone_names: Mapping[str, str]
) -> str:
    """After a save: what changed, with its new value, and whether the rule runs now."""
    v = values_of(rule, t.lang)
    parts = []
    for key in keys:
        if key not in v:
            continue  # a key the rule no longer has (or a made-up one): nothing to say
        what = _changed(t, rule, key, zone_names)
        if what and what not in parts:
            parts.append(what)
    head = t("rules.form.saved", what=t.join(parts)) if parts else t("rules.form.unchanged")
    if state == "awaiting":
        return f"{head} {t('rules.form.state_awaiting')}"
    return f"{head} {t('rules.form.state_on' if rule.enabled else 'rules.form.state_off')}"


def _measure(t: Translator, metric: str, value: float) -> str:
    unit = views.metric_unit(metric)
    return t.number(value, 3) + (f"\u00a0{unit}" if unit else "")


def _changed(t: Translator, rule: Rule, key: str, zone_names: Mapping[str, str]) -> str:
    trig = rule.trigger
    if key == "value" and isinstance(trig, MetricTrigger):
        now = f"{SHOWN_OPS[trig.op]} {_measure(t, trig.metric, trig.value)}"
        return t("rules.form.ch.value", now=now)
    if key == "clear" and isinstance(trig, MetricTrigger):
        if not trig.hysteresis:
            return t("rules.form.ch.clear_none")
        back = trig.value - trig.hysteresis if _up(trig.op) else trig.value + trig.hysteresis
        side = "below" if _up(trig.op) else "above"
        return t(f"rules.form.ch.clear_{side}", now=_measure(t, trig.metric, back))
    if key == "for_n" and isinstance(trig, MetricTrigger | StatusTrigger):
        return t("rules.form.ch.for", now=duration_text(t, trig.for_s))
    if key == "cooldown_n":
        return t("rules.form.ch.cooldown", now=duration_text(t, rule.cooldown_s))
    if key in ("name", "enabled"):
        return t(f"rules.form.ch.{key}")
    m = re.fullmatch(r"a(\d+)\.(\w+)", key)
    if not m or int(m[1]) >= len(rule.actions):
        return ""
    a = rule.actions[int(m[1])]
    if isinstance(a, AnnounceAction) and m[2] == "zones":
        return t("rules.form.ch.zones", now=zones_text(t, a.zones, zone_names))
    if isinstance(a, AnnounceAction) and m[2] == "priority":
        return t("rules.form.ch.priority", now=t(f"prio.{a.priority}"))
    return t(f"rules.form.ch.{a.type}.{m[2]}")
