"""The technicians' pages: devices (``/app/devices``), one device with its charts, alerts.

Read through :mod:`hub.web.views`, worded by :mod:`hub.web.device_text` (no raw key on a
page); a device's names are set on its page through the devices service
(:meth:`hub.services.devices.Devices.rename`, checked and audited, as
``PATCH /api/devices/{id}``); an alert is acknowledged through the alert service
(:class:`hub.services.alerts.Alerts`), as ``POST /api/alerts/{id}/ack``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from devices.events import DEVICE_KINDS
from hub.app import Hub
from hub.errors import NotFound
from hub.services.devices import NAME_FIELDS, NAME_LIMITS, NamingInvalid
from hub.store.devices import Device
from hub.web import device_text as dt
from hub.web import firing_views, staff_dead_letters, views
from hub.web.charts import line_chart
from hub.web.render import hub_of, not_found, read_form, render, translator
from hub.web.session import Session, form_session, require_page, safe_next
from hub.words import Translator
from hub.words.devices import spoken_name

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
        # What the hub refused from MQTT lately: a link with the count, never hidden.
        refused=staff_dead_letters.summary(hub, t),
        key_metrics=lambda d: [
            (dt.metric_label(t, n), dt.metric_text(t, n, d.metrics[n]))
            for n in views.ordered_metrics(d.metrics)
            if n not in views.NOT_CHARTED and not n.endswith(views.COUNTERS_SUFFIX)
        ][:3],
    )


def _chart_summary(t: Translator, label: str, lo: str, hi: str, last: str) -> str:
    return t("chart.summary", label=label, min=lo, max=hi, last=last)


@router.get("/app/devices/{device_id}", response_class=HTMLResponse)
def device_page(request: Request, device_id: str, range: str = "24h", ok: str = "") -> HTMLResponse:
    hub = hub_of(request)
    session = require_page(request, hub, "technician")
    t = translator(request)
    d = views.device(hub, device_id)
    if d is None:
        return not_found(request, session, "error.not_found_text")
    if range not in views.RANGES:
        range = "24h"
    notice = t("devname.saved") if ok == "names" else ""
    return _device_page(request, hub, session, t, d, range, notice=notice)


@router.post("/app/devices/{device_id}/names")
async def names_form(request: Request, device_id: str) -> Response:
    """The names form: saved (and back to the page, saying so), or the page again with
    what to fix next to each field (422)."""
    form = await read_form(request)
    hub = hub_of(request)
    back = f"/app/devices/{quote(device_id, safe='')}"
    session = await run_in_threadpool(
        form_session, request, hub, form.get("csrf"), "technician", back=back
    )
    changes = {f: form.get(f, "") for f in NAME_FIELDS if f in form}
    try:
        await run_in_threadpool(hub.devices.rename, device_id, changes, actor=session.user.username)
    except NotFound:
        return not_found(request, session, "error.not_found_text")
    except NamingInvalid as refused:
        t = translator(request)
        errors = {
            f: t(f"devname.err.{why}", n=NAME_LIMITS.get(f, 0))
            for f, why in refused.problems.items()
        }

        def again() -> HTMLResponse:
            d = views.device(hub, device_id)
            if d is None:
                return not_found(request, session, "error.not_found_text")
            return _device_page(
                request, hub, session, t, d, "24h", form=changes, errors=errors, status=422
            )

        return await run_in_threadpool(again)
    # Post/redirect/get: a reload does not send the form twice.
    return RedirectResponse(f"{back}?ok=names", status_code=303)


def _device_page(
    request: Request,
    hub: Hub,
    session: Session,
    t: Translator,
    d: Device,
    range: str,
    *,
    notice: str = "",
    form: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    device_id = d.id
    t1 = hub.clock.now().timestamp()
    t0 = t1 - views.RANGES[range]
    charts = []
    charted = [n for n in views.ordered_metrics(d.metrics) if n not in views.NOT_CHARTED]
    for i, name in enumerate(charted):
        label = dt.metric_label(t, name)
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
                    number=dt.number_for(t, name),
                    day=t.day,
                    summary=partial(_chart_summary, t, label),
                    chart_id=f"chart-{i}",
                ),
            }
        )
    # The form shows what a technician set; its hints, what stands in for an empty field.
    named = d.naming
    default_display = hub.settings.health.devices.get(d.id)
    return render(
        request,
        "device.html",
        t=t,
        session=session,
        active="devices",
        status=status,
        live=True,
        data={"devices": {d.id: d.status}, "page": "device"},
        d=d,
        reason=views.reason_text(t, d.status_reason) if d.status != "online" else "",
        range=range,
        ranges=list(views.RANGES),
        charts=charts,
        metrics=dt.metric_rows(t, d.metrics),
        info=[(dt.info_label(t, k), dt.info_text(t, v)) for k, v in d.info.items()],
        source=dt.source_label(t, d.source),
        notice=notice,
        form=form
        or {
            "display_name": named.display_name or "",
            "spoken_name": named.spoken_name or "",
            "location": named.location or "",
            "zone": named.zone or "",
        },
        errors=errors or {},
        limits=NAME_LIMITS,
        zones=hub.devices.zones,
        zone_name=hub.devices.zones.get(d.zone, d.zone) if d.zone else "",
        default_display=(default_display.name if default_display else None) or d.id,
        default_spoken=spoken_name(
            d.id, d.kind, display=named.display_name or d.name, metrics=d.metrics
        ),
        alerts=views.open_alerts(hub, device_id) + views.cleared_alerts(hub, device_id, 10),
        alert_title=lambda a: views.alert_title(t, a),
        events=dt.event_rows(t, hub.devices.events(device_id, limit=10)),
        refused=staff_dead_letters.summary(hub, t, device_id),
    )


@router.get("/app/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, ok: str = "") -> HTMLResponse:
    hub = hub_of(request)
    session = require_page(request, hub, "technician")
    t = translator(request)
    # What the rules hold raised comes first: during a flood the page never says that
    # everything is fine because no device is down; and a notification that went nowhere.
    notify = firing_views.notify_notice(hub, t)
    tz = hub.settings.tz
    return render(
        request,
        "alerts.html",
        t=t,
        session=session,
        active="alerts",
        live=True,
        data={"page": "alerts"},
        raised=firing_views.raised_rules(hub, t),
        notify_notice=notify,
        when=lambda ts: t.when(ts, tz),
        open=views.open_alerts(hub),
        cleared=views.cleared_alerts(hub),
        alert_title=lambda a: firing_views.alert_title_counted(t, a, notify),
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
