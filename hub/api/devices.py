"""Technicians' reads: devices, their metric series, events, alerts and dead letters."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response

from hub.api.deps import HubDep, Technician, iso, parse_time
from hub.app import Hub

router = APIRouter(tags=["devices"])

Limit = Annotated[int, Query(ge=1, le=5000, description="At most this many, newest first.")]


def _device(row: sqlite3.Row, name_override: str | None) -> dict[str, Any]:
    return {
        "id": row["id"],
        "kind": row["kind"],
        "name": name_override or row["name"] or row["id"],
        "source": row["source"],
        "status": row["status"],
        "status_since": iso(row["status_since"]),
        "status_reason": row["status_reason"],
        "first_seen": iso(row["first_seen"]),
        "last_seen": iso(row["last_seen"]),
        "metrics": json.loads(row["metrics"]),
        "info": json.loads(row["info"]),
    }


@router.get(
    "/api/devices",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}}, 304: {"description": "Unchanged"}},
)
def list_devices(
    request: Request,
    hub: HubDep,
    user: Technician,
    kind: str | None = None,
    status: Literal["online", "degraded", "offline", "unknown"] | None = None,
) -> Response:
    """Every device: ``[{"id", "kind", "name", "status", "last_seen", "metrics", ...}]``.

    A village's full list is large (about 0.5 MB for 1,000 devices) and dashboards poll
    it: it is made once per change of the devices table (``ingest.stats.generation``, read
    before the query, so a newer table only means one more rebuild), then served as bytes,
    with an ETag that turns a poll of an unchanged list into a 304."""
    generation = hub.ingest.stats.generation
    cache: dict[tuple[str | None, str | None], tuple[int, bytes, str]]
    cache = request.app.state.__dict__.setdefault("devices_cache", {})
    entry = cache.get((kind, status))
    if entry is None or entry[0] != generation:
        body = json.dumps(
            _devices(hub, kind, status), ensure_ascii=False, separators=(",", ":")
        ).encode()
        etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
        if len(cache) >= 64:  # kind is free text: bound the keys
            cache.clear()
        entry = cache[(kind, status)] = (generation, body, etag)
    _, body, etag = entry
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


def _devices(hub: Hub, kind: str | None, status: str | None) -> list[dict[str, Any]]:
    sql, args = "SELECT * FROM devices WHERE 1=1", list[object]()
    if kind:
        sql += " AND kind=?"
        args.append(kind)
    if status:
        sql += " AND status=?"
        args.append(status)
    names = hub.settings.health.devices
    return [
        _device(r, names[r["id"]].name if r["id"] in names else None)
        for r in hub.store.query(sql + " ORDER BY kind, id", args)
    ]


@router.get("/api/devices/{device_id}")
def get_device(hub: HubDep, user: Technician, device_id: str) -> dict[str, Any]:
    row = hub.store.one("SELECT * FROM devices WHERE id=?", (device_id,))
    if row is None:
        raise HTTPException(404, f"no device {device_id!r}")
    names = hub.settings.health.devices
    d = _device(row, names[device_id].name if device_id in names else None)
    d["open_alerts"] = [
        _alert(a)
        for a in hub.store.query(
            "SELECT * FROM alerts WHERE device_id=? AND state='raised' ORDER BY raised_at DESC",
            (device_id,),
        )
    ]
    return d


@router.get("/api/devices/{device_id}/metrics")
def device_metrics(
    hub: HubDep,
    user: Technician,
    device_id: str,
    name: Annotated[str, Query(min_length=1, max_length=128, description="Metric name")],
    since: str | None = None,
    until: str | None = None,
    resolution: Literal["auto", "raw", "hour"] = "auto",
    limit: Annotated[int, Query(ge=1, le=20_000)] = 5000,
) -> list[dict[str, Any]]:
    """A time series ``[{"ts", "value"}]``, oldest first. ``auto`` reads raw readings
    while they are kept and hourly averages beyond."""
    if hub.store.one("SELECT 1 FROM devices WHERE id=?", (device_id,)) is None:
        raise HTTPException(404, f"no device {device_id!r}")
    now = hub.clock.now().timestamp()
    t1 = parse_time(until, "until", hub.settings.tz) or now
    t0 = parse_time(since, "since", hub.settings.tz) or t1 - 86_400
    if t0 > t1:
        raise HTTPException(422, "since is after until")
    raw_from = now - hub.settings.retention.events_days * 86_400
    if resolution == "hour" or (resolution == "auto" and (t0 < raw_from or t1 - t0 > 7 * 86_400)):
        rows = hub.store.query(
            "SELECT hour AS ts, sum / n AS value FROM metrics_rollup WHERE device_id=? AND name=?"
            " AND hour >= ? AND hour <= ? ORDER BY hour LIMIT ?",
            (device_id, name, t0 - t0 % 3600, t1, limit),
        )
    else:
        rows = hub.store.query(
            "SELECT ts, json_extract(data, '$.metrics.' || json_quote(?)) AS value FROM events"
            " WHERE device_id=? AND type='reading' AND ts >= ? AND ts <= ? AND value IS NOT NULL"
            " ORDER BY ts LIMIT ?",
            (name, device_id, t0, t1, limit),
        )
    return [{"ts": iso(r["ts"]), "value": r["value"]} for r in rows]


@router.get("/api/events")
def list_events(
    hub: HubDep,
    user: Technician,
    device: str | None = None,
    since: str | None = None,
    limit: Limit = 100,
) -> list[dict[str, Any]]:
    sql, args = "SELECT * FROM events WHERE 1=1", list[object]()
    if device:
        sql += " AND device_id=?"
        args.append(device)
    t0 = parse_time(since, "since", hub.settings.tz)
    if t0 is not None:
        sql += " AND ts >= ?"
        args.append(t0)
    rows = hub.store.query(sql + " ORDER BY ts DESC, id DESC LIMIT ?", [*args, limit])
    return [
        {
            "id": r["id"],
            "ts": iso(r["ts"]),
            "received_at": iso(r["received_at"]),
            "device_id": r["device_id"],
            "type": r["type"],
            "topic": r["topic"],
            "data": json.loads(r["data"]),
        }
        for r in rows
    ]


def _alert(r: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": r["id"],
        "device_id": r["device_id"],
        "rule": r["rule"],
        "severity": r["severity"],
        "state": r["state"],
        "message": r["message"],
        "raised_at": iso(r["raised_at"]),
        "cleared_at": iso(r["cleared_at"]),
        "acked_by": r["acked_by"],
        "acked_at": iso(r["acked_at"]),
    }


@router.get("/api/alerts")
def list_alerts(
    hub: HubDep,
    user: Technician,
    state: Literal["open", "raised", "cleared", "all"] = "all",
    device: str | None = None,
    limit: Limit = 200,
) -> list[dict[str, Any]]:
    sql, args = "SELECT * FROM alerts WHERE 1=1", list[object]()
    if state in ("open", "raised"):
        sql += " AND state='raised'"
    elif state == "cleared":
        sql += " AND state='cleared'"
    if device:
        sql += " AND device_id=?"
        args.append(device)
    return [
        _alert(r) for r in hub.store.query(sql + " ORDER BY raised_at DESC LIMIT ?", [*args, limit])
    ]


@router.get("/api/dead-letters")
def list_dead_letters(
    hub: HubDep, user: Technician, since: str | None = None, limit: Limit = 100
) -> list[dict[str, Any]]:
    """Messages that could not be decoded, with the reason (payload shown as text or hex)."""
    t0 = parse_time(since, "since", hub.settings.tz) or 0.0
    rows = hub.store.query(
        "SELECT * FROM dead_letters WHERE received_at >= ? ORDER BY id DESC LIMIT ?", (t0, limit)
    )
    out = []
    for r in rows:
        raw: bytes = r["payload"]
        try:
            text, hexed = raw.decode("utf-8"), None
        except UnicodeDecodeError:
            text, hexed = None, raw.hex()
        out.append(
            {
                "id": r["id"],
                "received_at": iso(r["received_at"]),
                "topic": r["topic"],
                "size": r["size"],
                "reason": r["reason"],
                "payload": text,
                "payload_hex": hexed,
            }
        )
    return out
