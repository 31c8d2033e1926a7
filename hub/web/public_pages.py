"""The residents' pages: ``/`` (on air now, the latest announcements, the next meetings) and
``/a/{id}`` (one announcement: text, audio, schedule in words, what was broadcast, a QR
code to the page). No sign-in, Vietnamese first; read from :mod:`hub.store.read_models`
and, for meetings (listed by the meeting's time, not the invitation's broadcast), from
:mod:`hub.store.meetings`.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from hub.app import Hub
from hub.clock import local_time
from hub.store import meetings as meeting_rows
from hub.store import read_models
from hub.store.meetings import Meeting
from hub.store.read_models import Shown
from hub.web.feed import audio_type
from hub.web.meetings import listed_after, meeting_text
from hub.web.poster import qr_svg
from hub.web.render import (
    base_url,
    hub_of,
    iso_text,
    not_found,
    render,
    template_env,
    translator,
)
from hub.web.session import session_of
from hub.words import Translator
from hub.words.schedule import describe_schedule
from hub.words.times import WEEKDAYS

router = APIRouter(include_in_schema=False)

#: Strings the residents' script needs (live indicator, on air, the form's counter).
SCRIPT_KEYS = ("ago.", "live.", "pub.js.", "pub.onair.")
#: How many announcements the home page lists.
LATEST = 12
MEETINGS = 5
#: An emergency in force stays on top of the home page for a day at most.
EMERGENCY_BANNER_S = 86_400
#: Banners shown during a flood of emergencies (newest first); the rest are counted.
BANNERS = 3
#: Broadcasts listed on an announcement's page.
AIRED = 10


def on_air(hub: Hub) -> dict[str, Any] | None:
    """What the loudspeakers say now (the residents' card, the staff's dashboard), from the
    playout's state (read across threads: it is replaced, never changed in place)."""
    state = hub.playout.state
    if state.state != "playing" or stopped_on_air(hub):
        return None
    return {
        "id": state.announcement_id,
        "title": state.title or state.announcement_id or "",
        "priority": state.priority,
        "emergency": state.priority == "emergency",
        "started_at": state.started_at.timestamp() if state.started_at else None,
    }


def stopped_on_air(hub: Hub) -> bool:
    """What plays was stopped by a person: silent already, though the playout says so only
    after the amplifier's tail."""
    state, stop = hub.playout.state, hub.announcements.last_stop
    return (
        stop is not None
        and state.state == "playing"
        and stop.announcement_id == state.announcement_id
        and stop.started_at == state.started_at
    )


def who(t: Translator, kind_name: tuple[str, str]) -> str:
    """Who issued or ended an announcement, in words: a person with their role, a rule by
    its name, the panel's button, a remote command."""
    kind, name = kind_name
    known = ("head", "admin", "technician", "rule", "button", "remote")
    return t(f"pub.by.{kind if kind in known else 'head'}", name=name)


@lru_cache(maxsize=4)
def script_words(lang: str) -> dict[str, str]:
    """The words public.js needs (the catalogue does not change while the hub runs)."""
    return Translator(lang).subset(SCRIPT_KEYS)


def _page_data(request: Request, t: Translator, **extra: Any) -> dict[str, Any]:
    return {
        "page": "public",
        "mark": request.app.state.bus.mark,
        "t": script_words(t.lang),
        **extra,
    }


def _helpers(t: Translator, tz: tzinfo, today: str = "") -> dict[str, Any]:
    """What the residents' templates call, beside the frame's own (``today``: the village's
    date, ISO, where a page says a meeting's date)."""

    def local_day(ts: float) -> dict[str, str]:
        return wall_day(local_time(ts, tz).replace(tzinfo=None))

    def wall_day(d: datetime) -> dict[str, str]:
        return {"wday": WEEKDAYS[d.weekday()].lower(), "date": t.day(d), "time": f"{d:%H:%M}"}

    def meeting_words(m: Meeting) -> str:
        return meeting_text(t, m.local, m.place, datetime.fromisoformat(today).date())

    return {
        "describe": lambda a: describe_schedule(a.rrule, a.start_local, t.lang, voice="public"),
        "who": lambda kind_name: who(t, kind_name),
        "local_day": local_day,
        "wall_day": wall_day,
        "meeting_words": meeting_words,
        "audio_type": audio_type,
    }


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    hub = hub_of(request)
    t = translator(request)
    now = hub.clock.now().timestamp()
    items = read_models.latest(hub.store, LATEST)
    # Only what is in force: a stopped, ended or expired emergency leaves the banner at
    # once (it stays in the list below, marked).
    alarms = read_models.in_force(hub.store, now, now - EMERGENCY_BANNER_S)
    # By the meeting's own time, each until it is over (a meeting under way is marked).
    now_local = local_time(now, hub.settings.tz).replace(tzinfo=None)
    coming = meeting_rows.upcoming(hub.store, listed_after(now_local), MEETINGS)
    meetings = tuple((m, m.local <= now_local) for m in coming)
    # The meetings among the latest, for their cards' "Họp lúc ..." line.
    met = meeting_rows.of(hub.store, (a.id for a in items))
    zone = hub.settings.timezone
    return render(
        request,
        "public.html",
        t=t,
        session=session_of(request, hub),
        data=_page_data(request, t),
        alarms_html=_fragment(
            "alarms", t.lang, zone, alarms=tuple(alarms[:BANNERS]), more=len(alarms) - BANNERS
        ),
        lists=_fragment(
            "lists",
            t.lang,
            zone,
            items=tuple(items),
            meetings=meetings,
            met=tuple(met.values()),
            today=now_local.date().isoformat(),
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
    meetings: tuple[tuple[Meeting, bool], ...] = (),
    met: tuple[Meeting, ...] = (),
    today: str = "",
    more: int = 0,
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
        iso=iso_text,
        alarms=alarms,
        items=items,
        meetings=meetings,
        met={m.id: m for m in met},
        more=more,
        **_helpers(t, tz, today),
    )
    return Markup(html)


@router.get("/a/{aid}", response_class=HTMLResponse)
def announcement_page(request: Request, aid: str) -> HTMLResponse:
    hub = hub_of(request)
    t = translator(request)
    session = session_of(request, hub)
    a = read_models.published(hub.store, aid) if len(aid) <= 64 else None
    if a is None:
        return not_found(request, session, "pub.not_found_text")
    url = f"{base_url(request)}/a/{a.id}"
    today = local_time(hub.clock.now().timestamp(), hub.settings.tz).date().isoformat()
    return render(
        request,
        "public_announcement.html",
        t=t,
        session=session,
        data=_page_data(request, t, announcement=a.id),
        a=a,
        url=url,
        qr=qr_svg(url, t("pub.qr.this", title=a.title)),
        aired=read_models.aired(hub.store, a.id, AIRED),
        # Each page links the other: the one it follows up (in ``a``), and its follow-up.
        followed=read_models.follow_up(hub.store, a.id),
        meeting=meeting_rows.of(hub.store, [a.id]).get(a.id),
        on_air=on_air(hub),
        **_helpers(t, hub.settings.tz, today),
    )
