"""Tests' access to the stored readings and rollups, in the shape the old JSON rows had.

Readings are written the way a year-old database is upgraded (JSON rows into ``events``,
then :func:`hub.store.upgrade.convert_json_readings`), so a test states its data as the
event log shows it, and reads rollups back as ``(device_id, name, hour, n, min, max, sum)``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from hub.store import codec, immediate
from hub.store import readings as raw
from hub.store.upgrade import convert_json_readings

#: ts, received_at, device_id, type, topic, data (JSON)
Row = tuple[float, float, str, str, str, str]


def add_events(conn: sqlite3.Connection, rows: Iterable[Sequence[Any]]) -> None:
    """Rows as the old ``events`` table took them; readings end up in ``readings``."""
    with immediate(conn):
        conn.executemany(
            "INSERT INTO events(ts, received_at, device_id, type, topic, data)"
            " VALUES (?,?,?,?,?,?)",
            [tuple(r) for r in rows],
        )
    convert_all(conn)


def convert_all(conn: sqlite3.Connection) -> None:
    """The JSON readings in ``events`` moved to ``readings``, as an upgrade does."""
    conn.execute(
        "INSERT INTO meta(key, value) VALUES ('readings_json', '0')"
        " ON CONFLICT(key) DO UPDATE SET value='0'"
    )
    convert_json_readings(conn)


def add_rollups(
    conn: sqlite3.Connection,
    device_id: str,
    name: str,
    rows: Iterable[tuple[float, int, float, float, float]],
) -> None:
    """Hourly rollups ``(hour, n, min, max, sum)`` as retention writes them (the caller's
    transaction)."""
    codes = raw.Codes()
    device, metric = codes.code(conn, "d", device_id), codes.code(conn, "m", name)
    raw.insert_rollups(
        conn, [(int(h // 3600), device, metric, n, 0, lo, hi, t) for h, n, lo, hi, t in rows]
    )


def rollups(conn: sqlite3.Connection, name: str | None = None) -> list[tuple[Any, ...]]:
    """``(device_id, name, hour, n, min, max, sum)`` ordered by the first three."""
    devices, metrics = raw.names(conn, "d"), raw.names(conn, "m")
    out = []
    for hour, device, metric, n, k, lo, hi, total in conn.execute("SELECT * FROM rollups"):
        sc = codec.SCALES[k + 1] if k else 1
        m = metrics[metric]
        if name is None or m == name:
            out.append((devices[device], m, hour * 3600.0, n, lo / sc, hi / sc, total / sc))
    return sorted(out)


def count_readings(conn: sqlite3.Connection, before: float | None = None) -> int:
    """Raw readings kept (received before ``before``)."""
    if before is None:
        return int(conn.execute("SELECT count(*) FROM readings").fetchone()[0])
    return int(
        conn.execute(
            f"SELECT count(*) FROM readings WHERE slot * ? + ms / {raw.RANKS} < ?",
            (raw.SLOT_MS, before * 1000),
        ).fetchone()[0]
    )


def count_events(conn: sqlite3.Connection) -> int:
    """What the event log holds: events (not a reading's info) and readings."""
    n = conn.execute("SELECT count(*) FROM events WHERE type != 'info'").fetchone()[0]
    return int(n) + count_readings(conn)


def readings_of(conn: sqlite3.Connection, device_id: str) -> list[dict[str, Any]]:
    """A device's readings' metrics, oldest first."""
    device = raw.code_of(conn, "d", device_id)
    if device is None:
        return []
    rows = conn.execute(
        "SELECT slot, ms, vals FROM readings WHERE device=? ORDER BY slot, ms", (device,)
    ).fetchall()
    # The names after the rows: a code is committed with (or before) the first row using
    # it, so names read later know every code the rows hold (the writer runs meanwhile).
    metrics = raw.names(conn, "m")
    return [{metrics[c]: v for c, v in codec.decode(r[2])} for r in rows]


def all_readings(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every raw reading's metrics (any device)."""
    rows = conn.execute("SELECT vals FROM readings").fetchall()
    metrics = raw.names(conn, "m")  # after the rows, as in readings_of
    return [{metrics[c]: v for c, v in codec.decode(r[0])} for r in rows]


def newest_reading(conn: sqlite3.Connection) -> dict[str, Any] | None:
    """The metrics of the newest raw reading (any device), or None."""
    row = conn.execute("SELECT vals FROM readings ORDER BY slot DESC, ms DESC LIMIT 1").fetchone()
    if row is None:
        return None
    metrics = raw.names(conn, "m")
    return {metrics[c]: v for c, v in codec.decode(row[0])}
