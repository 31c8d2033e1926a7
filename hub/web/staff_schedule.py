"""The schedule (``/app/schedule``): what is still to play, as a list or a week, approve and
cancel, an announcement's audio for the staff.

The list comes from the announcements service; the week adds the occurrences still to
come of each recurrence to what the playout log says of the past
(:mod:`hub.store.read_models`). Writes go through the service, with its checks and audit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from hub.api.errors import status_of
from hub.app import Hub
from hub.broadcast.announcements import Actor
from hub.broadcast.recurrence import Recurrence, local_naive, to_utc
from hub.broadcast.rendering import AUDIO_TYPES
from hub.clock import local_time
from hub.errors import HubError
from hub.store import read_models
from hub.web.forms import read_fields
from hub.web.render import SCRIPT_KEYS, hub_of, render, translator
from hub.web.session import Session, form_session, require_page
from hub.web.staff_words import zones_text
from hub.words import Translator, date_text
from hub.words.lengths import Lengths, lengths, said_times
from hub.words.schedule import describe_schedule
from hub.words.times import cap, ts_of, weekday_name, when_text

router = APIRouter(include_in_schema=False)

#: Strings staff.js needs (with the base page's own).
JS_KEYS = (*SCRIPT_KEYS, "sjs.")
#: Occurrences of one announcement drawn in a week (an hourly one would fill the page).
WEEK_PER_ANNOUNCEMENT = 40
SCHEDULE_OK = ("created", "draft", "updated", "cancelled", "approved")


def actor(session: Session) -> Actor:
    return Actor(session.user.username, session.user.role)


@dataclass(frozen=True, slots=True)
class Item:
    """An announcement as the schedule shows it."""

    id: str
    title: str
    text: str | None
    category: str
    priority: str
    status: str
    zones: list[str]
    next_run: float | None
    when: str
    words: str
    duration: str
    created_by: str | None
    approved_by: str | None
    may_approve: bool
    recurring: bool = False


def lengths_of(
    hub: Hub, t: Translator, a: Mapping[str, Any], recording_s: float | None = None
) -> Lengths:
    """An announcement's lengths (as the API gives it), in the words every page uses."""
    settings = hub.settings
    return lengths(
        t,
        broadcast_s=a["duration_s"],
        recording_s=recording_s,
        times=said_times(a["repeat"], a["priority"], settings.announcements.emergency_repeats),
        chimes=settings.audio.chime != "none",
    )


def items(hub: Hub, t: Translator, session: Session, *, limit: int = 200) -> list[Item]:
    """The announcements still to play (drafts too), soonest first."""
    tz = hub.settings.tz
    now = hub.clock.now().timestamp()
    user = session.user
    out = []
    for a in hub.announcements.list_all(staff=True, upcoming=True, limit=limit):
        if a["status"] not in ("scheduled", "draft"):
            continue
        start_local = local_naive(datetime.fromisoformat(a["start_at"].replace("Z", "+00:00")), tz)
        next_run = ts_of(a["next_run"])
        out.append(
            Item(
                id=a["id"],
                title=a["title"],
                text=a["text"],
                category=a["category"],
                priority=a["priority"],
                status=a["status"],
                zones=a["zones"],
                next_run=next_run,
                when=when_text(t, next_run, tz, now) if next_run else "",
                words=describe_schedule(a["rrule"], start_local, t.lang),
                duration=lengths_of(hub, t, a).broadcast,
                created_by=a.get("created_by"),
                approved_by=a.get("approved_by"),
                may_approve=a["status"] == "draft"
                and user.has("head")
                and a.get("created_by") != user.username,
                recurring=bool(a["rrule"]),
            )
        )
    return out


def _recurrence(a: read_models.Planned, tz: tzinfo) -> Recurrence | None:
    expires = datetime.fromtimestamp(a.expires_at, UTC) if a.expires_at else None
    try:
        return Recurrence(a.start_local, tz, a.rrule, a.exdates, expires)
    except (ValueError, TypeError):
        return None


def _occurrences(
    hub: Hub, lo: datetime, hi: datetime, now: datetime
) -> dict[tuple[str, float], dict[str, Any]]:
    """The broadcasts in [lo, hi): occurrences still to come from the recurrences, and
    what the playout log says of the past (and of what is on air)."""
    tz = hub.settings.tz
    found: dict[tuple[str, float], dict[str, Any]] = {}
    for a in read_models.planned(hub.store):
        rec = _recurrence(a, tz)
        if rec is None:
            continue
        for at in rec.between(max(lo, now), hi, inclusive=True)[:WEEK_PER_ANNOUNCEMENT]:
            found[(a.id, at.timestamp())] = {
                "id": a.id,
                "title": a.title,
                "priority": a.priority,
                "status": "draft" if a.status == "draft" else "upcoming",
                "at": at.timestamp(),
            }
    if lo < now:
        past = read_models.logged(
            hub.store, since=lo.timestamp(), until=hi.timestamp(), newest_first=False
        )
        for b in past:
            found[(b.announcement_id, b.scheduled_for)] = {
                "id": b.announcement_id,
                "title": b.title,
                "priority": b.priority,
                "status": b.status,
                "at": b.scheduled_for,
            }
    return found


def _week_bounds(monday: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """A village week, Monday 00:00 to the next Monday 00:00 (village time), in UTC."""
    return (
        to_utc(datetime.combine(monday, time()), tz),
        to_utc(datetime.combine(monday + timedelta(days=7), time()), tz),
    )


def _week_title(t: Translator, monday: date) -> str:
    sunday = monday + timedelta(days=6)
    return t(
        "sched.week_of",
        start=date_text(monday, t.lang, year=monday.year != sunday.year),
        end=date_text(sunday, t.lang),
    )


def week_view(hub: Hub, t: Translator, offset: int) -> dict[str, Any]:
    """Seven days from Monday (a Vietnamese week: Monday to Sunday, ``offset`` weeks from
    the one holding today), each with its broadcasts.

    This week's view also says what the next week holds: on a Sunday (and a Saturday
    evening) this week is nearly over and "Theo tuần" would otherwise show six grey days
    and hide that tomorrow is full; the head asks "what is coming", not "which week".
    """
    tz = hub.settings.tz
    now = hub.clock.now()
    today = local_naive(now, tz).date()
    monday = today - timedelta(days=today.weekday()) + timedelta(weeks=offset)
    lo, hi = _week_bounds(monday, tz)
    found = _occurrences(hub, lo, hi, now)
    days = []
    for i in range(7):
        d = monday + timedelta(days=i)
        entries = sorted(
            (e for e in found.values() if _local_date(e["at"], tz) == d), key=lambda e: e["at"]
        )
        for e in entries:
            e["time"] = f"{local_time(e['at'], tz):%H:%M}"
        days.append(
            {
                "date": d,
                "weekday": cap(weekday_name(t, d)),
                "label": date_text(d, t.lang, year=False),
                "today": d == today,
                "past": d < today,
                "entries": entries,
            }
        )
    coming = None
    if offset == 0:
        next_monday = monday + timedelta(weeks=1)
        ahead = sorted(
            _occurrences(hub, *_week_bounds(next_monday, tz), now).values(), key=lambda e: e["at"]
        )
        coming = {
            "title": _week_title(t, next_monday),
            "count": len(ahead),
            "first": when_text(t, ahead[0]["at"], tz, now.timestamp()) if ahead else "",
            "first_title": ahead[0]["title"] if ahead else "",
        }
    return {
        "days": days,
        "offset": offset,
        "title": _week_title(t, monday),
        "coming": coming,
        "last_day": today.weekday() == 6 and offset == 0,
    }


def _local_date(ts: float, tz: tzinfo) -> date:
    return local_time(ts, tz).date()


@router.get("/app/schedule", response_class=HTMLResponse)
def schedule_page(
    request: Request, view: str = "list", week: int = 0, ok: str = ""
) -> HTMLResponse:
    hub = hub_of(request)
    session = require_page(request, hub, "head", "technician")
    return _schedule(request, hub, session, translator(request), view=view, offset=week, ok=ok)


def _schedule(
    request: Request,
    hub: Hub,
    session: Session,
    t: Translator,
    *,
    view: str = "list",
    offset: int = 0,
    ok: str = "",
    error: str = "",
    status: int = 200,
) -> HTMLResponse:
    offset = max(-52, min(52, offset))
    view = "week" if view == "week" else "list"
    return render(
        request,
        "staff_schedule.html",
        t=t,
        session=session,
        active="schedule",
        status=status,
        data={
            "page": "schedule",
            "t": t.subset(JS_KEYS),
            "mark": request.app.state.bus.mark,
        },
        view=view,
        items=items(hub, t, session) if view == "list" else [],
        wk=week_view(hub, t, offset) if view == "week" else None,
        head=session.user.has("head"),
        approval=hub.settings.announcements.require_approval,
        notice=t(f"sched.ok.{ok}") if ok in SCHEDULE_OK else "",
        error=error,
        zones_text=lambda z: zones_text(t, z, hub.settings.gpio.zone_names),
    )


@router.get("/app/partials/upcoming", response_class=HTMLResponse)
def upcoming_partial(request: Request, full: bool = False) -> HTMLResponse:
    """The next broadcasts alone (the dashboard's five, or the schedule's cards with
    ``full``): the pages fetch it again when the stream says something changed."""
    hub = hub_of(request)
    session = require_page(request, hub, "head", "technician")
    t = translator(request)
    return render(
        request,
        "staff_upcoming.html",
        t=t,
        session=session,
        upcoming=items(hub, t, session, limit=200 if full else 5),
        full=full,
        head=session.user.has("head"),
        approval=hub.settings.announcements.require_approval,
        zones_text=lambda z: zones_text(t, z, hub.settings.gpio.zone_names),
    )


async def _announcement_action(request: Request, aid: str, what: str) -> Response:
    fields = await read_fields(request)
    hub = hub_of(request)
    session = await run_in_threadpool(form_session, request, hub, fields.one("csrf"), "head")
    service = hub.announcements
    call = service.cancel if what == "cancelled" else service.approve
    try:
        await run_in_threadpool(call, aid, actor(session))
    except HubError as e:
        t = translator(request)
        status = status_of(e) or 422
        key = {403: "sched.err.own", 404: "error.not_found_text"}.get(status, "")
        message = t(key) if key else f"{t('sched.err.refused')} ({e})"
        return await run_in_threadpool(
            lambda: _schedule(request, hub, session, t, error=message, status=status)
        )
    return RedirectResponse(f"/app/schedule?ok={what}", status_code=303)


@router.post("/app/announcements/{aid}/cancel")
async def cancel_form(request: Request, aid: str) -> Response:
    return await _announcement_action(request, aid, "cancelled")


@router.post("/app/announcements/{aid}/approve")
async def approve_form(request: Request, aid: str) -> Response:
    return await _announcement_action(request, aid, "approved")


@router.get("/app/announcements/{aid}/audio")
def announcement_audio(request: Request, aid: str) -> Response:
    """An announcement's rendered audio for the staff (drafts too), with the session."""
    hub = hub_of(request)
    require_page(request, hub, "head", "technician")
    path = hub.announcements.audio_file(aid, staff=True)
    if path is None:
        raise HTTPException(404, f"no audio for announcement {aid!r}")
    return FileResponse(path, media_type=AUDIO_TYPES.get(path.suffix, "application/octet-stream"))
