"""What the pages say of a meeting, and the compose page's meeting fields.

A meeting's time and place in words ("Họp lúc 19:30 thứ Năm 10/12 tại Nhà văn hóa thôn")
for the residents' pages, the feed and the calendar; the compose form's meeting date,
time and place as the request's ``meeting_at`` and ``meeting_place``; and the hint the
compose page offers when an announcement in the default category reads as an invitation
(:func:`hub.broadcast.meetings.read_invitation`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from hub.broadcast.meetings import MEETING_LENGTH, local_key, read_invitation
from hub.web.forms import Fields, FormProblem, parse_date, parse_time
from hub.words import Translator, date_text
from hub.words.times import weekday_name

#: The form's fields a request's meeting fields are typed in (where a refusal points).
FIELD_OF = {"meeting_at": "meeting_date", "meeting_place": "meeting_place"}


def meeting_text(t: Translator, local: datetime, place: str | None, today: date) -> str:
    """ "Họp lúc 19:30 thứ Năm 10/12 tại Nhà văn hóa thôn" (the year when it is not this
    one's)."""
    values = {
        "time": f"{local:%H:%M}",
        "weekday": weekday_name(t, local.date()),
        "date": date_text(local.date(), t.lang, year=local.year != today.year),
    }
    if place:
        return t("pub.meeting.at_place", place=place, **values)
    return t("pub.meeting.at", **values)


def listed_after(now_local: datetime) -> str:
    """The ``meeting_local`` a meeting must be after to be listed: it stays until over."""
    return local_key(now_local - MEETING_LENGTH)


def meeting_body(f: Fields, category: str, now_local: datetime) -> dict[str, Any]:
    """The form's meeting date, time and place as the request's fields (a meeting's only:
    a hidden panel's leftovers do not make a notice refused)."""
    if category != "meeting":
        return {"meeting_at": None, "meeting_place": None}
    day, hm = parse_date(f.one("meeting_date")), parse_time(f.one("meeting_time"))
    if day is None:
        raise FormProblem("meeting_date", "compose.err.meeting_date")
    if hm is None:
        raise FormProblem("meeting_time", "compose.err.meeting_time")
    at = datetime.combine(day, hm)
    if at <= now_local:
        raise FormProblem("meeting_time", "compose.err.meeting_past", when=at)
    return {"meeting_at": at, "meeting_place": f.one("meeting_place").strip() or None}


def meeting_form(a: Mapping[str, Any], local: datetime | None) -> dict[str, str]:
    """An announcement's meeting (``local``: its village wall time) in the form's fields."""
    if local is None:
        return {}
    return {
        "meeting_date": local.date().isoformat(),
        "meeting_time": f"{local:%H:%M}",
        "meeting_place": a.get("meeting_place") or "",
    }


def invitation_hint(
    t: Translator, title: str, text: str, category: str, now_local: datetime
) -> dict[str, Any]:
    """What the compose page offers for the title and text typed: ``show`` when an
    announcement in the default category reads as an invitation, with the words to say
    and the meeting date, time and place read in it (empty where the text does not say)."""
    none = {"show": False, "text": "", "date": "", "time": "", "place": ""}
    if category != "notice":
        return none
    found = read_invitation(title, text, now_local)
    if found is None:
        return none
    when = found.when
    if when is not None and when > now_local:
        said = meeting_text(t, when, found.place, now_local.date())
    else:
        said = t("compose.hint.no_time")
    return {
        "show": True,
        "text": t("compose.hint.text", said=said),
        "date": found.day.isoformat() if found.day and found.day >= now_local.date() else "",
        "time": f"{found.at:%H:%M}" if found.at else "",
        "place": found.place or "",
    }


def taken(form: dict[str, Any], hint: Mapping[str, Any]) -> dict[str, Any]:
    """The form with the hint taken (no script: its button posts the form): a meeting,
    the date, time and place read filled in where the head left them empty."""
    out = dict(form, category="meeting")
    for field, key in (("meeting_date", "date"), ("meeting_time", "time")):
        if not out.get(field) and hint.get(key):
            out[field] = hint[key]
    if not out.get("meeting_place") and hint.get("place"):
        out["meeting_place"] = hint["place"]
    return out
