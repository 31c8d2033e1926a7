"""The staff's first page (``/app/``): devices at a glance, open alerts, what is on air and
what plays next, the head's stop button, the emergencies in force with the head's "end it"
(and its all clear or correction), the count of new residents' reports, and, while the
hub's clock is not trusted, the hub's time beside the phone's with the head's button to set
it (``static/clock.js`` reads the phone's clock; without script the head types the phone's
time). The on-air card says what is true now: playing, stopped, failed or idle; it follows
the playout over the live stream (``static/staff.js``). With speaker clusters, the card also
says which clusters hear the broadcast on air (or heard the last one): "Phát trên 5/6 cụm
loa; Xóm Tây mất kết nối"."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from hub.api.errors import status_of
from hub.app import Hub
from hub.broadcast.follow_up import FOLLOW_KINDS, FOLLOW_TEXT_LIMIT
from hub.clock import iso, local_time
from hub.errors import HubError, Invalid
from hub.services.clock import ClockNotSettable, phone_seconds
from hub.store import read_models
from hub.web import firing_views, views
from hub.web.forms import read_fields
from hub.web.public_pages import EMERGENCY_BANNER_S, on_air, stopped_on_air, who
from hub.web.render import SCRIPT_KEYS, error_page, hub_of, render, translator
from hub.web.session import form_session, require_page, safe_next
from hub.web.staff_schedule import actor, items
from hub.web.staff_words import clusters_text, zones_text
from hub.words import Translator
from hub.words.times import ts_of

router = APIRouter(include_in_schema=False)

#: Broadcasts and alerts the dashboard lists.
SHOWN = 5
#: A stop or a failure stays said on the on-air card this long after it ended.
ENDED_SHOWN_S = 900
#: The notices a redirect back to the dashboard may ask for.
NOTICES = ("idle", "emergency", "ended", "ended_follow")


def air_state(hub: Hub, t: Translator, sent: str = "") -> dict[str, Any]:
    """The on-air card, true now: ``playing``; ``stopped`` (by a person: at once, though
    the playout still runs the amplifier's tail); ``failed``; ``starting`` (an emergency
    just sent, not yet on air); else ``idle``. ``line`` says the stop or the failure."""
    state, now = hub.playout.state, hub.clock.now()
    tz = hub.settings.tz

    def hm(ts: float | None) -> str:
        return f"{local_time(ts or now.timestamp(), tz):%H:%M}"

    stop = hub.announcements.last_stop
    if state.state == "playing" and stop is not None and stopped_on_air(hub):
        line = t(
            "dash.air.stopped_what",
            title=stop.title or "",
            time=hm(stop.at.timestamp()),
            name=stop.by,
        )
        return {
            "state": "stopped",
            "id": stop.announcement_id,
            "line": line,
            "started_at": iso(stop.started_at),
        }
    if state.state == "playing":
        return {"state": "playing", "id": state.announcement_id, "title": state.title or ""}
    last = next(iter(read_models.logged(hub.store, limit=1)), None)
    ended = last.ended_at or last.started_at or last.scheduled_for if last else None
    if last is not None and ended is not None and now.timestamp() - ended < ENDED_SHOWN_S:
        if last.status == "cancelled" and (last.detail or "").startswith("stopped by"):
            why = (last.detail or "").split("; ")[0]
            by = why.removeprefix("stopped by ").removeprefix("user:")
            line = t("dash.air.stopped_what", title=last.title, time=hm(ended), name=by)
            return {"state": "stopped", "id": last.announcement_id, "line": line}
        if last.status == "failed":
            line = t(
                "dash.air.failed_what",
                title=last.title,
                time=hm(ended),
                reason=(last.detail or "").split("; clusters ")[0],
            )
            return {"state": "failed", "id": last.announcement_id, "line": line}
    row = hub.announcements.get(sent, staff=True) if sent and len(sent) <= 64 else None
    if row is not None and row["status"] == "scheduled" and row["next_run"]:
        return {"state": "starting", "id": sent, "line": t("dash.air.starting", title=row["title"])}
    return {"state": "idle"}


def clusters_line(hub: Hub, t: Translator) -> tuple[str, str]:
    """(heading, words) of the clusters on air now, else of the last broadcast; ("", "")
    without clusters or before any broadcast."""
    clusters = getattr(hub.playout.clusters, "clusters", None)
    if clusters is None:
        return "", ""
    now = clusters.on_air_note()
    if now is not None:
        return t("clusters.now"), clusters_text(t, now)
    last = next(iter(read_models.logged(hub.store, limit=1)), None)
    text = clusters_text(t, last.detail if last is not None else clusters.last_note)
    return (t("clusters.last"), text) if text else ("", "")


@router.get("/app", include_in_schema=False)
def app_root() -> RedirectResponse:
    return RedirectResponse("/app/", status_code=302)


@router.get("/app/", response_class=HTMLResponse)
def dashboard(request: Request, ok: str = "", a: str = "") -> HTMLResponse:
    hub = hub_of(request)
    session = require_page(request, hub)
    t = translator(request)
    staff = session.user.has("technician")
    cards = views.devices(hub) if staff else []
    clock = hub.clock_trust.state()
    head = session.user.has("head")
    now = hub.clock.now().timestamp()
    air = air_state(hub, t, a)
    # The words staff.js says the card's states in, beside app.js's own.
    words = {**t.subset(SCRIPT_KEYS), **t.subset(("dash.air.",))}
    return render(
        request,
        "dashboard.html",
        t=t,
        session=session,
        active="dashboard",
        live=True,
        data={
            "devices": {d.id: d.status for d in cards},
            "page": "dashboard",
            "air": air,
            "tz": hub.settings.timezone,
            "t": words,
        },
        staff=staff,
        parse_iso=ts_of,
        counts=views.status_counts(cards),
        total=len(cards),
        alerts=views.open_alerts(hub)[:SHOWN] if staff else [],
        alert_title=lambda a: views.alert_title(t, a),
        announcements=hub.announcements,
        on_air=on_air(hub),
        air=air,
        clusters=clusters_line(hub, t),
        in_force=read_models.in_force(hub.store, now, now - EMERGENCY_BANNER_S) if head else [],
        who=lambda kind_name: who(t, kind_name),
        follow_kinds=FOLLOW_KINDS,
        follow_limit=FOLLOW_TEXT_LIMIT,
        upcoming=items(hub, t, session, limit=SHOWN),
        head=head,
        full=False,
        zones_text=lambda z: zones_text(t, z, hub.settings.gpio.zone_names),
        # "stopped" is no notice: the on-air card itself says it.
        notice=t(f"dash.ok.{ok}") if ok in NOTICES else "",
        clock_set=ok == "clock",
        clock=clock,
        clock_text=lambda d: clock_text(d, hub.settings.tz),
        can_set_clock=clock.can_set and session.user.has("head"),
        # Whether scheduled broadcasts really wait for the clock (the card says which).
        clock_gates=hub.settings.announcements.require_clock_sync,
        notify_notice=firing_views.notify_notice(hub, t),
    )


def clock_text(d: datetime, tz: tzinfo) -> str:
    """19:30:05 01/12/2026 in the village's time: to the second, as clock.js writes the
    phone's."""
    return d.astimezone(tz).strftime("%H:%M:%S %d/%m/%Y")


@router.post("/app/broadcasts/stop")
async def stop_form(request: Request) -> Response:
    """The dashboard's stop button: the same call and audit as POST /api/broadcasts/stop."""
    fields = await read_fields(request)
    hub = hub_of(request)
    session = await run_in_threadpool(form_session, request, hub, fields.one("csrf"), "head")
    stopped = await run_in_threadpool(hub.announcements.stop_now, actor(session))
    back = safe_next(fields.one("next"), "/app/")
    return RedirectResponse(
        f"{back}{'&' if '?' in back else '?'}ok={'stopped' if stopped else 'idle'}",
        status_code=303,
    )


@router.post("/app/announcements/{aid}/end")
async def end_form(request: Request, aid: str) -> Response:
    """The dashboard's "end the emergency": the same service, checks and audit as POST
    /api/announcements/{id}/end; ``follow`` is none, all_clear or correction."""
    fields = await read_fields(request)
    hub = hub_of(request)
    session = await run_in_threadpool(form_session, request, hub, fields.one("csrf"), "head")
    t = translator(request)
    kind = fields.one("follow", "none")
    text = fields.one("text").strip()
    try:
        if kind not in ("none", *FOLLOW_KINDS):
            raise Invalid(f"follow: one of none, {', '.join(FOLLOW_KINDS)}")
        if kind != "none" and not text:
            raise Invalid(t("dash.emerg.text_needed"))
        if len(text) > FOLLOW_TEXT_LIMIT:
            raise Invalid(f"text: at most {FOLLOW_TEXT_LIMIT} characters")
        await run_in_threadpool(
            lambda: hub.announcements.end(
                aid,
                actor(session),
                kind=next((k for k in FOLLOW_KINDS if k == kind), None),
                text=text,
            )
        )
    except HubError as e:
        code = status_of(e) or 422
        return error_page(request, session=session, status=code, title="error.title", text=str(e))
    return RedirectResponse(
        f"/app/?ok={'ended' if kind == 'none' else 'ended_follow'}", status_code=303
    )


@router.post("/app/clock")
async def clock_form(request: Request) -> Response:
    """The dashboard's "set it from my phone": the same service, checks and audit as POST
    /api/clock. ``phone_time`` is the phone's Date.now() (clock.js); without script,
    ``phone_local`` is the phone's time as the head typed it (the village's time)."""
    fields = await read_fields(request)
    hub = hub_of(request)
    session = await run_in_threadpool(form_session, request, hub, fields.one("csrf"), "head")
    sent = fields.one("phone_time").strip() or fields.one("phone_local").strip()
    try:
        if not sent:
            raise Invalid(translator(request)("dash.clock.none_sent"))
        ts = phone_seconds(sent, hub.settings.tz)
        await run_in_threadpool(hub.clock_trust.set_from_phone, ts, actor=session.user.username)
    except ClockNotSettable as e:
        return error_page(request, session=session, status=503, title="error.title", text=str(e))
    except HubError as e:
        code = status_of(e) or 422
        return error_page(request, session=session, status=code, title="error.title", text=str(e))
    return RedirectResponse("/app/?ok=clock", status_code=303)
