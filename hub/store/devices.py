"""Devices repository: what ingest stored about the devices, read for the API and the pages.

The ``devices``, ``events``, ``metrics_rollup`` and ``dead_letters`` tables are written
by the ingest writer (hub.ingest) and trimmed by retention; here they are read, through
the calling thread's connection, into small frozen records. The one write is a device's
names (:func:`set_naming`, a technician's, from the devices service): columns of their own,
which the writer's upsert never touches.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hub.clock import iso

Point = tuple[float, float]  # (epoch seconds UTC, value)
#: What the monitor says of a device (hub.events.DeviceStatus), in the order pages list them.
STATUSES: tuple[str, ...] = ("online", "degraded", "offline", "unknown")


@dataclass(frozen=True, slots=True)
class Naming:
    """What a technician set for a device (None: not set; the config file's or a default)."""

    display_name: str | None = None
    spoken_name: str | None = None
    location: str | None = None
    zone: str | None = None


@dataclass(frozen=True, slots=True)
class Device:
    """A device as the monitor last judged it, with its latest metrics.

    ``name`` is its display name; ``spoken_name``, ``location`` and ``zone`` are what is
    in force (the devices service fills them from ``naming``, the config file, defaults).
    """

    id: str
    kind: str
    name: str
    status: str
    status_since: float | None
    status_reason: str | None
    source: str
    first_seen: float | None
    last_seen: float | None
    metrics: Mapping[str, float]
    info: Mapping[str, Any]
    naming: Naming = Naming()
    spoken_name: str = ""
    location: str = ""
    zone: str = ""

    @property
    def search_text(self) -> str:
        return f"{self.id} {self.name} {self.kind} {self.location}".lower()


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """A row of the event log: a reading, a status, a button press, an announce command."""

    id: int
    ts: float
    received_at: float
    device_id: str | None
    type: str
    topic: str
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    received_at: float
    topic: str
    size: int
    reason: str
    payload: bytes


def _device(r: sqlite3.Row) -> Device:
    return Device(
        id=r["id"],
        kind=r["kind"],
        name=r["name"] or r["id"],
        status=r["status"],
        status_since=r["status_since"],
        status_reason=r["status_reason"],
        source=r["source"],
        first_seen=r["first_seen"],
        last_seen=r["last_seen"],
        metrics=json.loads(r["metrics"]),
        info=json.loads(r["info"]),
        naming=_naming(r),
        location=r["location"] or "",
        zone=r["zone"] or "",
    )


def _naming(r: sqlite3.Row) -> Naming:
    return Naming(r["display_name"], r["spoken_name"], r["location"], r["zone"])


def list_devices(conn: sqlite3.Connection, kind: str | None, status: str | None) -> list[Device]:
    """Every device of ``kind`` in ``status`` (None: any), by kind then id."""
    sql, args = "SELECT * FROM devices WHERE 1=1", list[object]()
    if kind:
        sql += " AND kind=?"
        args.append(kind)
    if status:
        sql += " AND status=?"
        args.append(status)
    return [_device(r) for r in conn.execute(sql + " ORDER BY kind, id", args)]


def device(conn: sqlite3.Connection, device_id: str) -> Device | None:
    row = conn.execute("SELECT * FROM devices WHERE id=?", (device_id,)).fetchone()
    return None if row is None else _device(row)


def namings(conn: sqlite3.Connection) -> dict[str, Naming]:
    """What technicians set, of every device that has any of it."""
    rows = conn.execute(
        "SELECT id, display_name, spoken_name, location, zone FROM devices WHERE"
        " coalesce(display_name, spoken_name, location, zone) IS NOT NULL"
    )
    return {r["id"]: _naming(r) for r in rows}


def set_naming(conn: sqlite3.Connection, device_id: str, n: Naming) -> bool:
    """Store a device's names (inside the caller's transaction); False: no such device."""
    cur = conn.execute(
        "UPDATE devices SET display_name=?, spoken_name=?, location=?, zone=? WHERE id=?",
        (n.display_name, n.spoken_name, n.location, n.zone, device_id),
    )
    return cur.rowcount > 0


def exists(conn: sqlite3.Connection, device_id: str) -> bool:
    return conn.execute("SELECT 1 FROM devices WHERE id=?", (device_id,)).fetchone() is not None


def status_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """How many devices are in each status (only the statuses some device is in)."""
    rows = conn.execute("SELECT status, count(*) AS n FROM devices GROUP BY 1")
    return {r["status"]: r["n"] for r in rows}


def events(
    conn: sqlite3.Connection, device_id: str | None, since: float | None, limit: int
) -> list[LoggedEvent]:
    """The event log, newest first: of one device (or all), from ``since`` (or ever)."""
    sql, args = "SELECT * FROM events WHERE 1=1", list[object]()
    if device_id:
        sql += " AND device_id=?"
        args.append(device_id)
    if since is not None:
        sql += " AND ts >= ?"
        args.append(since)
    rows = conn.execute(sql + " ORDER BY ts DESC, id DESC LIMIT ?", [*args, limit])
    return [
        LoggedEvent(
            r["id"],
            r["ts"],
            r["received_at"],
            r["device_id"],
            r["type"],
            r["topic"],
            json.loads(r["data"]),
        )
        for r in rows
    ]


def readings(
    conn: sqlite3.Connection, device_id: str, name: str, t0: float, t1: float, limit: int
) -> list[Point]:
    """One metric's raw readings in [t0, t1], oldest first."""
    rows = conn.execute(
        "SELECT ts, json_extract(data, '$.metrics.' || json_quote(?)) AS value FROM events"
        " WHERE device_id=? AND type='reading' AND ts >= ? AND ts <= ? AND value IS NOT NULL"
        " ORDER BY ts LIMIT ?",
        (name, device_id, t0, t1, limit),
    )
    return [(r["ts"], r["value"]) for r in rows]


def hourly(
    conn: sqlite3.Connection, device_id: str, name: str, t0: float, t1: float, limit: int
) -> list[Point]:
    """One metric's hourly averages (the rollups) for the hours starting in [t0, t1]."""
    rows = conn.execute(
        "SELECT hour AS ts, sum / n AS value FROM metrics_rollup WHERE device_id=? AND name=?"
        " AND hour >= ? AND hour <= ? ORDER BY hour LIMIT ?",
        (device_id, name, t0 - t0 % 3600, t1, limit),
    )
    return [(r["ts"], r["value"]) for r in rows]


def readings_averaged(
    conn: sqlite3.Connection, device_id: str, name: str, t0: float, t1: float, bucket: float
) -> list[Point]:
    """Raw readings in [t0, t1] averaged into ``bucket``-second buckets, oldest first."""
    rows = conn.execute(
        "SELECT avg(ts) AS ts, avg(v) AS v FROM (SELECT ts,"
        " json_extract(data, '$.metrics.' || json_quote(?)) AS v FROM events"
        " WHERE device_id=? AND type='reading' AND ts >= ? AND ts <= ?)"
        " WHERE v IS NOT NULL GROUP BY CAST(ts / ? AS INTEGER) ORDER BY ts",
        (name, device_id, t0, t1, bucket),
    )
    return [(r["ts"], r["v"]) for r in rows]


def hourly_averaged(
    conn: sqlite3.Connection, device_id: str, name: str, t0: float, t1: float, bucket: float
) -> list[Point]:
    """Rollups of the hours in [t0, t1) averaged into ``bucket``-second buckets (each point
    at the middle of its hours), oldest first."""
    rows = conn.execute(
        "SELECT avg(hour) + 1800 AS ts, sum(sum) / sum(n) AS v FROM metrics_rollup"
        " WHERE device_id=? AND name=? AND hour >= ? AND hour < ?"
        " GROUP BY CAST(hour / ? AS INTEGER) ORDER BY ts",
        (device_id, name, t0 - t0 % 3600, t1, bucket),
    )
    return [(r["ts"], r["v"]) for r in rows if r["v"] is not None]


def dead_letters(conn: sqlite3.Connection, since: float, limit: int) -> list[DeadLetter]:
    """Messages that could not be decoded, received from ``since``, newest first."""
    rows = conn.execute(
        "SELECT * FROM dead_letters WHERE received_at >= ? ORDER BY id DESC LIMIT ?",
        (since, limit),
    )
    return [
        DeadLetter(r["id"], r["received_at"], r["topic"], r["size"], r["reason"], r["payload"])
        for r in rows
    ]


# -- the JSON the API carries -----------------------------------------------------------------


def device_json(d: Device) -> dict[str, Any]:
    return {
        "id": d.id,
        "kind": d.kind,
        "name": d.name,
        "spoken_name": d.spoken_name,
        "location": d.location,
        "zone": d.zone or None,
        "named": {
            "display_name": d.naming.display_name,
            "spoken_name": d.naming.spoken_name,
            "location": d.naming.location,
            "zone": d.naming.zone,
        },
        "source": d.source,
        "status": d.status,
        "status_since": iso(d.status_since),
        "status_reason": d.status_reason,
        "first_seen": iso(d.first_seen),
        "last_seen": iso(d.last_seen),
        "metrics": d.metrics,
        "info": d.info,
    }


def event_json(e: LoggedEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "ts": iso(e.ts),
        "received_at": iso(e.received_at),
        "device_id": e.device_id,
        "type": e.type,
        "topic": e.topic,
        "data": e.data,
    }


def dead_letter_json(d: DeadLetter) -> dict[str, Any]:
    """The payload as text when it is UTF-8, else as hex."""
    try:
        text, hexed = d.payload.decode("utf-8"), None
    except UnicodeDecodeError:
        text, hexed = None, d.payload.hex()
    return {
        "id": d.id,
        "received_at": iso(d.received_at),
        "topic": d.topic,
        "size": d.size,
        "reason": d.reason,
        "payload": text,
        "payload_hex": hexed,
    }
