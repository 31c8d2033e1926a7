"""The staff's first page (``/app/``): devices at a glance, open alerts, what is on air and
what plays next, the head's stop button, and, while the hub's clock is not trusted, the
hub's time beside the phone's with the head's button to set it (``static/clock.js`` reads
the phone's clock; without script the head types the phone's time)."""

from __future__ import annotations

from datetime import datetime, tzinfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from hub.api.errors import status_of
from hub.errors import HubError, Invalid
from hub.services.clock import ClockNotSettable, phone_seconds
from hub.web import views
from hub.web.forms import read_fields
from hub.web.public_pages import on_air
from hub.web.render import error_page, hub_of, render, translator
from hub.web.session import form_session, require_page, safe_next
from hub.web.staff_schedule import actor, items
from hub.web.staff_words import zones_text
from hub.words.times import ts_of

router = APIRouter(include_in_schema=False)

#: Broadcasts and alerts the dashboard lists.
SHOWN = 5


@router.get("/app", include_in_schema=False)
def app_root() -> RedirectResponse:
    return RedirectResponse("/app/", status_code=302)


@router.get("/app/", response_class=HTMLResponse)
def dashboard(request: Request, ok: str = "") -> HTMLResponse:
    hub = hub_of(request)
    session = require_page(request, hub)
    t = translator(request)
    staff = session.user.has("technician")
    cards = views.devices(hub) if staff else []
    clock = hub.clock_trust.state()
    return render(
        request,
        "dashboard.html",
        t=t,
        session=session,
        active="dashboard",
        live=True,
        data={"devices": {d.id: d.status for d in cards}, "page": "dashboard"},
        staff=staff,
        parse_iso=ts_of,
        counts=views.status_counts(cards),
        total=len(cards),
        alerts=views.open_alerts(hub)[:SHOWN] if staff else [],
        alert_title=lambda a: views.alert_title(t, a),
        announcements=hub.announcements,
        on_air=on_air(hub),
        upcoming=items(hub, t, session, limit=SHOWN),
        head=session.user.has("head"),
        full=False,
        zones_text=lambda z: zones_text(t, z, hub.settings.gpio.zone_names),
        notice=t(f"dash.ok.{ok}") if ok in ("stopped", "idle") else "",
        clock_set=ok == "clock",
        clock=clock,
        clock_text=lambda d: clock_text(d, hub.settings.tz),
        can_set_clock=clock.can_set and session.user.has("head"),
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
