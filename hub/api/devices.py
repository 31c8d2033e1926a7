"""Technicians' routes: devices, their names, metric series, events, alerts, dead letters.

Thin: each route reads its parameters, calls :mod:`hub.services.devices` or
:mod:`hub.services.alerts` and encodes the records; a ``NotFound`` or ``Invalid`` from a
service becomes its status in :mod:`hub.api.errors`. ``PATCH /api/devices/{id}`` sets
what a device is called (the pages, notifications) and said (the loudspeakers).
"""

from __future__ import annotations

import json
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
    Time,
    json_of,
)
from hub.api.times import parse_time
from hub.clock import iso
from hub.services.alerts import StateFilter
from hub.services.devices import DEFAULT_POINTS, MAX_POINTS, NAME_LIMITS, Resolution
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


class SeriesPointOut(BaseModel):
    """One point of a series: the mean of the readings in its bucket, at their mean time."""

    ts: Time = Field(description="ISO 8601, UTC: the mean time of the readings averaged")
    value: float = Field(description="Their mean")
    min: float = Field(description="The lowest of them")
    max: float = Field(description="The highest of them")
    n: int = Field(description="How many readings (1: a reading as stored)")


@router.get(
    "/api/devices/{device_id}/metrics",
    response_class=Response,
    responses={200: json_of(list[SeriesPointOut]), **documented(401, 403, 404, 422)},
)
def device_metrics(
    hub: HubDep,
    user: Technician,
    device_id: str,
    name: Annotated[str, Query(min_length=1, max_length=128, description="Metric name")],
    since: Annotated[
        str | None, Query(description="ISO 8601 or epoch seconds; default: 24 hours before until")
    ] = None,
    until: Annotated[
        str | None, Query(description="ISO 8601 or epoch seconds; default: now")
    ] = None,
    resolution: Annotated[
        Resolution,
        Query(description="raw readings, hourly rollups, or auto: both, as each is kept"),
    ] = "auto",
    points: Annotated[
        int,
        Query(
            ge=1,
            le=MAX_POINTS,
            description="At most this many points: the range is cut into this many equal "
            "buckets, each averaged (with its min and max); a series that fits comes as stored",
        ),
    ] = DEFAULT_POINTS,
) -> Response:
    """A time series ``[{"ts", "value", "min", "max", "n"}]``, oldest first, up to the
    newest reading: never cut, downsampled in the database to ``points``. A year's chart
    is one request (the hourly rollups, then the raw readings still kept)."""
    tz = hub.settings.tz
    series = hub.devices.series(
        device_id,
        name,
        parse_time(since, "since", tz),
        parse_time(until, "until", tz),
        resolution,
        points,
    )
    # Encoded here: FastAPI's generic encoder took as long as the database for 500 points.
    body = [
        {"ts": iso(b.ts), "value": b.value, "min": b.min, "max": b.max, "n": b.n} for b in series
    ]
    return Response(json.dumps(body, allow_nan=False), media_type="application/json")


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
