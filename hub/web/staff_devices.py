"""The technicians' pages: devices (``/app/devices``), one device with its charts, alerts.

Read through :mod:`hub.web.views`; an alert is acknowledged through the alert service
(:class:`hub.services.alerts.Alerts`), as ``POST /api/alerts/{id}/ack``.
"""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from devices.events import DEVICE_KINDS
from hub.errors import NotFound
from hub.web import views
from hub.web.charts import line_chart
from hub.web.render import hub_of, not_found, read_form, render, translator
from hub.web.session import form_session, require_page, safe_next
from hub.words import Translator

router = APIRouter(include_in_schema=False)


@router.get("/app/devices", response_class=HTMLResponse)
def devices_page(request: Request, kind: str | None = None, q: str = "") -> HTMLResponse:
    hub = hub_of(request)
    session = require_page(request, hub, "technician")
    t = translator(request)
    everything = views.devices(hub)
    kinds = [k for k in DEVICE_KINDS if any(d.kind == k for d in everything)]
    if kind not in kinds:
        kind = None
    q = q.strip()[:64]
    shown = [
        d
        for d in everything
        if (kind is None or d.kind == kind) and (not q or q.lower() in d.search_text)
    ]
    return render(
        request,
        "devices.html",
        t=t,
        session=session,
        active="devices",
        live=True,
        data={"devices": {d.id: d.status for d in everything}, "page": "devices"},
        cards=shown,
        kinds=kinds,
        kind=kind,
        q=q,
        total=len(everything),
        key_metrics=lambda d: [
            (views.metric_label(t, n), views.metric_text(t, n, d.metrics[n]))
            for n in views.ordered_metrics(d.metrics)
            if n not in views.NOT_CHARTED and not n.endswith(views.COUNTERS_SUFFIX)
        ][:3],
    )


def _chart_summary(t: Translator, label: str, lo: str, hi: str, last: str) -> str:
    return t("chart.summary", label=label, min=lo, max=hi, last=last)


@router.get("/app/devices/{device_id}", response_class=HTMLResponse)
def device_page(request: Request, device_id: str, range: str = "24h") -> HTMLResponse:
    hub = hub_of(request)
    session = require_page(request, hub, "technician")
    t = translator(request)
    d = views.device(hub, device_id)
    if d is None:
        return not_found(request, session, "error.not_found_text")
    if range not in views.RANGES:
        range = "24h"
    t1 = hub.clock.now().timestamp()
    t0 = t1 - views.RANGES[range]
    charts = []
    charted = [n for n in views.ordered_metrics(d.metrics) if n not in views.NOT_CHARTED]
    for i, name in enumerate(charted):
        label = views.metric_label(t, name)
        points = views.series(hub, device_id, name, t0, t1)
        charts.append(
            {
                "name": name,
                "label": label,
                "unit": views.metric_unit(name),
                "empty": not points,
                "svg": line_chart(
                    points,
                    t0=t0,
                    t1=t1,
                    tz=hub.settings.tz,
                    label=label,
                    unit=views.metric_unit(name),
                    number=t.number,
                    day=t.day,
                    summary=partial(_chart_summary, t, label),
                    chart_id=f"chart-{i}",
                ),
            }
        )
    return render(
        request,
        "device.html",
        t=t,
        session=session,
        active="devices",
        live=True,
        data={"devices": {d.id: d.status}, "page": "device"},
        d=d,
        reason=views.reason_text(t, d.status_reason) if d.status != "online" else "",
        range=range,
        ranges=list(views.RANGES),
        charts=charts,
        metrics=[
            (views.metric_label(t, n), views.metric_text(t, n, d.metrics[n]))
            for n in views.ordered_metrics(d.metrics)
        ],
        alerts=views.open_alerts(hub, device_id) + views.cleared_alerts(hub, device_id, 10),
        alert_title=lambda a: views.alert_title(t, a),
        events=views.recent_events(hub, t, device_id),
    )


@router.get("/app/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, ok: str = "") -> HTMLResponse:
    hub = hub_of(request)
    session = require_page(request, hub, "technician")
    t = translator(request)
    return render(
        request,
        "alerts.html",
        t=t,
        session=session,
        active="alerts",
        live=True,
        data={"page": "alerts"},
        open=views.open_alerts(hub),
        cleared=views.cleared_alerts(hub),
        alert_title=lambda a: views.alert_title(t, a),
        notice=t("alerts.acked_ok") if ok == "acked" else "",
    )


@router.post("/app/alerts/{alert_id}/ack")
async def ack_form(request: Request, alert_id: str) -> Response:
    form = await read_form(request)
    hub = hub_of(request)
    session = await run_in_threadpool(
        form_session, request, hub, form.get("csrf"), "technician", back="/app/"
    )
    try:
        await run_in_threadpool(hub.alerts.ack, alert_id, session.user.username)
    except NotFound:
        return not_found(request, session, "error.not_found_text")
    back = safe_next(form.get("next"), "/app/alerts")
    if back.startswith("/app/alerts"):
        back = "/app/alerts?ok=acked"
    return RedirectResponse(back, status_code=303)
