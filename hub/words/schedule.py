"""When an announcement plays, in words: the one RRULE describer (pages, feed, calendar, API).

One reading of the rule (:func:`_phrase`) and two voices, whose sentences are data in
``schedule.json``: the staff's (compose, schedule, rules) and the residents' (the public
pages), which takes the staff's sentences and words a few its own way. A voice without a
sentence for a rule (the staff's has none for "the first Monday of the month") says the
rule as written, as it does for anything it cannot read.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Literal

from hub.broadcast.recurrence import canonical_rrule
from hub.words import HERE, Translator, date_text
from hub.words.times import WEEKDAYS, WORKDAYS, cap, local_text

Voice = Literal["staff", "public"]

#: What the describer reads; any other part (BYSETPOS, BYYEARDAY…) is said as written.
_KNOWN = frozenset(
    {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYMONTH"}
    | {"BYHOUR", "BYMINUTE", "BYSECOND", "WKST"}
)
_NTH = re.compile(r"^([+-]?[1-5])?(MO|TU|WE|TH|FR|SA|SU)$")
_UNTIL = re.compile(r"(\d{4})(\d{2})(\d{2})(T\d{6}Z?)?")


@functools.cache
def _sentences(voice: Voice, lang: str) -> Mapping[str, str]:
    """A voice's sentences: the staff's, with the residents' own in place of theirs."""
    voices: dict[str, dict[str, dict[str, str]]] = json.loads(
        (HERE / "schedule.json").read_text(encoding="utf-8")
    )
    if voice == "staff":
        return voices["staff"][lang]
    return {**voices["staff"][lang], **voices[voice][lang]}


class _Say:
    """The sentences of one voice in one language; None for a sentence it does not have."""

    def __init__(self, voice: Voice, t: Translator) -> None:
        self.t, self.texts = t, _sentences(voice, t.lang)

    def __call__(self, name: str, **values: object) -> str | None:
        text = self.texts.get(name)
        return None if text is None else text.format(**values)

    def days(self, codes: list[str]) -> str:
        return self.t.join([self.t(f"wd.{d}") for d in codes])


def rrule_parts(rrule: str) -> dict[str, str] | None:
    """``FREQ=WEEKLY;BYDAY=MO`` -> {"FREQ": "WEEKLY", "BYDAY": "MO"}; None if malformed."""
    parts: dict[str, str] = {}
    for item in canonical_rrule(rrule).split(";"):
        key, sep, value = item.partition("=")
        if not sep or not key or not value or key in parts:
            return None
        parts[key] = value
    return parts


def int_or_none(value: str | None, default: int) -> int | None:
    if value is None:
        return default
    return int(value) if re.fullmatch(r"-?\d{1,4}", value) else None


def until_date(value: str) -> date | None:
    """The date of an RRULE's UNTIL (a date, a local or a UTC date-time)."""
    m = _UNTIL.fullmatch(value)
    if not m:
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


def ordinal(n: int, lang: str) -> str:
    if lang == "vi":
        return str(n)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def describe_schedule(
    rrule: str | None, start_local: datetime, lang: str, *, voice: Voice = "staff"
) -> str:
    """When an announcement plays, in Vietnamese or English: once at ``start_local`` (village
    wall time), or its recurrence at that time of day: "Thứ Hai hằng tuần, lúc 19:30",
    "On the 1st of every month at 08:00, 6 times". What the voice cannot say is given as
    the rule written."""
    t = Translator(lang)
    say = _Say(voice, t)
    if not rrule:
        when = local_text(t, start_local)
        hm, day = f"{start_local:%H:%M}", date_text(start_local.date(), t.lang)
        return say("once", when=when, time=hm, date=day) or when
    parts = rrule_parts(rrule)
    words = _phrase(say, parts, start_local) if parts else None
    if words is None:
        rule = canonical_rrule(rrule)
        return say("raw", rule=rule) or rule
    return cap(words)


def _phrase(say: _Say, p: Mapping[str, str], start: datetime) -> str | None:
    if not set(p) <= _KNOWN or ("COUNT" in p and "UNTIL" in p):
        return None  # RFC 5545: COUNT or UNTIL, not both
    phrase = _repeat(say, p, start)
    if phrase is not None and "COUNT" in p:
        n = int_or_none(p["COUNT"], 0)
        phrase = say("count", rule=phrase, n=n) if n and n > 0 else None
    if phrase is not None and "UNTIL" in p:
        until = until_date(p["UNTIL"])
        phrase = say("until", rule=phrase, date=date_text(until, say.t.lang)) if until else None
    return phrase


def _repeat(say: _Say, p: Mapping[str, str], start: datetime) -> str | None:
    """The rule without its end, or None when it is more than one time a day, an unknown
    day, or a shape no sentence says."""
    if any(k in p and not p[k].isdigit() for k in ("BYHOUR", "BYMINUTE", "BYSECOND")):
        return None
    hour, minute = int(p.get("BYHOUR", start.hour)), int(p.get("BYMINUTE", start.minute))
    n = int_or_none(p.get("INTERVAL"), 1)
    if hour > 23 or minute > 59 or n is None or n < 1:
        return None
    time = f"{hour:02d}:{minute:02d}"
    days = p["BYDAY"].split(",") if "BYDAY" in p else []
    freq = p.get("FREQ")
    by_month = "BYMONTHDAY" in p or "BYMONTH" in p
    if freq == "HOURLY" and not days and not by_month:
        return say("hourly", time=time) if n == 1 else say("hours", n=n, time=time)
    if freq in ("DAILY", "WEEKLY") and not by_month:
        if any(d not in WEEKDAYS for d in days):
            return None  # "1MO" (the first Monday) and friends
        if freq == "DAILY" and not days:
            return say("daily", time=time) if n == 1 else say("days", n=n, time=time)
        chosen = [d for d in WEEKDAYS if d in (days or [WEEKDAYS[start.weekday()]])]
        if n == 1 and tuple(chosen) == WORKDAYS:
            return say("weekdays", time=time)
        if n == 1 and len(chosen) == 7:
            return say("daily", time=time)
        if freq == "DAILY" and n != 1:
            return None
        if n == 1:
            return say("weekly", days=say.days(chosen), time=time)
        return say("weeks", days=say.days(chosen), n=n, time=time)
    if freq == "MONTHLY" and "BYMONTH" not in p and n == 1:
        return _monthly(say, p, days, start, time)
    if freq == "YEARLY" and not days and n == 1:
        month, monthday = p.get("BYMONTH", str(start.month)), p.get("BYMONTHDAY", str(start.day))
        if not (month.isdigit() and monthday.isdigit()):
            return None
        try:
            when = date(2000, int(month), int(monthday))  # a leap year: 29/02 is a date
        except ValueError:
            return None
        return say("yearly", date=date_text(when, say.t.lang, year=False), time=time)
    return None


def _monthly(
    say: _Say, p: Mapping[str, str], days: list[str], start: datetime, time: str
) -> str | None:
    if days:
        m = _NTH.match(days[0]) if len(days) == 1 and "BYMONTHDAY" not in p else None
        if m is None or m.group(1) is None or int(m.group(1)) not in (1, 2, 3, 4, 5, -1):
            return None
        nth = say(f"nth.{int(m.group(1))}")
        day = say.t(f"wd.{m.group(2)}")
        return say("monthly_nth", day=day, nth=nth, time=time) if nth else None
    monthday = int_or_none(p.get("BYMONTHDAY"), start.day)
    if monthday == -1:
        return say("monthly_last", time=time)
    if monthday is None or not 1 <= monthday <= 31:
        return None
    return say("monthly", day=monthday, ordinal=ordinal(monthday, say.t.lang), time=time)
