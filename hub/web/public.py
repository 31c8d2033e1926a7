"""The residents' side: announcements, the feed, the calendar, feedback.

Pages (no sign-in, Vietnamese first): ``/`` (on air now, the latest announcements, the
next meetings), ``/a/{id}`` (one announcement: text, audio, schedule in words, what was
broadcast, a QR code to the page), ``/poster`` (the QR code to print for the cultural
house), ``/gop-y`` (the feedback form). Machine-readable: ``/feed.atom`` (RFC 4287) and
``/calendar.ics`` (RFC 5545). For the village head: ``/app/feedback``, the inbox.

Residents see published announcements only (scheduled, done or expired; never drafts
nor cancelled ones). Reads go straight to the store, one query per list: the last
broadcast of each announcement is a correlated subquery, not a query per row.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode
from zoneinfo import ZoneInfo

from dateutil.rrule import YEARLY, rrule, weekday
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from hub import __version__
from hub.api.announcements import AUDIO_TYPES
from hub.api.deps import iso
from hub.api.feedback import (
    CATEGORIES,
    STATUSES,
    FeedbackIn,
    Refused,
    client_address,
    count_feedback,
    intake_of,
    list_feedback,
    read_body,
    set_status,
)
from hub.app import Hub
from hub.web.i18n import Translator
from hub.web.pages import error_page, hub_of, read_form, render, template_env, translator
from hub.web.session import (
    CsrfFailed,
    LoginRequired,
    PageForbidden,
    check_form,
    require_page,
    session_of,
)

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

router = APIRouter(include_in_schema=False)

#: Strings the residents' script needs (live indicator, on air, the form's counter).
SCRIPT_KEYS = ("ago.", "live.", "pub.js.", "pub.onair.")
#: How many announcements the home page lists, and the feed carries.
LATEST = 12
FEED_ENTRIES = 50
#: The calendar: what is still to come, and what was at most this long ago.
CALENDAR_PAST_DAYS = 365
CALENDAR_EVENTS = 1000
#: An announcement lasts at least this long in a calendar (a 40-second one is invisible).
MIN_EVENT_S = 300
#: An emergency stays on top of the home page for a day.
EMERGENCY_BANNER_S = 86_400
#: The anonymous form's double-submit CSRF cookie (there is no session to bind it to).
FORM_CSRF_COOKIE = "langso_form_csrf"
FORM_PATH = "/gop-y"
#: A form body may be larger than the JSON API's: 2,000 Vietnamese letters percent-encode
#: to up to 9 bytes each.
FORM_BODY_LIMIT = 24 * 1024
#: The QR code: medium error correction (raised when it fits the same size), a quiet zone
#: of 4 modules (ISO/IEC 18004), white behind it whatever the page's colour.
QR_MAKE: Mapping[str, Any] = {"error": "m", "boost_error": True, "micro": False}
QR_SVG: Mapping[str, Any] = {
    "border": 4,
    "dark": "#000",
    "light": "#fff",
    "omitsize": True,
    "svgclass": "qr-code",
}
#: The tag: URIs of the feed (RFC 4151): stable whatever address the hub is reached by.
TAG_DATE = "2026"


# -- what the pages show ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Shown:
    """A published announcement as the residents' pages, feed and calendar show it."""

    id: str
    title: str
    text: str | None
    category: str
    priority: str
    status: str
    start_local: datetime  # naive village wall time
    rrule: str | None
    exdates: tuple[datetime, ...]
    expires_at: float | None
    next_run: float | None
    last_run: float | None
    played_at: float | None
    duration_s: float | None
    created_at: float
    updated_at: float
    audio: Path | None

    @property
    def emergency(self) -> bool:
        return self.priority == "emergency" or self.category == "emergency"

    @property
    def audio_url(self) -> str:
        return f"/api/announcements/{self.id}/audio"

    @property
    def audio_type(self) -> str:
        suffix = self.audio.suffix if self.audio else ".ogg"
        return AUDIO_TYPES.get(suffix, "application/octet-stream")

    def audio_size(self) -> int | None:
        try:
            return self.audio.stat().st_size if self.audio else None
        except OSError:
            return None


_COLUMNS = (
    "id, title, text, category, priority, status, start_local, rrule, exdates, expires_at,"
    " next_run, last_run, duration_s, created_at, updated_at, render_web"
)
_PUBLIC = "published = 1 AND status IN ('scheduled', 'done', 'expired')"
# The partial index broadcasts_occurrence (status != 'preempted') serves this subquery only
# because it repeats the index's condition (SQLite matches terms, not their meaning).
_PLAYED = (
    "(SELECT max(b.started_at) FROM broadcasts b WHERE b.announcement_id = a.id"
    " AND b.status = 'played' AND b.status != 'preempted') AS played_at"
)


def _select(
    hub: Hub, where: str, order: str, limit: int, params: tuple[Any, ...] = ()
) -> list[Any]:
    """Published announcements: the rows are chosen first, their last broadcast looked up
    after (in the select list of the sorting query, SQLite would run the subquery for
    every row it sorts, not only for those it keeps)."""
    inner = f"SELECT {_COLUMNS} FROM announcements WHERE {_PUBLIC} {where} ORDER BY {order} LIMIT ?"
    return hub.store.query(
        f"SELECT a.*, {_PLAYED} FROM ({inner}) a ORDER BY {order}", (*params, limit)
    )


def _shown(row: Any) -> Shown:
    return Shown(
        id=row["id"],
        title=row["title"],
        text=row["text"],
        category=row["category"],
        priority=row["priority"],
        status=row["status"],
        start_local=datetime.fromisoformat(row["start_local"]),
        rrule=row["rrule"],
        exdates=tuple(datetime.fromisoformat(d) for d in json.loads(row["exdates"])),
        expires_at=row["expires_at"],
        next_run=row["next_run"],
        last_run=row["last_run"],
        played_at=row["played_at"],
        duration_s=row["duration_s"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        audio=Path(row["render_web"]) if row["render_web"] else None,
    )


def latest(hub: Hub, limit: int = LATEST) -> list[Shown]:
    """Newest first: by the last time it went on air, else by when it was written.

    No index orders announcements by that key, and sorting 10,000 rows costs milliseconds
    a page view cannot spend, so the candidates come from two index walks: one that went
    on air ranks by its last broadcast, so it is among the most recently broadcast ones
    (``broadcasts_time``, read backwards); one that never did ranks by its creation, so
    it is among the most recently written ones (rowid order, read backwards). Only those
    are sorted. (The one on air right now may miss the list until it is logged; the "on
    air" card shows it meanwhile.)
    """
    rows = hub.store.query(
        f"""
        SELECT {_COLUMNS}, {_PLAYED} FROM announcements a WHERE a.rowid IN (
            SELECT * FROM (
                SELECT rowid FROM announcements
                -- "+" keeps the planner off announcements_status: walk the rowids instead
                WHERE +published = 1 AND +status IN ('scheduled', 'done', 'expired')
                ORDER BY rowid DESC LIMIT :n)
            UNION
            SELECT * FROM (
                SELECT DISTINCT c.rowid FROM broadcasts b
                CROSS JOIN announcements c ON c.id = b.announcement_id
                WHERE c.published = 1 AND c.status IN ('scheduled', 'done', 'expired')
                ORDER BY b.scheduled_for DESC LIMIT :n))
        ORDER BY coalesce(last_run, created_at) DESC, id LIMIT :limit
        """,
        {"n": 2 * limit, "limit": limit},
    )
    return [_shown(r) for r in rows]


def upcoming_meetings(hub: Hub, now: float, limit: int = 5) -> list[Shown]:
    rows = _select(
        hub,
        "AND category = 'meeting' AND status = 'scheduled' AND next_run > ?",
        "next_run, id",
        limit,
        (now,),
    )
    return [_shown(r) for r in rows]


def one(hub: Hub, aid: str) -> Shown | None:
    rows = _select(hub, "AND id = ?", "id", 1, (aid,))
    return _shown(rows[0]) if rows else None


def for_feed(hub: Hub, limit: int = FEED_ENTRIES) -> list[Shown]:
    """The most recently written: rowid order is the order they were written in."""
    newest = (
        "AND rowid IN (SELECT rowid FROM announcements WHERE +published = 1"
        " AND +status IN ('scheduled', 'done', 'expired') ORDER BY rowid DESC LIMIT ?)"
    )
    rows = _select(hub, newest, "created_at DESC, id", limit, (2 * limit,))
    return [_shown(r) for r in rows]


def for_calendar(hub: Hub, now: float) -> list[Shown]:
    rows = _select(
        hub,
        "AND status IN ('scheduled', 'done')"
        " AND (next_run IS NOT NULL OR coalesce(last_run, created_at) >= ?)",
        "start_local, id",
        CALENDAR_EVENTS,
        (now - CALENDAR_PAST_DAYS * 86_400,),
    )
    return [_shown(r) for r in rows]


@dataclass(frozen=True, slots=True)
class Aired:
    scheduled_for: float
    started_at: float | None
    status: str


def history(hub: Hub, aid: str, limit: int = 10) -> list[Aired]:
    rows = hub.store.query(
        "SELECT scheduled_for, started_at, status FROM broadcasts WHERE announcement_id=?"
        " ORDER BY scheduled_for DESC, id DESC LIMIT ?",
        (aid, limit),
    )
    return [Aired(r["scheduled_for"], r["started_at"], r["status"]) for r in rows]


def on_air(hub: Hub) -> dict[str, Any] | None:
    """What the loudspeakers say now, from the playout's state (read across threads: it
    is replaced, never changed in place)."""
    state = getattr(getattr(hub, "playout", None), "state", None)
    if state is None or state.state != "playing":
        return None
    return {
        "id": state.announcement_id,
        "title": state.title or state.announcement_id or "",
        "emergency": state.priority == "emergency",
    }


# -- the schedule in words --------------------------------------------------------------
_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_WEEKDAYS = frozenset(_DAYS[:5])
_SIMPLE_KEYS = frozenset(
    {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYMONTH"}
    | {"BYHOUR", "BYMINUTE", "BYSECOND", "WKST"}
)
_NTH = re.compile(r"^([+-]?[1-5])?(MO|TU|WE|TH|FR|SA|SU)$")


def _date_words(t: Translator, d: date) -> str:
    return f"{t.day(datetime(d.year, d.month, d.day))}{'/' if t.lang == 'vi' else ' '}{d.year}"


def _join(t: Translator, words: list[str]) -> str:
    if len(words) == 1:
        return words[0]
    return t("pub.rr.and", first=", ".join(words[:-1]), last=words[-1])


def describe_rrule(rrule_text: str | None, start_local: datetime, lang: str) -> str:
    """The schedule as a villager would say it: "Hằng ngày lúc 06:00", "Every Monday at
    19:30". Daily, weekdays, weekly by day(s), monthly by day or by nth weekday, yearly,
    hourly, with COUNT or UNTIL; anything else falls back to the raw RRULE."""
    t = Translator(lang)
    time_ = f"{start_local:%H:%M}"
    if not rrule_text:
        return t("pub.rr.once", time=time_, date=_date_words(t, start_local.date()))
    parts: dict[str, str] = {}
    for item in rrule_text.upper().removeprefix("RRULE:").split(";"):
        key, _, value = item.partition("=")
        if not key or not value or key in parts:
            return t("pub.rr.raw", rule=rrule_text)
        parts[key] = value
    phrase = _phrase(t, parts, start_local)
    if phrase is None or not set(parts) <= _SIMPLE_KEYS:
        return t("pub.rr.raw", rule=rrule_text)
    if "COUNT" in parts and parts["COUNT"].isdigit():
        phrase = t("pub.rr.count", rule=phrase, n=int(parts["COUNT"]))
    elif "UNTIL" in parts:
        until = _until(parts["UNTIL"], start_local)
        if until is None:
            return t("pub.rr.raw", rule=rrule_text)
        phrase = t("pub.rr.until", rule=phrase, date=_date_words(t, until))
    return phrase[:1].upper() + phrase[1:]


def _until(value: str, start_local: datetime) -> date | None:
    try:
        if value.endswith("Z"):
            return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).date()
        if "T" in value:
            return datetime.strptime(value, "%Y%m%dT%H%M%S").date()
        return datetime.strptime(value, "%Y%m%d").date()
    except ValueError:
        return None


def _phrase(t: Translator, p: Mapping[str, str], start: datetime) -> str | None:
    hour, minute = start.hour, start.minute
    for key in ("BYHOUR", "BYMINUTE", "BYSECOND"):
        if key in p and not p[key].isdigit():
            return None  # several times a day: say it raw
    hour = int(p.get("BYHOUR", hour))
    minute = int(p.get("BYMINUTE", minute))
    if hour > 23 or minute > 59:
        return None
    time_ = f"{hour:02d}:{minute:02d}"
    interval = p.get("INTERVAL", "1")
    if not interval.isdigit() or int(interval) < 1:
        return None
    n = int(interval)
    days = p["BYDAY"].split(",") if "BYDAY" in p else []
    freq = p.get("FREQ")
    day_name = _DAYS[start.weekday()]
    if freq == "HOURLY" and not days and "BYMONTHDAY" not in p and "BYMONTH" not in p:
        return t("pub.rr.hourly", time=time_) if n == 1 else t("pub.rr.hours", n=n, time=time_)
    if freq in ("DAILY", "WEEKLY") and "BYMONTHDAY" not in p and "BYMONTH" not in p:
        if any(d not in _DAYS for d in days):
            return None
        if freq == "DAILY" and not days:
            return t("pub.rr.daily", time=time_) if n == 1 else t("pub.rr.days", n=n, time=time_)
        chosen = [d for d in _DAYS if d in (days or [day_name])]
        if n == 1 and set(chosen) == _WEEKDAYS:
            return t("pub.rr.weekdays", time=time_)
        if n == 1 and len(chosen) == 7:
            return t("pub.rr.daily", time=time_)
        if freq == "DAILY" and n != 1:
            return None
        names = _join(t, [t(f"pub.day.{d.lower()}") for d in chosen])
        if n == 1:
            return t("pub.rr.weekly", days=names, time=time_)
        return t("pub.rr.weeks", days=names, n=n, time=time_)
    if freq == "MONTHLY" and "BYMONTH" not in p and n == 1:
        if "BYMONTHDAY" in p and days:
            return None
        if len(days) == 1:
            m = _NTH.match(days[0])
            if m is None or m.group(1) is None:
                return None
            nth = int(m.group(1))
            if nth not in (1, 2, 3, 4, 5, -1):
                return None
            return t(
                "pub.rr.monthly_nth",
                day=t(f"pub.day.{m.group(2).lower()}"),
                nth=t("pub.rr.nth.last" if nth == -1 else f"pub.rr.nth.{nth}"),
                time=time_,
            )
        if days:
            return None
        monthday = p.get("BYMONTHDAY", str(start.day))
        if monthday == "-1":
            return t("pub.rr.monthly_last", time=time_)
        if not monthday.isdigit() or not 1 <= int(monthday) <= 31:
            return None
        return t("pub.rr.monthly", day=int(monthday), time=time_)
    if freq == "YEARLY" and not days and n == 1:
        month = p.get("BYMONTH", str(start.month))
        monthday = p.get("BYMONTHDAY", str(start.day))
        if not (month.isdigit() and monthday.isdigit()):
            return None
        try:
            when = date(2000, int(month), int(monthday))  # a leap year: 29/02 is a date
        except ValueError:
            return None
        return t("pub.rr.yearly", date=t.day(datetime(2000, when.month, when.day)), time=time_)
    return None


# -- QR codes -----------------------------------------------------------------------------
@lru_cache(maxsize=256)
def qr_svg(url: str, title: str) -> Markup:
    """The URL as a QR code, an inline SVG (no script, no style: fine under the CSP).
    segno is imported at the first QR code drawn, not at start-up (with the xml.sax it
    needs: about 0.6 MB of resident memory)."""
    import segno

    return Markup(segno.make(url, **QR_MAKE).svg_inline(title=title, **QR_SVG))


def base_url(request: Request) -> str:
    """Where QR codes and links point: ``http.public_url``, else this hub's address as
    the browser reached it."""
    public: str | None = request.app.state.hub.settings.http.public_url
    return public or str(request.base_url).rstrip("/")


# -- pages --------------------------------------------------------------------------------
def _page_data(request: Request, t: Translator, **extra: Any) -> dict[str, Any]:
    return {
        "page": "public",
        "mark": request.app.state.bus.mark,
        "t": _script_words(t.lang),
        **extra,
    }


@lru_cache(maxsize=4)
def _script_words(lang: str) -> dict[str, str]:
    """The words public.js needs (the catalogue does not change while the hub runs)."""
    return Translator(lang).subset(SCRIPT_KEYS)


def _words(t: Translator, tz: tzinfo) -> dict[str, Any]:
    """Helpers the residents' templates call."""

    def local_day(ts: float) -> dict[str, str]:
        d = datetime.fromtimestamp(ts, UTC).astimezone(tz)
        return {"wday": _DAYS[d.weekday()].lower(), "date": t.day(d), "time": f"{d:%H:%M}"}

    return {
        "describe": lambda a: describe_rrule(a.rrule, a.start_local, t.lang),
        "local_day": local_day,
    }


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    hub = hub_of(request)
    t = translator(request)
    now = hub.clock.now().timestamp()
    items = latest(hub)
    alarms = [
        a
        for a in items
        if a.emergency and (a.played_at or a.last_run or a.created_at) >= now - EMERGENCY_BANNER_S
    ]
    zone = hub.settings.timezone
    return render(
        request,
        "public.html",
        t=t,
        session=session_of(request, hub),
        data=_page_data(request, t),
        alarms_html=_fragment("alarms", t.lang, zone, alarms=tuple(alarms)),
        lists=_fragment(
            "lists", t.lang, zone, items=tuple(items), meetings=tuple(upcoming_meetings(hub, now))
        ),
        on_air=on_air(hub),
    )


@lru_cache(maxsize=32)
def _fragment(
    part: str,
    lang: str,
    zone: str,
    *,
    alarms: tuple[Shown, ...] = (),
    items: tuple[Shown, ...] = (),
    meetings: tuple[Shown, ...] = (),
) -> Markup:
    """The home page's lists, rendered once per language and content: the rows are read at
    every request (a fraction of a millisecond), the HTML made again only when they (or
    anything they show) changed: a page view is then a few small queries and the frame."""
    t = Translator(lang)
    tz = ZoneInfo(zone)
    template = template_env().get_template("public_lists.html")
    html = template.render(
        _=t,
        t=t,
        lang=lang,
        part=part,
        when=lambda ts: t.when(ts, tz),
        iso=lambda ts: iso(ts) or "",
        alarms=alarms,
        items=items,
        meetings=meetings,
        **_words(t, tz),
    )
    return Markup(html)


@router.get("/a/{aid}", response_class=HTMLResponse)
def announcement_page(request: Request, aid: str) -> HTMLResponse:
    hub = hub_of(request)
    t = translator(request)
    session = session_of(request, hub)
    a = one(hub, aid) if len(aid) <= 64 else None
    if a is None:
        return error_page(
            request,
            session=session,
            status=404,
            title="error.not_found",
            text=t("pub.not_found_text"),
        )
    url = f"{base_url(request)}/a/{a.id}"
    return render(
        request,
        "public_announcement.html",
        t=t,
        session=session,
        data=_page_data(request, t, announcement=a.id),
        a=a,
        url=url,
        qr=qr_svg(url, t("pub.qr.this", title=a.title)),
        aired=history(hub, a.id),
        on_air=on_air(hub),
        **_words(t, hub.settings.tz),
    )


@router.get("/poster", response_class=HTMLResponse)
def poster(request: Request) -> HTMLResponse:
    hub = hub_of(request)
    t = translator(request)
    url = base_url(request) + "/"
    return render(
        request,
        "public_poster.html",
        t=t,
        session=session_of(request, hub),
        data={"page": "poster"},
        url=url,
        address=url.split("://", 1)[-1].rstrip("/"),
        qr=qr_svg(url, t("pub.poster.scan")),
    )


# -- the feed (RFC 4287) ------------------------------------------------------------------
ATOM = "http://www.w3.org/2005/Atom"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# Characters XML 1.0 cannot carry at all (§2.2), escaping or not.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    import xml.etree.ElementTree as ET

    e = ET.SubElement(parent, tag, attrs)
    if text is not None:
        e.text = _NOT_XML.sub("", text)
    return e


def atom_feed(items: Iterable[Shown], *, base: str, site: str, t: Translator, now: float) -> bytes:
    # ElementTree is imported at the first feed asked for, not at start-up (about 0.4 MB).
    import xml.etree.ElementTree as ET

    items = list(items)
    # Atom is the default namespace, declared once (ElementTree's default_namespace
    # option refuses the unqualified attributes Atom uses: rel, href, type…).
    feed = ET.Element("feed", {"xmlns": ATOM, _XML_LANG: t.lang})
    _el(feed, "id", f"tag:{site}.langso,{TAG_DATE}:feed")
    _el(feed, "title", t("pub.feed.title", site=site))
    _el(feed, "subtitle", t("app.tagline"))
    _el(feed, "updated", _rfc3339(max((a.updated_at for a in items), default=now)))
    _el(feed, "link", rel="self", type="application/atom+xml", href=f"{base}/feed.atom")
    _el(feed, "link", rel="alternate", type="text/html", href=f"{base}/")
    author = _el(feed, "author")
    _el(author, "name", t("pub.feed.author", site=site))
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
                type=a.audio_type,
                length=str(size),
                href=f"{base}{a.audio_url}",
            )
        _el(entry, "content", a.text or t("pub.recording"), type="text")
    xml: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return xml


# -- the calendar (RFC 5545) --------------------------------------------------------------
def ics_text(value: str) -> str:
    """TEXT values (§3.3.11): backslash, semicolon, comma and new lines escaped."""
    value = _NOT_XML.sub("", value).replace("\r\n", "\n").replace("\r", "\n")
    for raw, escaped in (("\\", "\\\\"), (";", "\\;"), (",", "\\,"), ("\n", "\\n")):
        value = value.replace(raw, escaped)
    return value


def fold(line: str) -> str:
    """Content lines of at most 75 octets (§3.1), continued after CRLF + one space, never
    splitting a UTF-8 sequence (Vietnamese letters take 2 or 3 octets)."""
    if len(line.encode()) <= 75:
        return line
    parts: list[str] = []
    current: list[str] = []
    size, limit = 0, 75
    for ch in line:
        n = len(ch.encode())
        if size + n > limit:
            parts.append("".join(current))
            current, size, limit = [], 0, 74  # the leading space counts
        current.append(ch)
        size += n
    parts.append("".join(current))
    return "\r\n ".join(parts)


def _offset(delta: timedelta | None) -> str:
    s = int((delta or timedelta()).total_seconds())
    sign, s = ("-" if s < 0 else "+"), abs(s)
    text = f"{sign}{s // 3600:02d}{s % 3600 // 60:02d}"
    return text + (f"{s % 60:02d}" if s % 60 else "")


@lru_cache(maxsize=8)
def vtimezone(zone: str, year: int) -> tuple[str, ...]:
    """The village's zone: one STANDARD part when it has no daylight saving time (as
    Asia/Ho_Chi_Minh), else this year's two changes as yearly rules."""
    tz = ZoneInfo(zone)
    lines = ["BEGIN:VTIMEZONE", f"TZID:{zone}"]
    changes = _transitions(tz, year)
    if not changes:
        jan = datetime(year, 1, 1, tzinfo=tz)
        off = _offset(jan.utcoffset())
        lines += ["BEGIN:STANDARD", "DTSTART:19700101T000000"]
        lines += [f"TZOFFSETFROM:{off}", f"TZOFFSETTO:{off}", f"TZNAME:{jan.tzname()}"]
        lines += ["END:STANDARD"]
    for _at, before, after in changes:
        # The change as a wall clock still on the old offset reads it (§3.6.5).
        local = (before + timedelta(seconds=1)).replace(tzinfo=None)
        days_in_month = (local.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(
            days=1
        )
        nth = -1 if local.day + 7 > days_in_month.day else (local.day - 1) // 7 + 1
        wd = weekday(local.weekday())(nth)
        first = rrule(
            YEARLY,
            dtstart=datetime(1970, 1, 1, local.hour, local.minute),
            bymonth=local.month,
            byweekday=wd,
            count=1,
        )[0]
        part = "DAYLIGHT" if after.dst() else "STANDARD"
        lines += [f"BEGIN:{part}", f"DTSTART:{first:%Y%m%dT%H%M%S}"]
        lines += [f"RRULE:FREQ=YEARLY;BYMONTH={local.month};BYDAY={nth}{_DAYS[local.weekday()]}"]
        lines += [f"TZOFFSETFROM:{_offset(before.utcoffset())}"]
        lines += [f"TZOFFSETTO:{_offset(after.utcoffset())}", f"TZNAME:{after.tzname()}"]
        lines += [f"END:{part}"]
    return (*lines, "END:VTIMEZONE")


def _transitions(tz: tzinfo, year: int) -> list[tuple[datetime, datetime, datetime]]:
    """(UTC instant, local time just before, local time at) of each offset change in the
    year, found day by day, then to the quarter hour."""
    out = []
    t0 = datetime(year, 1, 1, tzinfo=UTC)
    for day in range(366):
        lo = t0 + timedelta(days=day)
        if lo.astimezone(tz).utcoffset() == (lo + timedelta(days=1)).astimezone(tz).utcoffset():
            continue
        for quarter in range(1, 24 * 4 + 1):
            at = lo + timedelta(minutes=15 * quarter)
            if at.astimezone(tz).utcoffset() != lo.astimezone(tz).utcoffset():
                out.append((at, (at - timedelta(seconds=1)).astimezone(tz), at.astimezone(tz)))
                break
    return out


def _ics_local(d: datetime) -> str:
    return f"{d:%Y%m%dT%H%M%S}"


def until(rule: str, expires_at: float | None) -> str:
    """The RRULE as stored, ended where the announcement expires: nothing plays at or
    after ``expires_at`` and UNTIL is inclusive, in UTC since DTSTART has a TZID (RFC 5545
    §3.3.10). A rule with its own COUNT or UNTIL is left as written (the two exclude each
    other): calendars may then show occurrences past the expiry, which will not play."""
    if expires_at is None:
        return rule
    keys = {part.split("=", 1)[0].strip().upper() for part in rule.split(";")}
    if keys & {"COUNT", "UNTIL"}:
        return rule
    return f"{rule};UNTIL={_ics_utc(expires_at - 1)}"


def _ics_utc(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y%m%dT%H%M%SZ")


def _duration(seconds: float | None) -> str:
    s = max(MIN_EVENT_S, math.ceil(seconds or 0))
    h, m, sec = s // 3600, s % 3600 // 60, s % 60
    return "PT" + (f"{h}H" if h else "") + (f"{m}M" if m else "") + (f"{sec}S" if sec else "")


def ics_calendar(
    items: Iterable[Shown], *, base: str, site: str, zone: str, t: Translator, now: float
) -> str:
    year = datetime.fromtimestamp(now, UTC).year
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:-//Làng Số//Làng Số Hub {__version__}//{t.lang.upper()}",
        "CALSCALE:GREGORIAN",
        f"X-WR-CALNAME:{ics_text(t('pub.ics.name', site=site))}",
        f"X-WR-CALDESC:{ics_text(t('app.tagline'))}",
        f"X-WR-TIMEZONE:{zone}",
        "REFRESH-INTERVAL;VALUE=DURATION:PT1H",
        "X-PUBLISHED-TTL:PT1H",
        *vtimezone(zone, year),
    ]
    for a in items:
        page = f"{base}/a/{a.id}"
        listen = t("pub.ics.listen", url=page)
        description = f"{a.text or t('pub.recording')}\n\n{listen}"
        lines += [
            "BEGIN:VEVENT",
            f"UID:{a.id}@{site}.langso",
            # No METHOD in this calendar, so DTSTAMP is the last revision (§3.8.7.2): the
            # file only changes when an announcement does, and ETags work.
            f"DTSTAMP:{_ics_utc(a.updated_at)}",
            f"CREATED:{_ics_utc(a.created_at)}",
            f"LAST-MODIFIED:{_ics_utc(a.updated_at)}",
            f"DTSTART;TZID={zone}:{_ics_local(a.start_local)}",
            f"DURATION:{_duration(a.duration_s)}",
            f"SUMMARY:{ics_text(a.title)}",
            f"DESCRIPTION:{ics_text(description)}",
            f"CATEGORIES:{ics_text(t(f'pub.cat.{a.category}'))}",
            f"URL:{page}",
            "STATUS:CONFIRMED",
            "CLASS:PUBLIC",
            # A meeting takes the resident's evening; a loudspeaker notice does not.
            f"TRANSP:{'OPAQUE' if a.category == 'meeting' else 'TRANSPARENT'}",
        ]
        if a.rrule:
            lines.append(f"RRULE:{until(a.rrule, a.expires_at)}")
        if a.rrule and a.exdates:
            lines.append(f"EXDATE;TZID={zone}:{','.join(_ics_local(d) for d in a.exdates)}")
        if a.priority == "emergency":
            lines.append("PRIORITY:1")
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)


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
    t = translator(request)
    body = atom_feed(
        for_feed(hub),
        base=base_url(request),
        site=hub.settings.site,
        t=t,
        now=hub.clock.now().timestamp(),
    )
    return _cached(request, body, "application/atom+xml; charset=utf-8")


@router.get("/calendar.ics")
def calendar(request: Request) -> Response:
    hub = hub_of(request)
    t = translator(request)
    now = hub.clock.now().timestamp()
    text = ics_calendar(
        for_calendar(hub, now),
        base=base_url(request),
        site=hub.settings.site,
        zone=hub.settings.timezone,
        t=t,
        now=now,
    )
    return _cached(
        request,
        text.encode(),
        "text/calendar; charset=utf-8",
        **{"Content-Disposition": f'inline; filename="langso-{hub.settings.site}.ics"'},
    )


# -- the feedback form (no sign-in: double-submit CSRF) ---------------------------------
def _form_csrf(request: Request) -> tuple[str, bool]:
    value = request.cookies.get(FORM_CSRF_COOKIE)
    if value and len(value) >= 32:
        return value, False
    return secrets.token_urlsafe(32), True


def _feedback_form(
    request: Request,
    *,
    status: int = 200,
    ok: bool = False,
    errors: Mapping[str, str] | None = None,
    error: str = "",
    form: Mapping[str, str] | None = None,
) -> HTMLResponse:
    hub = hub_of(request)
    t = translator(request)
    value, fresh = _form_csrf(request)
    response = render(
        request,
        "public_feedback.html",
        t=t,
        session=session_of(request, hub),
        status=status,
        data={"page": "feedback", "t": _script_words(t.lang)},
        form_csrf=value,
        categories=CATEGORIES,
        ok=ok,
        errors=errors or {},
        error=error,
        form=form or {},
    )
    if fresh:
        response.set_cookie(
            FORM_CSRF_COOKIE,
            value,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=FORM_PATH,
        )
    return response


@router.get(FORM_PATH, response_class=HTMLResponse)
def feedback_page(request: Request, ok: int = 0) -> HTMLResponse:
    return _feedback_form(request, ok=bool(ok))


_FIELD_ERRORS = {
    "message": "fb.err.message",
    "name": "fb.err.long",
    "contact": "fb.err.long",
    "category": "fb.err.category",
}


@router.post(FORM_PATH, response_class=HTMLResponse)
async def feedback_submit(request: Request) -> Response:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise HTTPException(415, "send the form as application/x-www-form-urlencoded")
    raw = await read_body(request, FORM_BODY_LIMIT)
    try:
        fields = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=8)
    except ValueError:
        raise HTTPException(400, "too many form fields") from None
    form = {k: v[0] for k, v in fields.items() if v}
    cookie = request.cookies.get(FORM_CSRF_COOKIE)
    sent = form.get("csrf")
    if not cookie or not sent or not hmac.compare_digest(cookie, sent):
        raise CsrfFailed(None, "missing or wrong CSRF token on the feedback form")
    t = translator(request)
    kept = {k: form.get(k, "")[:2000] for k in ("name", "contact", "message", "category")}
    try:
        body = FeedbackIn.model_validate({k: v for k, v in kept.items() if v or k == "message"})
    except ValidationError as e:
        errors = {}
        for err in e.errors():
            field = str(err["loc"][0]) if err["loc"] else "message"
            errors[field] = t(_FIELD_ERRORS.get(field, "fb.err.message"))
        return await run_in_threadpool(
            lambda: _feedback_form(request, status=422, errors=errors, form=kept)
        )
    intake = intake_of(request)
    outcome = await run_in_threadpool(
        intake.accept, body, address=client_address(request), lang=t.lang
    )
    if isinstance(outcome, Refused):
        minutes = max(1, math.ceil(outcome.retry_after / 60))
        response = await run_in_threadpool(
            lambda: _feedback_form(
                request, status=429, error=t("fb.err.throttled", n=minutes), form=kept
            )
        )
        response.headers["Retry-After"] = str(outcome.retry_after)
        return response
    # Post/redirect/get: a reload does not send the report twice.
    return RedirectResponse(f"{FORM_PATH}?ok=1", status_code=303)


# -- the village head's inbox -------------------------------------------------------------
@router.get("/app/feedback", response_class=HTMLResponse)
def inbox(request: Request, status: str = "", ok: str = "") -> HTMLResponse:
    hub = hub_of(request)
    session = require_page(request, hub, "head")
    t = translator(request)
    shown = status if status in STATUSES else ""
    notice = t(f"fb.ok.{ok}") if ok in STATUSES else ""
    return render(
        request,
        "public_inbox.html",
        t=t,
        session=session,
        active="feedback",
        reports=list_feedback(hub, status=shown or None, limit=200),
        counts=count_feedback(hub),
        current=shown,
        statuses=STATUSES,
        notice=notice,
        parse_iso=lambda v: datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp(),
    )


@router.post("/app/feedback/{fid}")
async def inbox_mark(request: Request, fid: int) -> Response:
    form = await read_form(request)
    hub = hub_of(request)
    session = await run_in_threadpool(session_of, request, hub)
    if session is None:
        raise LoginRequired("/app/feedback")
    check_form(session, form.get("csrf"))
    if not session.user.has("head"):
        raise PageForbidden(session, ("head",))
    status = form.get("status", "")
    if status not in STATUSES:
        raise HTTPException(422, f"status must be one of {', '.join(STATUSES)}")
    try:
        await run_in_threadpool(set_status, hub, fid, status, session.user.username)
    except KeyError:
        t = translator(request)
        return await run_in_threadpool(
            lambda: error_page(
                request,
                session=session,
                status=404,
                title="error.not_found",
                text=t("fb.not_found"),
            )
        )
    back = form.get("filter", "")
    query = {"ok": status, **({"status": back} if back in STATUSES else {})}
    return RedirectResponse(f"/app/feedback?{urlencode(query)}#fb-{fid}", status_code=303)
