"""Ingest repository: the writer thread's SQL (events, dead letters, devices, health).

Runs in the ingest writer thread, on its own connection, inside the transaction
the writer opens per batch: one ``executemany`` per table and batch, so the cost
of a message is the cost of its row. Alert rows go through :mod:`hub.store.alerts`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import orjson

from devices.events import AnnounceCommand, Availability, ButtonPress, Event, Reading
from hub.events import Change, StatusChange
from hub.store import alerts

#: ``events`` row: ts, received_at, device_id, type, topic, data (JSON), mid, digest.
EventRow = tuple[float, float, str, str, str, str, int, bytes]
#: ``dead_letters`` row: received_at, topic, payload (capped), size, reason, mid, digest.
DeadRow = tuple[float, str, bytes, int, str, int, bytes]

INSERT_EVENTS = (
    "INSERT INTO events(ts, received_at, device_id, type, topic, data, mid, digest)"
    " VALUES (?,?,?,?,?,?,?,?)"
)
INSERT_DEAD_LETTERS = (
    "INSERT INTO dead_letters(received_at, topic, payload, size, reason, mid, digest)"
    " VALUES (?,?,?,?,?,?,?)"
)
# A device's first row sets first_seen; later ones only what moves.
UPSERT_DEVICES = (
    "INSERT INTO devices(id, kind, name, source, first_seen, last_seen, metrics, info)"
    " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET"
    " last_seen=excluded.last_seen, metrics=excluded.metrics, info=excluded.info"
)
UPDATE_STATUS = "UPDATE devices SET status=?, status_since=?, status_reason=? WHERE id=?"
# The newest rows of both tables, oldest first: the last one under a packet id wins.
LAST_DIGESTS = (
    "SELECT mid, digest FROM (SELECT received_at, id, mid, digest FROM (SELECT"
    " received_at, id, mid, digest FROM events WHERE mid IS NOT NULL ORDER BY id DESC"
    " LIMIT ?) UNION ALL SELECT received_at, id, mid, digest FROM (SELECT received_at,"
    " id, mid, digest FROM dead_letters WHERE mid IS NOT NULL ORDER BY id DESC LIMIT ?))"
    " ORDER BY received_at, id"
)


def compact_json(value: object) -> str:
    # orjson: a twelfth of the time of json's encoder, whose float formatting was 16 % of
    # the writer's CPU. Compact, UTF-8 as is; the values are finite (the adapters see to it).
    return orjson.dumps(value).decode()


def event_data(ev: Event) -> tuple[str, str]:
    """The ``type`` and ``data`` columns of a device's event (Ignored is never stored)."""
    data: dict[str, Any]
    if isinstance(ev, Reading):
        data = {"metrics": dict(ev.metrics)}
        if ev.info:
            data["info"] = dict(ev.info)
        return "reading", orjson.dumps(data).decode()
    if isinstance(ev, Availability):
        data = {"online": ev.online}
        if ev.expected:
            data["expected"] = True
        return "status", orjson.dumps(data).decode()
    if isinstance(ev, ButtonPress):
        return "button", orjson.dumps({"action": ev.action, "template": ev.template}).decode()
    if isinstance(ev, AnnounceCommand):
        return "announce", orjson.dumps({"body": dict(ev.body)}).decode()
    raise TypeError(f"{type(ev).__name__} is not stored")


class DeviceState(Protocol):
    """What the writer keeps of a device in memory and writes to its row."""

    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def source(self) -> str: ...
    @property
    def last_seen(self) -> float: ...
    @property
    def metrics(self) -> Mapping[str, float]: ...
    @property
    def info(self) -> Mapping[str, object]: ...


# -- writes: inside the writer's transaction ----------------------------------------------


def insert_events(conn: sqlite3.Connection, rows: Sequence[EventRow]) -> None:
    if rows:
        conn.executemany(INSERT_EVENTS, rows)


def insert_dead_letters(conn: sqlite3.Connection, rows: Sequence[DeadRow]) -> None:
    if rows:
        conn.executemany(INSERT_DEAD_LETTERS, rows)


def upsert_devices(conn: sqlite3.Connection, devices: Iterable[DeviceState]) -> None:
    rows = [
        (
            d.id,
            d.kind,
            d.name,
            d.source,
            d.last_seen,
            d.last_seen,
            compact_json(d.metrics),
            compact_json(d.info),
        )
        for d in devices
    ]
    if rows:
        conn.executemany(UPSERT_DEVICES, rows)


def write_changes(conn: sqlite3.Connection, changes: Iterable[Change]) -> None:
    """A device's new health on its row; an alert raised or cleared in ``alerts``."""
    for c in changes:
        if isinstance(c, StatusChange):
            conn.execute(UPDATE_STATUS, (c.status, c.at, c.reason, c.device_id))
        else:
            alerts.write(conn, c)


# -- reads at start -----------------------------------------------------------------------


def devices(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Every device row: id, kind, source, name, last_seen, metrics, info, status."""
    return conn.execute(
        "SELECT id, kind, source, name, last_seen, metrics, info, status FROM devices"
    ).fetchall()


def open_alerts(conn: sqlite3.Connection) -> dict[str, list[tuple[str, str, float]]]:
    """Raised, not yet cleared alerts by device: ``(id, rule, raised_at)``, oldest first."""
    out: dict[str, list[tuple[str, str, float]]] = {}
    for r in conn.execute(
        "SELECT device_id, id, rule, raised_at FROM alerts WHERE state='raised'"
        " ORDER BY raised_at, id"
    ):
        out.setdefault(r[0], []).append((r[1], r[2], r[3]))
    return out


def last_digests(conn: sqlite3.Connection, limit: int) -> Iterator[tuple[int, bytes]]:
    """``(mid, digest)`` of the newest ``limit`` events and dead letters, oldest first."""
    for r in conn.execute(LAST_DIGESTS, (limit, limit)):
        yield r[0], r[1]
