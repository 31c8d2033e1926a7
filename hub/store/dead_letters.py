"""Dead letters as the technicians' page reads them: what the ingest refused, by kind of
reason, by topic and by device, newest first, a page at a time.

The writer (``hub/ingest/writer.py``) keeps each refused MQTT message in ``dead_letters``
with the reason the refusal gave: a :class:`~devices.events.DecodeError` raised by an
adapter (``devices/adapters/*``), a limit of ``hub/ingest/limits.py``, or the writer's own
size cap and internal errors. Those reasons are free text with the details in them (a
field's name, a size); :data:`REASONS` sorts them into the kinds a technician acts on, one
GLOB list per kind, the same in SQL (the filter) and in Python (the label of a row).

The table has no index on time: ``id`` grows with ``received_at`` (the writer inserts in
the order messages arrive), so "since" is found by a binary search on the rowid and every
read walks the rowid range from there, never the whole table (30 days of a broken sensor
sending each second are 2.6 million rows).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from hub.store.devices import DeadLetter

#: The kinds of reason, in the order they are tried: (key, GLOB patterns). Sources:
#: ``devices/adapters/_util.py`` (text, JSON, numbers, times, status, device ids),
#: the adapters themselves (topic shapes, device kinds, collectd, Tasmota, ESPHome and
#: Zigbee2MQTT values), ``hub/ingest/limits.py`` (retained commands, too many names) and
#: ``hub/ingest/writer.py`` (size, internal errors). A test sends each through the real
#: adapters and limits: none may fall to ``other``.
REASONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("too_large", ("payload too large*",)),
    ("not_text", ("not UTF-8",)),
    ("empty", ("empty payload",)),
    ("not_json", ("not JSON",)),
    ("not_object", ("payload is not a JSON object*",)),
    (
        "bad_time",
        ("field '*' is not a valid epoch time", "field '*' is not ISO 8601 or epoch seconds"),
    ),
    ("bad_status", ("status must be *", "field 'state' must be 'online' or 'offline'")),
    ("bad_device_id", ("bad device id *", "cannot make a device id from *")),
    ("unknown_topic", ("unknown topic shape*",)),
    ("unknown_kind", ("unknown device kind *",)),
    ("retained_command", ("retained command*",)),
    ("too_many_names", ("too many metric names*",)),
    ("internal", ("internal error*",)),
    (
        "bad_value",
        (
            "field '*",
            "value * is not a number",
            "value * is infinite",
            "type '*' has * values, got *",
            "time * is not a number",
            "not collectd's *",
            "tele/* value is not a finite number",
            "binary_sensor state must be ON or OFF*",
            "sensor state *",
        ),
    ),
)
#: Every kind a row can have: the catalogue's, then what none of them matches.
KINDS: tuple[str, ...] = (*(k for k, _ in REASONS), "other")
#: What a count reads at most (the page says "10000+"): a flood is a flood.
COUNT_CAP = 10_000


def reason_kind(reason: str) -> str:
    """The kind of a stored reason: the first of :data:`REASONS` that matches it."""
    for kind, patterns in REASONS:
        if any(fnmatchcase(reason, p) for p in patterns):
            return kind
    return "other"


@dataclass(frozen=True, slots=True)
class Filter:
    """Which dead letters: received from ``since``; ``topic`` a part of the topic;
    ``needles`` topic levels any of which names the device (its id, its source names);
    ``kind`` one of :data:`KINDS`."""

    since: float
    topic: str = ""
    needles: tuple[str, ...] = ()
    kind: str = ""

    def where(self) -> tuple[str, list[object]]:
        sql, args = "", list[object]()
        if self.topic:
            sql += " AND instr(topic, ?) > 0"
            args.append(self.topic)
        if self.needles:
            # A level of the topic, whole: "/ap-1/" is not in "/ap-10/".
            sql += " AND (" + " OR ".join("instr('/' || topic || '/', ?) > 0" for _ in self.needles)
            sql += ")"
            args.extend(f"/{n}/" for n in self.needles)
        if self.kind in KINDS:
            kind_sql, kind_args = _kind_sql(self.kind)
            sql += kind_sql
            args.extend(kind_args)
        return sql, args


def _kind_sql(kind: str) -> tuple[str, list[object]]:
    """The rows whose first matching kind is ``kind`` (as :func:`reason_kind` says)."""
    keys = [k for k, _ in REASONS]
    at = keys.index(kind) if kind in keys else len(keys)
    earlier = [p for _, ps in REASONS[:at] for p in ps]
    sql: str = ""
    args: list[object] = []
    if at < len(keys):
        mine = REASONS[at][1]
        sql += " AND (" + " OR ".join("reason GLOB ?" for _ in mine) + ")"
        args.extend(mine)
    if earlier:
        sql += " AND NOT (" + " OR ".join("reason GLOB ?" for _ in earlier) + ")"
        args.extend(earlier)
    return sql, args


def first_id_since(conn: sqlite3.Connection, since: float) -> int:
    """An id from which every row received at or after ``since`` is found (one past the
    last when none is): a binary search on the rowid, some twenty lookups for millions of
    rows. (After the clock was set back the times are not in id order for a while: the
    search may then start past a few matching rows. A page of refused messages, not an
    audit: the reads still check ``received_at`` on every row they return.)"""
    row = conn.execute("SELECT min(id), max(id) FROM dead_letters").fetchone()
    if row is None or row[0] is None:
        return 1
    lo, hi = int(row[0]), int(row[1]) + 1
    # Bounded: the range halves each time (64 steps cover any rowid).
    for _ in range(64):
        if lo >= hi:
            break
        mid = (lo + hi) // 2
        at = conn.execute(
            "SELECT id, received_at FROM dead_letters WHERE id >= ? ORDER BY id LIMIT 1", (mid,)
        ).fetchone()
        if at is None or at[1] >= since:
            hi = mid  # no row in [mid, at): mid bounds the range as well as at's id
        else:
            lo = int(at[0]) + 1
    return lo


def page(
    conn: sqlite3.Connection, flt: Filter, *, before: int | None, limit: int
) -> list[DeadLetter]:
    """Up to ``limit`` dead letters the filter keeps, newest first, older than id
    ``before`` (the page before's last) when given."""
    where, args = flt.where()
    lo = first_id_since(conn, flt.since)
    sql = f"SELECT * FROM dead_letters WHERE id >= ? AND received_at >= ?{where}"
    params: list[object] = [lo, flt.since, *args]
    if before is not None:
        sql += " AND id < ?"
        params.append(before)
    rows = conn.execute(sql + " ORDER BY id DESC LIMIT ?", [*params, limit])
    return [
        DeadLetter(r["id"], r["received_at"], r["topic"], r["size"], r["reason"], r["payload"])
        for r in rows
    ]


def count(conn: sqlite3.Connection, flt: Filter, cap: int = COUNT_CAP) -> int:
    """How many the filter keeps, at most ``cap`` (the page says "cap+")."""
    where, args = flt.where()
    lo = first_id_since(conn, flt.since)
    row = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM dead_letters WHERE id >= ? AND received_at >= ?"
        f"{where} LIMIT ?)",
        [lo, flt.since, *args, cap],
    ).fetchone()
    return int(row[0])


def needles_of(device_id: str, renames: Sequence[tuple[str, str]]) -> tuple[str, ...]:
    """The topic levels that name a device: its id, and the source names renamed to it."""
    return (device_id, *sorted({src for src, dst in renames if dst == device_id}))
