"""The staff's first page (``/app/``): devices at a glance, open alerts, what is on air and
what plays next, and the head's stop button."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from hub.web import views
from hub.web.forms import read_fields
from hub.web.public_pages import on_air
from hub.web.render import hub_of, render, translator
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
    )


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
