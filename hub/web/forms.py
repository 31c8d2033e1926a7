"""The staff's posted forms: their fields, what to fix in them, and the recurrence picker.

The picker (every day, weekdays, some days of the week, a day of the month; an end after
N times or on a date) maps to an RFC 5545 RRULE here (:func:`picker_rrule`) and, for the
live preview, in ``static/staff.js`` (``rruleOf``): the same mapping, tested against each
other. No HTTP beyond reading the form, no database.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, time
from typing import Any

from fastapi import Request

from hub.broadcast.recurrence import canonical_rrule
from hub.words.schedule import int_or_none, rrule_parts, until_date
from hub.words.times import WEEKDAYS, WORKDAYS

#: Longest value kept per field; the rest are short (names, dates, choices).
FIELD_LIMITS = {"text": 6000, "title": 1000, "definition": 20_000, "rrule_custom": 1000}
FIELD_LIMIT = 256


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


async def read_fields(request: Request) -> Fields:
    """The form's text fields. Forms are posted as multipart (a long Vietnamese text stays
    about its own size; url-encoded, each accented letter takes 6-9 bytes); no files."""
    form = await request.form(max_files=0, max_fields=128)
    try:
        return Fields((k, v) for k, v in form.multi_items() if isinstance(v, str))
    finally:
        await form.close()


class FormProblem(ValueError):
    """Something in the form to fix: the field, and the catalogue key saying what."""

    def __init__(self, field: str, key: str, **values: Any) -> None:
        super().__init__(key)
        self.field, self.key, self.values = field, key, values


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
        until = until_date(p["UNTIL"])
        if until is None or not re.fullmatch(r"\d{8}T235959", p["UNTIL"]):
            return custom
        out.update(ends="until", until=until.isoformat())
    elif "COUNT" in p:
        return custom
    return out
