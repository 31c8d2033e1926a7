"""Technicians' routes: devices, their names, metric series, events, alerts, dead letters.

Thin: each route reads its parameters, calls :mod:`hub.services.devices` or
:mod:`hub.services.alerts` and encodes the records; a ``NotFound`` or ``Invalid`` from a
service becomes its status in :mod:`hub.api.errors`. ``PATCH /api/devices/{id}`` sets
what a device is called (the pages, notifications) and said (the loudspeakers).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from hub.api.deps import HubDep, Technician
from hub.api.errors import documented
from hub.api.schemas import (
    AlertOut,
    DeadLetterOut,
    DeviceDetailOut,
    DeviceOut,
    EventOut,
    PointOut,
    json_of,
)
from hub.api.times import parse_time
from hub.clock import iso
from hub.services.alerts import StateFilter
from hub.services.devices import NAME_LIMITS, Resolution
from hub.store.alerts import alert_json
from hub.store.devices import dead_letter_json, device_json, event_json

router = APIRouter(tags=["devices"])

Limit = Annotated[int, Query(ge=1, le=5000, description="At most this many, newest first.")]


class DeviceNamesIn(BaseModel):
    """The names to change; a field left out stays, null or "" goes back to the default."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(
        None,
        max_length=NAME_LIMITS["display_name"],
        description="What the pages and notifications call it (default: the config file's "
        "name, else its id).",
    )
    spoken_name: str | None = Field(
        None,
        max_length=NAME_LIMITS["spoken_name"],
        description="What the loudspeakers say for it, in words (default: the display "
        'name without the id, else its kind and number: "cảm biến mực nước số 1").',
    )
    location: str | None = Field(
        None, max_length=NAME_LIMITS["location"], description="Where it stands, in words."
    )
    zone: str | None = Field(
        None, max_length=64, description="The loudspeaker zone it stands in (gpio.zones)."
    )


class NamedDeviceOut(DeviceOut):
    spoken_name: str = Field(description="What the loudspeakers say for it.")
    location: str = Field(description="Where it stands (empty: not said).")
    zone: str | None = Field(description="Its loudspeaker zone.")
    named: dict[str, str | None] = Field(description="What a technician set (null: default).")


@router.get(
    "/api/devices",
    response_class=Response,
    responses={
        200: json_of(list[DeviceOut]),
        304: {"description": "Unchanged since the ETag sent in If-None-Match"},
        **documented(401, 403, 422),
    },
)
def list_devices(
    request: Request,
    hub: HubDep,
    user: Technician,
    kind: str | None = None,
    status: Literal["online", "degraded", "offline", "unknown"] | None = None,
) -> Response:
    """Every device: ``[{"id", "kind", "name", "status", "last_seen", "metrics", ...}]``.

    Dashboards poll it: the list is encoded once per change of the devices table, and its
    ETag turns a poll of an unchanged list into a 304."""
    listing = hub.devices.listing(kind, status)
    headers = {"ETag": listing.etag, "Cache-Control": "private, no-cache"}
    if listing.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(listing.body, media_type="application/json", headers=headers)


@router.get(
    "/api/devices/{device_id}",
    response_model=None,
    responses={200: json_of(DeviceDetailOut), **documented(401, 403, 404, 422)},
)
def get_device(hub: HubDep, user: Technician, device_id: str) -> dict[str, Any]:
    """One device, with its open alerts (the newest first)."""
    d = device_json(hub.devices.get(device_id))
    d["open_alerts"] = [alert_json(a) for a in hub.alerts.query("open", device_id, None)]
    return d


@router.patch(
    "/api/devices/{device_id}",
    response_model=None,
    responses={200: json_of(NamedDeviceOut), **documented(400, 401, 403, 404, 413, 422)},
)
def rename_device(
    hub: HubDep, user: Technician, device_id: str, names: DeviceNamesIn
) -> dict[str, Any]:
    """Set what a device is called and said, where it stands and its zone; audited."""
    changes = {f: getattr(names, f) for f in names.model_fields_set}
    return device_json(hub.devices.rename(device_id, changes, actor=user.username))


@router.get(
    "/api/devices/{device_id}/metrics",
    response_model=None,
    responses={200: json_of(list[PointOut]), **documented(401, 403, 404, 422)},
)
def device_metrics(
    hub: HubDep,
    user: Technician,
    device_id: str,
    name: Annotated[str, Query(min_length=1, max_length=128, description="Metric name")],
    since: str | None = None,
    until: str | None = None,
    resolution: Resolution = "auto",
    limit: Annotated[int, Query(ge=1, le=20_000)] = 5000,
) -> list[dict[str, Any]]:
    """A time series ``[{"ts", "value"}]``, oldest first. ``auto`` reads raw readings
    while they are kept and hourly averages beyond."""
    tz = hub.settings.tz
    points = hub.devices.series(
        device_id,
        name,
        parse_time(since, "since", tz),
        parse_time(until, "until", tz),
        resolution,
        limit,
    )
    return [{"ts": iso(ts), "value": value} for ts, value in points]


@router.get(
    "/api/events",
    response_model=None,
    responses={200: json_of(list[EventOut]), **documented(401, 403, 422)},
)
def list_events(
    hub: HubDep,
    user: Technician,
    device: str | None = None,
    since: str | None = None,
    limit: Limit = 100,
) -> list[dict[str, Any]]:
    t0 = parse_time(since, "since", hub.settings.tz)
    return [event_json(e) for e in hub.devices.events(device, t0, limit)]


@router.get(
    "/api/alerts",
    response_model=None,
    responses={200: json_of(list[AlertOut]), **documented(401, 403, 422)},
)
def list_alerts(
    hub: HubDep,
    user: Technician,
    state: StateFilter = "all",
    device: str | None = None,
    limit: Limit = 200,
) -> list[dict[str, Any]]:
    return [alert_json(a) for a in hub.alerts.query(state, device, limit)]


@router.get(
    "/api/dead-letters",
    response_model=None,
    responses={200: json_of(list[DeadLetterOut]), **documented(401, 403, 422)},
)
def list_dead_letters(
    hub: HubDep, user: Technician, since: str | None = None, limit: Limit = 100
) -> list[dict[str, Any]]:
    """Messages that could not be decoded, with the reason (payload shown as text or hex)."""
    t0 = parse_time(since, "since", hub.settings.tz)
    return [dead_letter_json(d) for d in hub.devices.dead_letters(t0, limit)]
