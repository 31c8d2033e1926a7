"""Ingest repository: the writer thread's SQL (readings, events, dead letters, devices, health).

Runs in the ingest writer thread, on its own connection, inside the transaction the
writer opens per group of messages: one ``executemany`` per table, so the cost of a
message is the cost of its row. Raw readings go to the time-major ``readings`` table
(:mod:`hub.store.readings`), other events to ``events``; the packet ids' digests (what a
re-delivery is compared with) to ``mqtt_seen``, one row per packet id: the ids of a
commit follow each other, so they share a page or two. Alert rows go through
:mod:`hub.store.alerts`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import orjson

from devices.events import AnnounceCommand, Availability, ButtonPress, Event, Reading
from hub.events import Change, StatusChange
from hub.store import alerts, codec
from hub.store import readings as raw

#: ``events`` row: ts, received_at, device_id, type, topic, data (JSON), mid, digest (no
#: packet for a reading's ``info`` row: the reading's packet is in ``mqtt_seen``).
EventRow = tuple[float, float, str, str, str, str, int | None, bytes | None]
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
REMEMBER_DIGEST = (
    "INSERT INTO mqtt_seen(mid, digest) VALUES (?, ?)"
    " ON CONFLICT(mid) DO UPDATE SET digest=excluded.digest"
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


def remember_digests(conn: sqlite3.Connection, seen: Mapping[int, int]) -> None:
    """The digest of the message committed under each packet id (8 bytes, big-endian)."""
    if seen:
        conn.executemany(REMEMBER_DIGEST, [(m, d.to_bytes(8, "big")) for m, d in seen.items()])


class PendingLike(Protocol):
    """A reading waiting for its commit (hub.ingest.batch.PendingReading)."""

    @property
    def keep(self) -> int: ...
    @property
    def ts(self) -> float: ...
    @property
    def received_at(self) -> float: ...
    @property
    def device_id(self) -> str: ...
    @property
    def topic(self) -> str: ...
    @property
    def info(self) -> bool: ...
    @property
    def values(self) -> Sequence[tuple[str, float]]: ...


def reading_rows(
    conn: sqlite3.Connection,
    codes: raw.Codes,
    pending: Iterable[PendingLike],
    last_ms: dict[tuple[int, int], tuple[int, int]],
) -> list[raw.ReadingRow]:
    """Raw rows, names numbered (new names get their numbers in this transaction).
    Readings of a device at the same millisecond (collectd sends a message per metric, a
    burst read from the socket at once gets one arrival time) are ranked apart:
    ``last_ms`` remembers each device's last millisecond and how many had it. (Past
    ``RANKS``, or a late reading meeting a kept one, share a row: both values are kept.)"""
    rows: list[raw.ReadingRow] = []
    for r in pending:
        device = codes.code(conn, "d", r.device_id)
        t = round(r.ts * 1000)
        key = (device, r.keep)
        prev = last_ms.get(key)
        rank = prev[1] if prev is not None and prev[0] == t else 0
        last_ms[key] = (t, rank + 1)
        slot, ms = raw.split_ms(r.ts, rank)
        vals = codec.encode([(codes.code(conn, "m", k), v) for k, v in r.values])
        rows.append(
            (
                r.keep,
                slot,
                device,
                ms,
                round((r.received_at - r.ts) * 1000),
                codes.code(conn, "t", r.topic),
                1 if r.info else 0,
                vals,
            )
        )
    return rows


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


def last_digests(conn: sqlite3.Connection) -> Iterator[tuple[int, bytes]]:
    """``(mid, digest)`` of the message last committed under each packet id."""
    for r in conn.execute("SELECT mid, digest FROM mqtt_seen"):
        yield r[0], r[1]


def catch_up_rows(
    conn: sqlite3.Connection, since: float
) -> list[tuple[str, float, float, dict[str, int | float]]]:
    """Raw readings received from ``since``, oldest first: ``(device, ts, received_at,
    metrics)``: what a device row written before a crash may lack."""
    devices, metrics = raw.names(conn, "d"), raw.names(conn, "m")
    out = []
    for keep in raw.tiers(conn):
        for slot, device, ms, lag, vals in conn.execute(
            "SELECT slot, device, ms, lag, vals FROM readings WHERE keep=? AND slot >= ?",
            (keep, raw.slot_of(since)),
        ):
            ts = raw.row_ts(slot, ms)
            values = {metrics.get(c, "?"): v for c, v in codec.decode(vals)}
            out.append((devices.get(device, ""), ts, ts + lag / 1000, values))
    out.sort(key=lambda r: r[2])
    return out
