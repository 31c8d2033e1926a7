"""Devices repository: what ingest stored about the devices, read for the API and the pages.

The ``devices``, ``events``, ``readings``, ``rollups`` and ``dead_letters`` tables are
written by the ingest writer (hub.ingest) and retention; here they are read, through
the calling thread's connection, into small frozen records. The one write is a device's
names (:func:`set_naming`, a technician's, from the devices service): columns of their own,
which the writer's upsert never touches.
"""

from __future__ import annotations

import ctypes
import json
import math
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hub.clock import iso
from hub.store import codec
from hub.store import readings as raw

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
    """The event log, newest first: of one device (or all), from ``since`` (or ever).

    Status, button and command events are rows of ``events``; readings are rebuilt from
    the raw readings (:mod:`hub.store.readings`) as the JSON rows they once were:
    ``{"metrics": {...}, "info": {...}}``, the info being the newest the device sent."""
    sql, args = "SELECT * FROM events WHERE type != 'info'", list[object]()
    if device_id:
        sql += " AND device_id=?"
        args.append(device_id)
    if since is not None:
        sql += " AND ts >= ?"
        args.append(since)
    rows = conn.execute(sql + " ORDER BY ts DESC, id DESC LIMIT ?", [*args, limit])
    out = [
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
    out += _readings_logged(conn, device_id, since, limit)
    out.sort(key=lambda e: (e.ts, e.id), reverse=True)
    return out[:limit]


def _readings_logged(
    conn: sqlite3.Connection, device_id: str | None, since: float | None, limit: int
) -> list[LoggedEvent]:
    t0 = since if since is not None else 0.0
    if device_id:
        device = raw.code_of(conn, "d", device_id)
        if device is None:
            return []
        found = [
            (k, slot, device, ms, lag, topic, info, vals)
            for k, slot, ms, lag, topic, info, vals in raw.device_rows(
                conn, device, t0, raw.FOREVER, newest_first=True, limit=limit
            )
        ]
    else:
        found = [r for r in raw.all_rows_newest(conn, since, limit) if raw.row_ts(r[1], r[3]) >= t0]
    if not found:
        return []
    devices, metrics, topics = (raw.names(conn, k) for k in ("d", "m", "t"))
    # A reading's metrics of several retention classes are one row each: one event again.
    merged: dict[tuple[int, int, int, int, int], tuple[int, dict[str, object]]] = {}
    for _keep, slot, device, ms, lag, topic, info, vals in found:
        key = (slot, ms, device, lag, topic)
        entry = merged.setdefault(key, (info, {}))
        m = entry[1]
        for code, v in codec.decode(vals):
            m[metrics.get(code, str(code))] = v
    out = []
    for (slot, ms, device, lag, topic), (info, m) in merged.items():
        ts = raw.row_ts(slot, ms)
        name = devices.get(device, "")
        data: dict[str, Any] = {"metrics": m}
        if info:
            row = conn.execute(
                "SELECT data FROM events WHERE device_id=? AND type='info' AND ts <= ?"
                " ORDER BY ts DESC LIMIT 1",
                (name, ts),
            ).fetchone()
            if row is not None:
                data["info"] = json.loads(row[0])
        rid = (slot * raw.SLOT_MS + ms) * 65_536 + device % 65_536
        out.append(
            LoggedEvent(rid, ts, ts + lag / 1000, name, "reading", topics.get(topic, ""), data)
        )
    return out


@dataclass(frozen=True, slots=True)
class Bucket:
    """A chart's point: the readings of one time bucket, averaged, with their extremes.

    ``ts`` is the mean time of those readings (a rollup hour counts at its middle, weighted
    by its readings), so the newest point sits where the newest data is. A series short
    enough to fit is returned as stored: each reading its own bucket (``n`` = 1).
    """

    ts: float
    value: float
    min: float
    max: float
    n: int


# One bucket's partial aggregate, from the raw readings or from the rollups: its index,
# source rows, readings, sum of their times, sum of their values, min, max.
_Part = tuple[int, int, int, float, float, float, float]

# The rollup hours of one series whose middle is in [t0, t1] and that end by the split: a
# lookup per hour (the table is hour-major), parameters: first hour, last hour, device,
# metric, t0 (?5), bucket width (?6).
_ROLLUPS = (
    "WITH RECURSIVE h(x) AS (SELECT ?1 UNION ALL SELECT x + 1 FROM h WHERE x < ?2)"
    " SELECT {select} FROM h CROSS JOIN rollups r"
    " WHERE r.hour = h.x AND r.device = ?3 AND r.metric = ?4"
)
_SC = raw.SCALE_SQL.replace("k", "r.k")
DAY = 86_400.0
# One series' daily rollups of days [?1, ?2) (a range of the key), per bucket or as rows.
_DAYS_GROUPED = (
    "SELECT CAST((day * 86400 + 43200 - ?5) / ?6 AS INTEGER) AS b, count(*), sum(n),"
    " sum((day * 86400 + 43200) * n), sum(total), min(lo), max(hi) FROM rollups_daily"
    " WHERE device = ?3 AND metric = ?4 AND day >= ?1 AND day < ?2 GROUP BY b"
)
_DAYS_ROWS = (
    "SELECT day * 86400 + 43200, total / n, lo, hi, n, ?5, ?6 FROM rollups_daily"
    " WHERE device = ?3 AND metric = ?4 AND day >= ?1 AND day < ?2 ORDER BY day"
)


def _days(
    conn: sqlite3.Connection, first: int, last: int, t0: float, wide: bool
) -> tuple[int, int] | None:
    """The whole days ``[d0, d1)`` read from the daily rollups for hours ``first..last``:
    days whose middle is from ``t0`` on (as an hour's middle is for the hourly rows), all of
    whose hours are within ``last`` and folded (``daily_until``); unless ``wide``, only
    those before the oldest hour kept (the part of that hour's day before it is not shown)."""
    row = conn.execute("SELECT value FROM meta WHERE key='daily_until'").fetchone()
    if row is None:
        return None
    end = min(int(float(row[0])), last + 1)
    if not wide:
        kept = conn.execute("SELECT hour FROM rollups ORDER BY hour LIMIT 1").fetchone()
        if kept is not None:
            end = min(end, int(kept[0]))
    d0 = max(math.ceil((t0 - DAY / 2) / DAY), math.ceil(first / 24))
    d1 = end // 24
    return (d0, d1) if d0 < d1 else None


def oldest_reading(conn: sqlite3.Connection, device_id: str, t0: float, t1: float) -> float | None:
    """The time of a device's oldest raw reading kept in [t0, t1] (any metric)."""
    device = raw.code_of(conn, "d", device_id)
    return None if device is None else raw.oldest_ts(conn, device, t0, t1)


def series(
    conn: sqlite3.Connection,
    device_id: str,
    name: str,
    t0: float,
    t1: float,
    split: float,
    points: int,
) -> list[Bucket]:
    """One metric over [t0, t1] in at most ``points`` buckets of (t1 - t0) / points seconds,
    oldest first: the hourly rollups of the hours ending by ``split``, raw readings from it.

    The rollups are aggregated in SQLite (a year of them is a lookup per hour, never a
    list in Python); nothing is cut, so the newest readings are always in the last
    bucket. When every source row fits in ``points``, the rows themselves are returned.
    """
    device, metric = raw.code_of(conn, "d", device_id), raw.code_of(conn, "m", name)
    if device is None or metric is None:
        return []
    width = (t1 - t0) / points or 1.0
    raw_from = max(t0, split)
    parts: list[_Part] = []
    first = math.ceil((t0 - 1800) / 3600)
    last = math.floor(min(split - 3600, t1 - 1800) / 3600)
    # Buckets of half a day or wider take whole days from the daily rollups (one range of
    # rows) and only the hours around them from the hourly ones; narrower ones take days
    # only where the hours are gone (older than retention.hourly_days).
    days = _days(conn, first, last, t0, width >= DAY / 2) if split > t0 else None
    spans = [(first, last)] if days is None else [(first, days[0] * 24 - 1), (days[1] * 24, last)]
    hour_args = [(lo, hi, device, metric, t0, width) for lo, hi in spans if lo <= hi]
    day_args = None if days is None else (days[0], days[1], device, metric, t0, width)
    if split > t0 and first <= last:
        sql = _ROLLUPS.format(
            select="CAST((r.hour * 3600 + 1800 - ?5) / ?6 AS INTEGER) AS b, count(*), sum(r.n),"
            f" sum((r.hour * 3600 + 1800) * r.n), sum(r.total / {_SC}), min(r.lo / {_SC}),"
            f" max(r.hi / {_SC})"
        )
        for args in hour_args:
            parts += conn.execute(sql + " GROUP BY b", args).fetchall()
        if day_args is not None:
            parts += conn.execute(_DAYS_GROUPED, day_args).fetchall()
    values = raw.series_points(conn, device, metric, raw_from, t1) if raw_from <= t1 else []
    rows = sum(p[1] for p in parts) + len(values)
    if rows <= points:
        out: list[Bucket] = []
        if parts:
            sql = _ROLLUPS.format(
                select=f"r.hour * 3600 + 1800, r.total / {_SC} / r.n, r.lo / {_SC},"
                f" r.hi / {_SC}, r.n, ?5, ?6"
            )
            for args in hour_args:
                out += [Bucket(*r[:5]) for r in conn.execute(sql, args)]
            if day_args is not None:  # between the two spans of hours
                out += [Bucket(*r[:5]) for r in conn.execute(_DAYS_ROWS, day_args)]
                out.sort(key=lambda b: b.ts)
        out += [Bucket(ts, v, v, v, 1) for ts, v in values]
    else:
        out = _merged(parts + _raw_parts(values, t0, width, points), points)
    # The pages this read cached are one device's: no other request is likely to want
    # them, and with a connection per request thread the caches add up (40 x 2 MiB).
    release_memory(conn)
    return out


def _raw_parts(
    values: list[tuple[float, float]], t0: float, width: float, points: int
) -> list[_Part]:
    """Raw readings (oldest first) added up per bucket, in one pass: a day's 8,640."""
    out: list[_Part] = []
    k = -1
    n = sum_ts = total = lo = hi = 0.0
    for ts, v in values:
        b = min(int((ts - t0) / width), points - 1)
        if b != k:
            if n:
                out.append((k, int(n), int(n), sum_ts, total, lo, hi))
            k, n, sum_ts, total, lo, hi = b, 0.0, 0.0, 0.0, v, v
        n += 1
        sum_ts += ts
        total += v
        if v < lo:
            lo = v
        elif v > hi:
            hi = v
    if n:
        out.append((k, int(n), int(n), sum_ts, total, lo, hi))
    return out


def _merged(parts: list[_Part], points: int) -> list[Bucket]:
    """Partial aggregates of the same bucket (rollups and raw meet in one) added up; a
    reading at t1 itself belongs to the last bucket."""
    acc: dict[int, list[float]] = {}
    for index, _rows, n, sum_ts, total, lo, hi in parts:
        k = min(index, points - 1)
        a = acc.get(k)
        if a is None:
            acc[k] = [n, sum_ts, total, lo, hi]
        else:
            a[0] += n
            a[1] += sum_ts
            a[2] += total
            a[3] = min(a[3], lo)
            a[4] = max(a[4], hi)
    return [
        Bucket(a[1] / a[0], a[2] / a[0], a[3], a[4], int(a[0]))
        for _k, a in sorted(acc.items())
        if a[0] > 0
    ]


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None
    return trim


_TRIM = _malloc_trim()


def release_memory(conn: sqlite3.Connection) -> None:
    """Give a read's memory back: this connection's page cache (each request thread has
    one, and the threadpool has dozens), then what glibc keeps freed in its arenas (one
    per thread or so; a quarter of a millisecond here)."""
    conn.execute("PRAGMA shrink_memory")
    if _TRIM is not None:
        _TRIM(0)


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
