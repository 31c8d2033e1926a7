"""The announcements for machines: ``/feed.atom`` (RFC 4287), ``/calendar.ics`` (RFC 5545).

Both are public, read from :mod:`hub.store.read_models` in a worker thread, and carry a
strong ETag: feed readers and calendars poll, and mostly nothing changed. ElementTree
and icalendar are imported at the first feed or calendar asked for, not at start-up.
A meeting invitation is the meeting there (:mod:`hub.store.meetings`): the feed's entry
says when and where it is, and the calendar's event is the meeting, not the broadcast.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from dateutil.rrule import YEARLY, rrule, weekday
from fastapi import APIRouter, Request
from fastapi.responses import Response

from hub import __version__
from hub.broadcast.meetings import MEETING_LENGTH
from hub.broadcast.recurrence import parse_rrule
from hub.broadcast.rendering import AUDIO_TYPES
from hub.clock import local_time
from hub.store import meetings as meeting_rows
from hub.store import read_models
from hub.store.meetings import Meeting
from hub.store.read_models import Shown
from hub.web.render import base_url, hub_of, iso_text, translator
from hub.words import Translator
from hub.words.schedule import describe_schedule
from hub.words.times import WEEKDAYS

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

    from icalendar import Calendar, Timezone

router = APIRouter(include_in_schema=False)

FEED_ENTRIES = 50
#: The calendar: what is still to come, and what was at most this long ago.
CALENDAR_PAST_DAYS = 365
CALENDAR_EVENTS = 1000
#: An announcement lasts at least this long in a calendar (a 40-second one is invisible).
MIN_EVENT_S = 300
#: The tag: URIs of the feed (RFC 4151): stable whatever address the hub is reached by.
TAG_DATE = "2026"
ATOM = "http://www.w3.org/2005/Atom"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# Characters XML 1.0 cannot carry at all (§2.2), escaping or not; calendars choke on them too.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def audio_type(a: Shown) -> str:
    return AUDIO_TYPES.get(a.audio.suffix if a.audio else ".ogg", "application/octet-stream")


# -- the feed (RFC 4287) ------------------------------------------------------------------
def _rfc3339(ts: float) -> str:
    """Atom's dates (RFC 3339) in whole seconds."""
    return iso_text(int(ts))


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    import xml.etree.ElementTree as ET

    e = ET.SubElement(parent, tag, attrs)
    if text is not None:
        e.text = _NOT_XML.sub("", text)
    return e


def _meeting_words(t: Translator, m: Meeting, today: date) -> str:
    # Imported here: hub.web.meetings reads the forms module, which a feed does not need.
    from hub.web.meetings import meeting_text

    return meeting_text(t, m.local, m.place, today)


def atom_feed(
    items: Iterable[Shown],
    *,
    base: str,
    site: str,
    village: str,
    t: Translator,
    now: float,
    meetings: Mapping[str, Meeting] | None = None,
    today: date | None = None,
) -> bytes:
    """The feed; ``meetings`` (by announcement id) says when and where each meeting is,
    ``today`` (the village's date) whether its date needs the year."""
    import xml.etree.ElementTree as ET

    meetings = meetings or {}

    items = list(items)
    # Atom is the default namespace, declared once (ElementTree's default_namespace
    # option refuses the unqualified attributes Atom uses: rel, href, type…).
    feed = ET.Element("feed", {"xmlns": ATOM, _XML_LANG: t.lang})
    _el(feed, "id", f"tag:{site}.langso,{TAG_DATE}:feed")
    _el(feed, "title", t("pub.feed.title", site=village))
    _el(feed, "subtitle", t("app.tagline"))
    _el(feed, "updated", _rfc3339(max((a.updated_at for a in items), default=now)))
    _el(feed, "link", rel="self", type="application/atom+xml", href=f"{base}/feed.atom")
    _el(feed, "link", rel="alternate", type="text/html", href=f"{base}/")
    author = _el(feed, "author")
    _el(author, "name", t("pub.feed.author", site=village))
    _el(author, "uri", f"{base}/")
    _el(feed, "generator", "Làng Số Hub", uri=f"{base}/", version=__version__)
    _el(feed, "icon", f"{base}/static/logo.svg")
    for a in items:
        page = f"{base}/a/{a.id}"
        entry = _el(feed, "entry")
        _el(entry, "id", f"tag:{site}.langso,{TAG_DATE}:announcement/{a.id}")
        _el(entry, "title", a.title)
        _el(entry, "updated", _rfc3339(a.updated_at))
        _el(entry, "published", _rfc3339(a.created_at))
        _el(entry, "category", term=a.category, label=t(f"pub.cat.{a.category}"))
        _el(entry, "link", rel="alternate", type="text/html", href=page)
        size = a.audio_size()
        if size is not None:
            _el(
                entry,
                "link",
                rel="enclosure",
                type=audio_type(a),
                length=str(size),
                href=f"{base}{a.audio_url}",
            )
        content = a.text or t("pub.recording")
        m = meetings.get(a.id)
        if m is not None:
            said = _meeting_words(t, m, today or m.local.date())
            content = f"{said}.\n\n{content}"
        _el(entry, "content", content, type="text")
    xml: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return xml


# -- the calendar (RFC 5545) --------------------------------------------------------------
@lru_cache(maxsize=8)
def vtimezone(zone: str, year: int) -> Timezone:
    """The village's zone: one STANDARD part when it has no daylight saving time (as
    Asia/Ho_Chi_Minh), else this year's two changes as yearly rules (valid for as long as
    the zone keeps its rules, unlike one DTSTART per change)."""
    from icalendar import Timezone, TimezoneDaylight, TimezoneStandard

    tz = ZoneInfo(zone)
    vtz = Timezone()
    vtz.add("TZID", zone)
    changes = _transitions(tz, year)
    if not changes:
        jan = datetime(year, 1, 1, tzinfo=tz)
        std = TimezoneStandard()
        std.add("DTSTART", datetime(1970, 1, 1))
        std.add("TZOFFSETFROM", jan.utcoffset())
        std.add("TZOFFSETTO", jan.utcoffset())
        std.add("TZNAME", jan.tzname())
        vtz.add_component(std)
    for before, after in changes:
        # The change as a wall clock still on the old offset reads it (§3.6.5).
        local = (before + timedelta(seconds=1)).replace(tzinfo=None)
        last_day = (local.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        nth = -1 if local.day + 7 > last_day.day else (local.day - 1) // 7 + 1
        first = rrule(
            YEARLY,
            dtstart=datetime(1970, 1, 1, local.hour, local.minute),
            bymonth=local.month,
            byweekday=weekday(local.weekday())(nth),
            count=1,
        )[0]
        part = TimezoneDaylight() if after.dst() else TimezoneStandard()
        part.add("DTSTART", first)
        by_day = f"{nth}{WEEKDAYS[local.weekday()]}"
        part.add(
            "RRULE", _as_written()({"FREQ": "YEARLY", "BYMONTH": local.month, "BYDAY": by_day})
        )
        part.add("TZOFFSETFROM", before.utcoffset())
        part.add("TZOFFSETTO", after.utcoffset())
        part.add("TZNAME", after.tzname())
        vtz.add_component(part)
    return vtz


def _transitions(tz: tzinfo, year: int) -> list[tuple[datetime, datetime]]:
    """(local time just before, local time at) each offset change in the year, found day
    by day, then to the quarter hour."""
    out = []
    t0 = datetime(year, 1, 1, tzinfo=UTC)
    for day in range(366):
        lo = t0 + timedelta(days=day)
        if lo.astimezone(tz).utcoffset() == (lo + timedelta(days=1)).astimezone(tz).utcoffset():
            continue
        for quarter in range(1, 24 * 4 + 1):
            at = lo + timedelta(minutes=15 * quarter)
            if at.astimezone(tz).utcoffset() != lo.astimezone(tz).utcoffset():
                out.append(((at - timedelta(seconds=1)).astimezone(tz), at.astimezone(tz)))
                break
    return out


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(int(ts), UTC)


def recurrence(rule: str, expires_at: float | None) -> Any:
    """The RRULE as stored, ended where the announcement expires: nothing plays at or
    after ``expires_at`` and UNTIL is inclusive, in UTC since DTSTART has a TZID (RFC 5545
    §3.3.10). A rule with its own COUNT or UNTIL is left as written (the two exclude each
    other): calendars may then show occurrences past the expiry, which will not play."""
    rec = _as_written()(_recur().from_ical(rule))
    if expires_at is not None and not {"COUNT", "UNTIL"} & set(rec):
        rec["UNTIL"] = _utc(expires_at - 1)
    return rec


def _recur() -> Any:
    from icalendar import vRecur

    return vRecur


@lru_cache(maxsize=1)
def _as_written() -> Any:
    """``icalendar.vRecur`` keeping the parts in the order they were written: the hub's
    RRULEs are RFC 5545 already and go to the calendar as they are (vRecur sorts them)."""

    class AsWritten(_recur()):  # type: ignore[misc]
        def sorted_items(self) -> list[tuple[str, Any]]:
            return list(self.items())

    return AsWritten


def _text(value: str) -> Any:
    from icalendar import vText

    return vText(_NOT_XML.sub("", value))


def first_occurrence(a: Shown) -> datetime:
    """DTSTART as RFC 5545 wants it: the first date the RRULE matches (a weekly Monday
    item written on a Wednesday starts on the Monday after, not on the Wednesday: a
    DTSTART off the rule is counted as an extra occurrence by calendar apps)."""
    if not a.rrule:
        return a.start_local
    try:
        first = parse_rrule(a.rrule, a.start_local).after(a.start_local, inc=True)
    except ValueError:
        return a.start_local
    return first or a.start_local


def ics_calendar(
    items: Iterable[Shown],
    *,
    base: str,
    site: str,
    village: str,
    zone: str,
    t: Translator,
    now: float,
    meetings: Mapping[str, Meeting] | None = None,
) -> Calendar:
    """The calendar; a meeting's event (``meetings``, by announcement id) is the meeting."""
    from icalendar import Calendar, Event

    meetings = meetings or {}

    cal = Calendar()
    cal.add("VERSION", "2.0")
    cal.add("PRODID", f"-//Làng Số//Làng Số Hub {__version__}//{t.lang.upper()}")
    cal.add("CALSCALE", "GREGORIAN")
    cal.add("X-WR-CALNAME", _text(t("pub.ics.name", site=village)))
    cal.add("X-WR-CALDESC", _text(t("app.tagline")))
    cal.add("X-WR-TIMEZONE", zone)
    cal.add("REFRESH-INTERVAL", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    cal.add("X-PUBLISHED-TTL", "PT1H")
    cal.add_component(vtimezone(zone, _utc(now).year))
    for a in items:
        page = f"{base}/a/{a.id}"
        listen = t("pub.ics.listen", url=page)
        e = Event()
        e.add("UID", f"{a.id}@{site}.langso")
        # No METHOD in this calendar, so DTSTAMP is the last revision (§3.8.7.2): the
        # file only changes when an announcement does, and ETags work.
        e.add("DTSTAMP", _utc(a.updated_at))
        e.add("CREATED", _utc(a.created_at))
        e.add("LAST-MODIFIED", _utc(a.updated_at))
        # The schedule in the words the pages use: a calendar app shows the RRULE its own way.
        when = describe_schedule(a.rrule, a.start_local, t.lang, voice="public")
        m = meetings.get(a.id)
        if m is not None:
            _meeting_event(e, a, m, zone=zone, t=t, when=when, page=page)
            cal.add_component(e)
            continue
        e.add("DTSTART", first_occurrence(a), parameters={"TZID": zone})
        e.add("DURATION", timedelta(seconds=max(MIN_EVENT_S, math.ceil(a.duration_s or 0))))
        e.add("SUMMARY", _text(a.title))
        e.add("DESCRIPTION", _text(f"{a.text or t('pub.recording')}\n\n{when}\n{listen}"))
        e.add("CATEGORIES", [_NOT_XML.sub("", t(f"pub.cat.{a.category}"))])
        e.add("URL", page)
        e.add("STATUS", "CANCELLED" if a.called_off else "CONFIRMED")
        e.add("CLASS", "PUBLIC")
        e.add("TRANSP", "TRANSPARENT")  # a loudspeaker notice does not take an evening
        if a.rrule:
            e.add("RRULE", recurrence(a.rrule, a.expires_at))
        if a.rrule and a.exdates:
            e.add("EXDATE", list(a.exdates), parameters={"TZID": zone})
        if a.priority == "emergency":
            e.add("PRIORITY", 1)
        cal.add_component(e)
    return cal


def _meeting_event(
    e: Any, a: Shown, m: Meeting, *, zone: str, t: Translator, when: str, page: str
) -> None:
    """The event of a meeting invitation: the meeting, at its own time and place, for its
    usual length; the broadcasts are said in the description, never an event (nor an
    RRULE: a daily reminder is not a daily meeting). Called off only when the invitation
    is cancelled: a broadcast stopped on air does not call the meeting off."""
    e.add("DTSTART", m.local, parameters={"TZID": zone})
    e.add("DTEND", m.local + MEETING_LENGTH, parameters={"TZID": zone})
    e.add("SUMMARY", _text(a.title))
    if m.place:
        e.add("LOCATION", _text(m.place))
    broadcast = t("pub.meeting.broadcast", when=when)
    listen = t("pub.ics.listen", url=page)
    text = a.text or t("pub.recording")
    e.add("DESCRIPTION", _text(f"{text}\n\n{broadcast}\n{listen}"))
    e.add("CATEGORIES", [_NOT_XML.sub("", t("pub.cat.meeting"))])
    e.add("URL", page)
    e.add("STATUS", "CANCELLED" if a.status == "cancelled" else "CONFIRMED")
    e.add("CLASS", "PUBLIC")
    e.add("TRANSP", "OPAQUE")  # a meeting takes the resident's evening


def _cached(request: Request, body: bytes, media_type: str, **headers: str) -> Response:
    """With a strong ETag: feed readers and calendars poll, and mostly nothing changed."""
    tag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    common = {"ETag": tag, "Cache-Control": "public, max-age=300", **headers}
    if tag in [v.strip() for v in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=common)
    return Response(body, media_type=media_type, headers=common)


@router.get("/feed.atom")
def feed(request: Request) -> Response:
    hub = hub_of(request)
    items = read_models.for_feed(hub.store, FEED_ENTRIES)
    now = hub.clock.now().timestamp()
    body = atom_feed(
        items,
        base=base_url(request),
        site=hub.settings.site,
        village=hub.settings.village,
        t=translator(request),
        now=now,
        meetings=meeting_rows.of(hub.store, (a.id for a in items)),
        today=local_time(now, hub.settings.tz).date(),
    )
    return _cached(request, body, "application/atom+xml; charset=utf-8")


@router.get("/calendar.ics")
def calendar(request: Request) -> Response:
    hub = hub_of(request)
    now = hub.clock.now().timestamp()
    items = read_models.for_calendar(hub.store, now - CALENDAR_PAST_DAYS * 86_400, CALENDAR_EVENTS)
    cal = ics_calendar(
        items,
        base=base_url(request),
        site=hub.settings.site,
        village=hub.settings.village,
        zone=hub.settings.timezone,
        t=translator(request),
        now=now,
        meetings=meeting_rows.of(hub.store, (a.id for a in items)),
    )
    return _cached(
        request,
        cal.to_ical(),
        "text/calendar; charset=utf-8",
        **{"Content-Disposition": f'inline; filename="langso-{hub.settings.site}.ics"'},
    )
