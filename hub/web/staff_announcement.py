"""One announcement for the staff (``/app/announcements/{id}``): what it says, to whom,
when, who wrote and approved it, its audio with its one length, every broadcast of it
from the as-run log, what follows it up, and what the person may do about it.

The schedule's cards, the week and the history's rows link here. The actions are the
forms that already exist elsewhere, posted from here (approve, cancel, stop: their routes
in :mod:`hub.web.staff_schedule` and :mod:`hub.web.staff_dashboard`), or links to them
(edit on the compose page, ending an emergency on the dashboard); none is done twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from hub.app import Hub
from hub.broadcast.recurrence import local_naive
from hub.clock import iso, local_time
from hub.store import announcement_view as view
from hub.store import read_models
from hub.web.public_pages import EMERGENCY_BANNER_S, on_air
from hub.web.render import hub_of, not_found, render, translator
from hub.web.session import require_page
from hub.web.staff_schedule import lengths_of
from hub.web.staff_words import detail_text, zones_text
from hub.words import Translator
from hub.words.lengths import cut_text
from hub.words.schedule import describe_schedule
from hub.words.times import local_text, ts_of, when_text

router = APIRouter(include_in_schema=False)

#: Broadcasts listed (an hourly one for a month is 720: the newest are what matters).
AIRED_ROWS = 100
FOLLOW_UPS = 20
#: Statuses of a broadcast cut short: its length on air is said ("dừng sau 0:12").
CUT = ("preempted", "cancelled", "interrupted", "failed")


def aired_row(
    t: Translator,
    hub: Hub,
    now: float,
    *,
    status: str,
    scheduled_for: float,
    started_at: float | None,
    ended_at: float | None,
    zones: Sequence[str],
    detail: str | None,
) -> dict[str, Any]:
    """One broadcast as the history and the announcement's page list it. One played in
    full lasts what its announcement says (one length, chimes and repeats in it); one cut
    short says when it was cut."""
    tz = hub.settings.tz
    return {
        "status": status,
        "scheduled": when_text(t, scheduled_for, tz, now),
        "scheduled_iso": iso(int(scheduled_for)),
        "started": f"{local_time(started_at, tz):%H:%M:%S}" if started_at else "",
        "cut": (
            cut_text(t, ended_at - started_at) if status in CUT and started_at and ended_at else ""
        ),
        "zones": zones_text(t, zones, hub.settings.gpio.zone_names),
        "detail": detail_text(t, detail),
    }


def _aired(hub: Hub, t: Translator, aid: str, now: float) -> list[dict[str, Any]]:
    return [
        aired_row(
            t,
            hub,
            now,
            status=b.status,
            scheduled_for=b.scheduled_for,
            started_at=b.started_at,
            ended_at=b.ended_at,
            zones=b.zones,
            detail=b.detail,
        )
        for b in view.broadcasts(hub.store, aid, AIRED_ROWS)
    ]


def _page(request: Request, hub: Hub, aid: str) -> HTMLResponse:
    session = require_page(request, hub, "head", "technician")
    t = translator(request)
    a = hub.announcements.get(aid, staff=True) if len(aid) <= 64 else None
    if a is None:
        return not_found(request, session, "annp.not_found")
    tz = hub.settings.tz
    now = hub.clock.now().timestamp()
    user = session.user
    head = user.has("head")
    start_local = local_naive(datetime.fromisoformat(a["start_at"].replace("Z", "+00:00")), tz)
    live = a["status"] in ("scheduled", "draft")
    playing = on_air(hub)
    in_force = any(
        e.id == aid for e in read_models.in_force(hub.store, now, now - EMERGENCY_BANNER_S)
    )
    next_run = ts_of(a["next_run"])
    expires = ts_of(a["expires_at"])
    follows = view.title_of(hub.store, a["corrects"]) if a["corrects"] else None
    return render(
        request,
        "staff_announcement.html",
        t=t,
        session=session,
        active="schedule",
        data={"page": "announcement", "announcement": aid},
        a=a,
        words=describe_schedule(a["rrule"], start_local, t.lang),
        start=local_text(t, start_local),
        next_run=when_text(t, next_run, tz, now) if next_run else "",
        expires=when_text(t, expires, tz, now) if expires else "",
        zones=zones_text(t, a["zones"], hub.settings.gpio.zone_names),
        lengths=lengths_of(hub, t, a, view.recording_seconds(hub.store, a.get("audio_id"))),
        aired=_aired(hub, t, aid, now),
        follows=follows,
        follow_ups=view.follow_ups(hub.store, aid, FOLLOW_UPS),
        approval=hub.settings.announcements.require_approval,
        public=a.get("published") and a["status"] in ("scheduled", "done", "expired"),
        # The actions, each the existing form's or a link to it.
        may_edit=head and live,
        may_cancel=head and live,
        may_approve=head and a["status"] == "draft" and a.get("created_by") != user.username,
        may_stop=head and playing is not None and playing["id"] == aid,
        may_end=head and in_force,
        in_force=in_force,
        on_air_now=playing is not None and playing["id"] == aid,
        when_ts=lambda ts: when_text(t, ts, tz, now),
        parse=ts_of,
        this_url=f"/app/announcements/{aid}",
    )


@router.get("/app/announcements/{aid}", response_class=HTMLResponse)
def announcement_page(request: Request, aid: str) -> HTMLResponse:
    return _page(request, hub_of(request), aid)
