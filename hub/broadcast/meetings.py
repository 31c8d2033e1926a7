"""Broadcast stage, meetings: an invitation's own time and place, and reading one in a text.

A meeting invitation is broadcast at one time (``start_at``: Tuesday 18:00) for a meeting
at another (``meeting_at``: Thursday 19:30, at ``meeting_place``). The residents' list,
the feed and the calendar show the meeting, never the broadcast. An invitation the head
left in the default category is offered as a meeting on the compose page, and made one
by the API when its time can be read (:func:`read_invitation`: "Kính mời bà con dự họp
thôn lúc 19h30 thứ Năm 10/12 tại nhà văn hóa thôn").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from hub.broadcast.models import PLACE_MAX, AnnouncementError, AnnouncementIn
from hub.clock import utc_iso

#: How long a meeting is taken to last where nothing says: the calendar's DTEND, and how
#: long after it began it stays on the residents' list. A village meeting (họp thôn) runs
#: one to two hours; the longer end keeps it listed (and busy in calendars) while it runs.
MEETING_LENGTH = timedelta(hours=2)


def local_key(local: datetime) -> str:
    """A village wall time as ``meeting_local`` stores it (``2026-12-10T19:30``): text that
    sorts as the time does, so that SQLite compares it to the present."""
    return local.replace(tzinfo=None, second=0, microsecond=0).isoformat(timespec="minutes")


def meeting_problem(category: str, meeting_at: datetime | None, place: str | None) -> str | None:
    """Why the meeting fields do not fit the category (the API's 422), or None."""
    if category == "meeting" and meeting_at is None:
        return (
            "meeting_at: a meeting needs its own date and time, like 2026-12-10T19:30 "
            "(start_at is when the invitation is broadcast)"
        )
    if category != "meeting" and (meeting_at is not None or place):
        field = "meeting_at" if meeting_at is not None else "meeting_place"
        return (
            f"{field}: only a meeting has a meeting time and place: set category to "
            f"meeting, or leave {field} out"
        )
    return None


def _local(value: datetime, tz: tzinfo) -> datetime:
    """A request time (no offset: the village's) as the village's wall time."""
    if value.tzinfo is None:
        return value.replace(second=0, microsecond=0)
    return value.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0)


def meeting_cols(
    body: AnnouncementIn, tz: tzinfo, *, now: datetime, first: datetime, kept: str | None
) -> dict[str, Any]:
    """The meeting's columns of a request, checked: a meeting has a time (still to come,
    and not before the invitation's first broadcast), and only a meeting has one.
    ``kept``: the stored time of the meeting being changed, which may be past by now."""
    problem = meeting_problem(body.category, body.meeting_at, body.meeting_place)
    if problem:
        raise AnnouncementError(problem)
    if body.meeting_at is None:
        return {"meeting_local": None, "meeting_place": None}
    local = _local(body.meeting_at, tz)
    key = local_key(local)
    if key != kept:
        at = local.replace(tzinfo=tz)
        if at <= now:
            raise AnnouncementError(f"meeting_at: {key} has passed; give the meeting's time")
        if first > at:
            broadcast = local_key(first.astimezone(tz))
            raise AnnouncementError(
                f"start_at: the invitation would first be broadcast at {broadcast}, after the "
                f"meeting begins at {key}: broadcast it before"
            )
    return {"meeting_local": key, "meeting_place": body.meeting_place}


def stored_meeting(local: str | None, place: str | None, tz: tzinfo) -> dict[str, Any]:
    """A stored meeting time and place as the fields of a request."""
    at = datetime.fromisoformat(local).replace(tzinfo=tz) if local else None
    return {"meeting_at": at, "meeting_place": place}


def guess_meeting(
    body: AnnouncementIn, now: datetime, tz: tzinfo
) -> tuple[AnnouncementIn, dict[str, Any] | None]:
    """A request whose category was left out, made a meeting when it reads as one and its
    time is known (given as ``meeting_at`` or read in the text); with what was guessed,
    for the answer and the audit. A category given, an emergency or a follow-up is left
    as it is; an invitation whose time cannot be read stays a notice, and the guess says
    what to send to make it a meeting (nothing is refused for a guess)."""
    if "category" in body.model_fields_set or body.priority == "emergency" or body.corrects:
        return body, None
    if body.meeting_at is not None:
        made = body.model_copy(update={"category": "meeting"})
        return made, _guess(True, made, tz, "meeting_at was given with no category")
    now_local = now.astimezone(tz).replace(tzinfo=None)
    invitation = read_invitation(body.title, body.text, now_local)
    if invitation is None:
        return body, None
    when = invitation.when
    start = _local(body.start_at, tz) if body.start_at else now_local
    words = f"it reads as a meeting invitation ({invitation.words!r})"
    if when is None or when <= now_local or when < start:
        hint = (
            f"{words}, but the meeting's date and time could not be read: send category "
            "meeting with meeting_at (and meeting_place) to list it under the coming meetings"
        )
        return body, _guess(False, body, tz, hint, invitation)
    update = {"category": "meeting", "meeting_at": when, "meeting_place": body.meeting_place}
    if update["meeting_place"] is None:
        update["meeting_place"] = invitation.place
    made = body.model_copy(update=update)
    said = f"{words}, for {local_key(when)}" + (
        f" at {invitation.place!r}" if invitation.place and not body.meeting_place else ""
    )
    return made, _guess(True, made, tz, said + ": made a meeting")


def _guess(
    applied: bool,
    body: AnnouncementIn,
    tz: tzinfo,
    detail: str,
    invitation: Invitation | None = None,
) -> dict[str, Any]:
    if applied:
        at = body.meeting_at
        place = body.meeting_place
    else:
        at = invitation.when if invitation else None
        place = invitation.place if invitation else None
    when = None if at is None else utc_iso(_local(at, tz).replace(tzinfo=tz).astimezone(UTC))
    return {
        "category": "meeting",
        "applied": applied,
        "meeting_at": when,
        "meeting_place": place,
        "detail": detail,
    }


# -- reading an invitation ----------------------------------------------------------------
# What makes a text an invitation to a meeting, as village heads write them.
_INVITES = re.compile(
    r"kính mời|trân trọng kính mời|hội nghị|triệu tập|cuộc họp|dự họp|đến họp|"
    r"họp (?:thôn|dân|xóm|tổ|chi bộ|chi hội|đoàn|hội|bàn|toàn thể|các hộ|đại diện)|"
    r"\bmời\b.{0,80}?\bhọp\b",
    re.IGNORECASE | re.DOTALL,
)
# 19h30, 19h, 19 giờ 30 (phút), 19:30, 7 giờ tối. "19 hộ" is not a time: an "h" is one
# only before a digit or the end of a word.
_TIME = re.compile(
    r"(?<![\d/])(?P<h>[01]?\d|2[0-3])\s*(?:h(?=\d|\b)|giờ|:(?=\d))(?:\s*(?P<m>[0-5]\d))?"
    r"(?:\s*phút)?(?:\s+(?P<part>sáng|trưa|chiều|tối|đêm))?",
    re.IGNORECASE,
)
# 10/12, 10/12/2026, 10-12-2026; "ngày 10 tháng 12 (năm 2026)".
_DATE = re.compile(
    r"(?<![\d:/])(?P<d>[0-3]?\d)\s*[/-]\s*(?P<mo>[01]?\d)(?:\s*[/-]\s*(?P<y>\d{4}))?(?![\d:])"
    r"|ngày\s+(?P<d2>[0-3]?\d)\s+tháng\s+(?P<mo2>[01]?\d)(?:\s+năm\s+(?P<y2>\d{4}))?",
    re.IGNORECASE,
)
_WEEKDAY = re.compile(
    r"thứ\s+(?P<wd>hai|ba|tư|năm|sáu|bảy|[2-7])\b|(?P<sun>chủ nhật)", re.IGNORECASE
)
_WEEKDAYS = {"hai": 0, "ba": 1, "tư": 2, "năm": 3, "sáu": 4, "bảy": 5}
_RELATIVE = re.compile(
    r"(?P<today>(?:hôm|tối|sáng|chiều|trưa) nay)|(?P<tomorrow>(?:ngày|tối|sáng|chiều|trưa) mai)"
    r"|(?P<after>ngày kia)",
    re.IGNORECASE,
)
_EVENING = re.compile(r"\b(?:tối|chiều) (?:nay|mai)\b", re.IGNORECASE)
# "tại nhà văn hóa thôn", "ở sân đình", "địa điểm: hội trường xã", up to a stop or the time.
_PLACE = re.compile(
    r"(?:\btại\b|\bở\b|địa điểm\s*:?)\s+(?P<place>[^.,;!?\n]{3,120})", re.IGNORECASE
)
# Where the place's name ends: the time, the day, or what the meeting is for.
_PLACE_END = re.compile(
    r"\s+(?:lúc|vào|từ|hồi|ngày|thứ|chủ nhật|để|nhằm|về|với|cùng|bàn)\s|\s+\d|\s+-\s",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Invitation:
    """A text read as a meeting invitation: the words that say so, and what it gives of
    the meeting's day, time and place (each None where the text does not say)."""

    words: str
    day: date | None
    at: time | None
    place: str | None

    @property
    def when(self) -> datetime | None:
        """The meeting's village wall time, when the text gives both day and time."""
        return None if self.day is None or self.at is None else datetime.combine(self.day, self.at)


def read_invitation(title: str, text: str | None, now_local: datetime) -> Invitation | None:
    """``title`` and ``text`` as an invitation to a meeting, or None if they do not read as
    one. Dates without a year are the next such date from ``now_local`` (the village's
    wall time); a weekday alone is the next such day; "tối nay", "sáng mai" are today and
    tomorrow."""
    words = unicodedata.normalize("NFC", f"{title}\n{text or ''}")
    found = _INVITES.search(words)
    if found is None:
        return None
    today = now_local.date()
    at = _time_in(words)
    day = _day_in(words, today)
    if day is None:
        day = _weekday_in(words, today, at, now_local)
    return Invitation(found.group(0).strip(), day, at, _place_in(words))


def _time_in(words: str) -> time | None:
    # "tối nay 7 giờ": the evening said once, before the hour.
    evening = "tối" if _EVENING.search(words) else ""
    for m in _TIME.finditer(words):
        hour, minute = int(m["h"]), int(m["m"] or 0)
        part = (m["part"] or "").lower() or evening
        # "7 giờ tối" is 19:00, "1 giờ trưa" 13:00 ("11 giờ trưa" stays 11:00).
        later = (part in ("chiều", "tối", "đêm") and hour < 12) or (part == "trưa" and hour < 11)
        if later:
            hour += 12
        if hour < 24:
            return time(hour % 24, minute)
    return None


def _day_in(words: str, today: date) -> date | None:
    for m in _DATE.finditer(words):
        d, mo, y = (m["d"], m["mo"], m["y"]) if m["d"] else (m["d2"], m["mo2"], m["y2"])
        try:
            day = date(int(y) if y else today.year, int(mo), int(d))
        except ValueError:
            continue  # 31/02, 19-30: not a date
        if y is None and day < today:
            try:
                day = day.replace(year=today.year + 1)
            except ValueError:
                continue
        return day
    rel = _RELATIVE.search(words)
    if rel is not None:
        return today + timedelta(days=0 if rel["today"] else 1 if rel["tomorrow"] else 2)
    return None


def _weekday_in(words: str, today: date, at: time | None, now_local: datetime) -> date | None:
    m = _WEEKDAY.search(words)
    if m is None:
        return None
    if m["sun"]:
        wd = 6
    else:
        name = m["wd"].lower()
        wd = int(name) - 2 if name.isdigit() else _WEEKDAYS[name]
    ahead = (wd - today.weekday()) % 7
    day = today + timedelta(days=ahead)
    if ahead == 0 and at is not None and datetime.combine(day, at) <= now_local:
        day += timedelta(days=7)  # "thứ Ba 18h" said on Tuesday evening: next week's
    return day


def _place_in(words: str) -> str | None:
    m = _PLACE.search(words)
    if m is None:
        return None
    place = _PLACE_END.split(m["place"], maxsplit=1)[0].strip()
    if len(place) < 3:
        return None
    return (place[:1].upper() + place[1:])[:PLACE_MAX]
