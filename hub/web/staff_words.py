"""Schedules and rules in words, and the recurrence picker: the staff pages' pure part.

Everything here turns the hub's data into what a village head reads, in Vietnamese or
English, and back: an RFC 5545 RRULE in words (:func:`describe_rrule`), the picker's
fields into an RRULE and an RRULE into the picker's fields (the same mapping as
``rruleOf`` in ``static/staff.js``), an event rule's trigger, conditions, actions and
firings in words, a rule as TOML for its edit box. No HTTP, no database.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from hub.automation.rules import (
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
from hub.broadcast.recurrence import canonical_rrule
from hub.web import views
from hub.web.i18n import Translator

#: RFC 5545 weekday codes, Monday first (the order of ``date.weekday()``).
WEEKDAYS: tuple[str, ...] = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
WORKDAYS: tuple[str, ...] = WEEKDAYS[:5]
#: Longest value kept per field; the rest are short (names, dates, choices).
FIELD_LIMITS = {"text": 6000, "title": 1000, "definition": 20_000, "rrule_custom": 1000}
FIELD_LIMIT = 256


# -- a posted form ----------------------------------------------------------------------
class Fields:
    """A posted form: every value of every field (checkbox groups send several)."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._values: dict[str, list[str]] = {}
        for key, value in items:
            self._values.setdefault(key, []).append(value[: FIELD_LIMITS.get(key, FIELD_LIMIT)])

    def one(self, name: str, default: str = "") -> str:
        values = self._values.get(name)
        return values[0] if values else default

    def all(self, name: str) -> list[str]:
        return list(self._values.get(name, []))

    def kept(self) -> dict[str, Any]:
        """What the person typed, to put back in the form after a refusal."""
        return {k: (v if k in ("zones", "byday") else v[0]) for k, v in self._values.items()}


# -- dates and times in words -----------------------------------------------------------
_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def date_text(d: date, lang: str, *, year: bool = True) -> str:
    """01/12/2026 or 1 Dec 2026 (without the year when it goes without saying)."""
    if lang == "vi":
        return f"{d:%d/%m/%Y}" if year else f"{d:%d/%m}"
    return f"{d.day} {_MONTHS_EN[d.month - 1]}" + (f" {d.year}" if year else "")


def weekday_name(t: Translator, d: date) -> str:
    return t(f"wd.{WEEKDAYS[d.weekday()]}")


def when_text(t: Translator, ts: float, tz: tzinfo, now: float) -> str:
    """A time as the head reads it: "Hôm nay, 19:30", "Ngày mai, 06:00", "Thứ Năm 03/12, 19:30"."""
    d = datetime.fromtimestamp(ts, UTC).astimezone(tz)
    today = datetime.fromtimestamp(now, UTC).astimezone(tz).date()
    hm = f"{d:%H:%M}"
    if d.date() == today:
        return t("when.today", time=hm)
    if d.date() == today + timedelta(days=1):
        return t("when.tomorrow", time=hm)
    return t(
        "when.day",
        weekday=cap(weekday_name(t, d.date())),
        date=date_text(d.date(), t.lang, year=d.year != today.year),
        time=hm,
    )


def local_text(t: Translator, local: datetime) -> str:
    """A local wall-clock time in full: "19:30 thứ Ba 01/12/2026" / "Tuesday 1 Dec 2026, 19:30"."""
    return t(
        "when.full",
        weekday=weekday_name(t, local.date()),
        date=date_text(local.date(), t.lang),
        time=f"{local:%H:%M}",
    )


def duration_text(t: Translator, seconds: float) -> str:
    """30 giây, 5 phút, 2 giờ, 1 ngày (and 1 phút 30 giây when it is not round)."""
    s = round(seconds)
    if s >= 86_400 and s % 86_400 == 0:
        return t("dur.d", n=s // 86_400)
    if s >= 3600 and s % 3600 == 0:
        return t("dur.h", n=s // 3600)
    if s >= 60:
        m, rest = divmod(s, 60)
        minutes = t("dur.min", n=m)
        return minutes if not rest else f"{minutes} {t('dur.s', n=rest)}"
    return t("dur.s", n=s)


def clock_text(seconds: float | None) -> str:
    """A recording's length: 0:42, 12:05."""
    if seconds is None:
        return ""
    s = round(seconds)
    return f"{s // 60}:{s % 60:02d}"


def ts_of(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


# -- RRULEs in words ----------------------------------------------------------------------
def rrule_parts(rrule: str) -> dict[str, str] | None:
    """``FREQ=WEEKLY;BYDAY=MO`` -> {"FREQ": "WEEKLY", "BYDAY": "MO"}; None if malformed."""
    parts: dict[str, str] = {}
    for item in canonical_rrule(rrule).split(";"):
        key, sep, value = item.partition("=")
        if not sep or not value or key in parts:
            return None
        parts[key] = value
    return parts


def _join(t: Translator, items: Sequence[str]) -> str:
    if len(items) < 2:
        return "".join(items)
    return f"{', '.join(items[:-1])} {t('rr.and')} {items[-1]}"


def _ordinal(n: int, lang: str) -> str:
    if lang == "vi":
        return str(n)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _until_date(value: str) -> date | None:
    m = re.fullmatch(r"(\d{4})(\d{2})(\d{2})(T\d{6}Z?)?", value)
    if not m:
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


def int_or_none(value: str | None, default: int) -> int | None:
    if value is None:
        return default
    return int(value) if re.fullmatch(r"-?\d{1,4}", value) else None


def _describe(p: Mapping[str, str], start: datetime, t: Translator) -> str | None:
    if set(p) - {"FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "COUNT", "UNTIL"}:
        return None
    if "COUNT" in p and "UNTIL" in p:
        return None  # RFC 5545: one or the other
    freq, hm = p.get("FREQ"), f"{start:%H:%M}"
    interval = int_or_none(p.get("INTERVAL"), 1)
    if interval is None or interval < 1:
        return None
    if freq == "DAILY" and not {"BYDAY", "BYMONTHDAY"} & set(p):
        head = t("rr.daily", time=hm) if interval == 1 else t("rr.daily_n", n=interval, time=hm)
    elif freq == "WEEKLY" and "BYMONTHDAY" not in p:
        days = p["BYDAY"].split(",") if "BYDAY" in p else [WEEKDAYS[start.weekday()]]
        if any(d not in WEEKDAYS for d in days):
            return None  # "1MO" (the first Monday) and friends: said as written
        ordered = [d for d in WEEKDAYS if d in days]
        names = _join(t, [t(f"wd.{d}") for d in ordered])
        if interval > 1:
            head = t("rr.weekly_n", n=interval, days=names, time=hm)
        elif tuple(ordered) == WORKDAYS:
            head = t("rr.weekdays", time=hm)
        elif len(ordered) == 7:
            head = t("rr.daily", time=hm)
        else:
            head = t("rr.weekly", days=names, time=hm)
    elif freq == "MONTHLY" and "BYDAY" not in p and interval == 1:
        day = int_or_none(p.get("BYMONTHDAY"), start.day)
        if day == -1:
            head = t("rr.monthly_last", time=hm)
        elif day is not None and 1 <= day <= 31:
            head = t("rr.monthly", day=_ordinal(day, t.lang), time=hm)
        else:
            return None
    else:
        return None
    if "COUNT" in p:
        n = int_or_none(p["COUNT"], 0)
        if not n or n < 1:
            return None
        head += t("rr.count", n=n)
    if "UNTIL" in p:
        until = _until_date(p["UNTIL"])
        if until is None:
            return None
        head += t("rr.until", date=date_text(until, t.lang))
    return cap(head)


def describe_rrule(rrule: str, start_local: datetime, lang: str) -> str:
    """An RRULE in words, in Vietnamese or English, at the time of day of ``start_local``:
    "Thứ Hai hằng tuần lúc 19:30", "On the 1st of every month at 08:00, 6 times". What it
    cannot say (hourly, "the first Monday", intervals of months) is given as written."""
    t = Translator(lang)
    parts = rrule_parts(rrule)
    words = _describe(parts, start_local, t) if parts else None
    return words or t("rr.raw", rrule=canonical_rrule(rrule))


def describe_schedule(rrule: str | None, start_local: datetime, t: Translator) -> str:
    """When an announcement plays, in words: once at a time, or its recurrence."""
    if not rrule:
        return t("rr.once", when=local_text(t, start_local))
    return describe_rrule(rrule, start_local, t.lang)


# -- the recurrence picker ----------------------------------------------------------------
class FormProblem(ValueError):
    """Something in the form to fix: the field, and the catalogue key saying what."""

    def __init__(self, field: str, key: str, **values: Any) -> None:
        super().__init__(key)
        self.field, self.key, self.values = field, key, values


def picker_rrule(f: Fields) -> str:
    """The picker's fields -> an RRULE (the same mapping as ``rruleOf`` in staff.js).

    daily -> FREQ=DAILY · weekdays -> FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR · weekly + days ->
    FREQ=WEEKLY;BYDAY=MO,WE · monthly + day N (-1: the last) -> FREQ=MONTHLY;BYMONTHDAY=N ·
    custom -> the RRULE as typed; then ;COUNT=n or ;UNTIL=<date>T235959 (the end of that
    day, village time: the start is a local wall time, so UNTIL is one too).
    """
    freq = f.one("freq", "daily")
    if freq == "custom":
        rule = canonical_rrule(f.one("rrule_custom"))
        if not rule:
            raise FormProblem("rrule_custom", "compose.err.rrule_empty")
        return rule
    if freq == "daily":
        rule = "FREQ=DAILY"
    elif freq == "weekdays":
        rule = "FREQ=WEEKLY;BYDAY=" + ",".join(WORKDAYS)
    elif freq == "weekly":
        days = [d for d in WEEKDAYS if d in f.all("byday")]
        if not days:
            raise FormProblem("byday", "compose.err.byday")
        rule = "FREQ=WEEKLY;BYDAY=" + ",".join(days)
    elif freq == "monthly":
        day = int_or_none(f.one("monthday", "1"), 1)
        if day is None or not (day == -1 or 1 <= day <= 31):
            raise FormProblem("monthday", "compose.err.monthday")
        rule = f"FREQ=MONTHLY;BYMONTHDAY={day}"
    else:
        raise FormProblem("freq", "compose.err.freq")
    ends = f.one("ends", "never")
    if ends == "count":
        n = int_or_none(f.one("count"), 0)
        if not n or not 1 <= n <= 999:
            raise FormProblem("count", "compose.err.count")
        rule += f";COUNT={n}"
    elif ends == "until":
        until = parse_date(f.one("until"))
        if until is None:
            raise FormProblem("until", "compose.err.until")
        rule += f";UNTIL={until:%Y%m%d}T235959"
    return rule


def picker_fields(rrule: str | None) -> dict[str, Any]:
    """An RRULE -> the picker's fields (for editing); what the picker cannot show is kept
    as a custom RRULE. ``picker_rrule`` of the result gives the RRULE back."""
    out: dict[str, Any] = {"freq": "daily", "byday": [], "monthday": "1", "ends": "never"}
    if not rrule:
        return out
    p = rrule_parts(rrule) or {}
    custom = {**out, "freq": "custom", "rrule_custom": canonical_rrule(rrule)}
    rest = {k: v for k, v in p.items() if k not in ("COUNT", "UNTIL")}
    if rest == {"FREQ": "DAILY"}:
        out["freq"] = "daily"
    elif rest.keys() == {"FREQ", "BYDAY"} and rest["FREQ"] == "WEEKLY":
        days = rest["BYDAY"].split(",")
        if any(d not in WEEKDAYS for d in days):
            return custom
        ordered = [d for d in WEEKDAYS if d in days]
        if ordered != days:
            return custom
        out.update(freq="weekdays" if tuple(days) == WORKDAYS else "weekly", byday=days)
    elif rest.keys() == {"FREQ", "BYMONTHDAY"} and rest["FREQ"] == "MONTHLY":
        day = int_or_none(rest["BYMONTHDAY"], 0)
        if day is None or not (day == -1 or 1 <= day <= 31):
            return custom
        out.update(freq="monthly", monthday=str(day))
    else:
        return custom
    if "COUNT" in p and "UNTIL" not in p:
        out.update(ends="count", count=p["COUNT"])
    elif "UNTIL" in p and "COUNT" not in p:
        until = _until_date(p["UNTIL"])
        if until is None or not re.fullmatch(r"\d{8}T235959", p["UNTIL"]):
            return custom
        out.update(ends="until", until=until.isoformat())
    elif "COUNT" in p:
        return custom
    return out


def parse_date(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None


def parse_time(value: str) -> time | None:
    m = re.fullmatch(r"(\d{1,2}):(\d{2})(?::\d{2})?", value.strip())
    if not m or int(m[1]) > 23 or int(m[2]) > 59:
        return None
    return time(int(m[1]), int(m[2]))


def zones_text(t: Translator, zones: Sequence[str], names: Mapping[str, str]) -> str:
    """The zones as people call them (``gpio.zone_names``), or "every zone"."""
    if "all" in zones or not zones:
        return t("zones.all")
    return ", ".join(names.get(z, z) for z in zones)


def detail_text(t: Translator, detail: str | None) -> str:
    """The playout's note on a broadcast (English, for logs) in the page's language."""
    if not detail:
        return ""
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
    return t("rules.trig.schedule", when=describe_schedule(trig.rrule, trig.start, t))


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
        return t("rules.act.notify", to=_join(t, groups))
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


# -- rules as text ------------------------------------------------------------------------
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, datetime):
        return v.replace(tzinfo=None).isoformat()
    if isinstance(v, str):
        # A JSON string is a TOML basic string (same escapes), accents kept as they are.
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        if not v:
            return "{}"
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"no TOML for {type(v).__name__}")


def _toml_key(k: str) -> str:
    return k if _BARE_KEY.match(k) else json.dumps(k, ensure_ascii=False)


def rule_toml(rule: Rule) -> str:
    """A rule in the style of config/rules.toml: what the edit box shows."""
    d = rule.model_dump(exclude_none=True)
    d["conditions"] = {k: v for k, v in d["conditions"].items() if v not in ([], None)}
    lines = []
    for key in ("id", "name", "enabled", "cooldown_s"):
        lines.append(f"{key} = {_toml_value(d[key])}")
    if d.get("vars"):
        lines.append(f"vars = {_toml_value(d['vars'])}")
    lines.append(f"trigger = {_toml_value(d['trigger'])}")
    if d["conditions"]:
        lines.append(f"conditions = {_toml_value(d['conditions'])}")
    lines.append("actions = [")
    lines += [f"  {_toml_value(a)}," for a in d["actions"]]
    lines.append("]")
    return "\n".join(lines) + "\n"


class RuleTextError(ValueError):
    pass


def parse_rule_text(text: str) -> dict[str, Any]:
    """A rule typed as JSON (an object) or TOML (its keys, or one [[rules]] table)."""
    body = text.strip()
    if not body:
        raise RuleTextError("the rule is empty: paste it as TOML or JSON")
    if body.startswith("{"):
        try:
            data = json.loads(body)
        except json.JSONDecodeError as e:
            raise RuleTextError(f"JSON: {e}") from None
        if not isinstance(data, dict):
            raise RuleTextError("JSON: give one object")
        return data
    try:
        data = tomllib.loads(body)
    except tomllib.TOMLDecodeError as e:
        raise RuleTextError(f"TOML: {e}") from None
    if "rules" in data:
        rules = data["rules"]
        if not isinstance(rules, list) or len(rules) != 1 or len(data) != 1:
            raise RuleTextError("TOML: give one rule (a single [[rules]] table, or its keys)")
        one: dict[str, Any] = rules[0]
        return one
    return data
