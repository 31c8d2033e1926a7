"""Raw readings and hourly rollups: the time-major tables ingest appends to and the API reads.

Written by the ingest writer (:mod:`hub.ingest.writer`, inside its commit) and by
retention (rollups, expiry); read by the devices repository (series, the event log)
through the calling thread's connection.

Why this layout (bench/wear.py gives the figures): the cost of a commit on an SD card is
the number of distinct pages it dirties. The old ``events`` row per reading (JSON text)
with its ``(device_id, ts)`` index dirtied about one index leaf per device in a commit.
Here a reading is one row of ``readings``, keyed ``(keep, slot, device, ms)``: ``slot`` is
its 10-second time slot (``ms`` its millisecond in it, times 1,024, plus its rank among
the device's readings of that millisecond), so every row a commit adds falls in the last
few pages of the table, whatever the devices; ``device`` and metric names are small
integers through the ``codes`` dictionary and the values are packed by
:mod:`hub.store.codec` (about 50 bytes an access point's reading instead of 250). One
device's readings over a range are point lookups, one per slot (a generated list of
slots joined on the key), never a scan of the other devices'. ``keep`` is the reading's
raw retention class: 0 for the default (``retention.events_days``), else the hours
``retention.raw_days_by_metric`` gave its metrics when it was written; a class expires
as one range of the key.

Daily rollups (``rollups_daily``, folded from the hourly ones by the sweep) are
device-major instead: a chart of a year reads one range of 365 rows of one series, where
the hourly table would take 8,760 lookups (bench/year.py: 2 ms instead of 35-40).

Rollups are hour-major for the same reason (the hourly sweep appends ~2,000 rows at the
end of the table instead of one row at the end of each of 2,000 series): ``(hour, device,
metric)`` with n, min, max and sum as integers scaled by ``10**k`` when the hour's
values have at most ``k`` decimals (exact, and 1-3 bytes each), else floats.

A reading's non-numeric ``info`` (ssid, firmware) is an ``events`` row of type ``info``
only when it changed (and every few hours, so expiry never leaves readings without one);
the reading carries a flag saying it had info, and the event log gives it the newest
``info`` row at or before its time.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence

from hub.store import codec

#: A raw reading's time slot, in milliseconds.
SLOT_MS = 10_000
#: Readings of one device at one millisecond kept apart (more share a row).
RANKS = 1024
#: A time after every reading (an open end of a range).
FOREVER = 1e11
HOUR = 3600.0
#: A device's info is written again after this long even unchanged, so that expiring old
#: ``events`` rows never leaves a kept reading without its info.
INFO_REFRESH_S = 6 * 3600.0

#: ``readings`` row: keep, slot, device, ms (in the slot), lag (received - ts, ms), topic,
#: info (1: the message carried info), vals (codec).
ReadingRow = tuple[int, int, int, int, int, int, int, bytes]
#: ``rollups`` row: hour (epoch hours), device, metric, n, k, lo, hi, total.
RollupRow = tuple[int, int, int, int, int, int | float, int | float, int | float]

INSERT_READINGS = (
    "INSERT INTO readings(keep, slot, device, ms, lag, topic, info, vals)"
    " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(keep, slot, device, ms) DO UPDATE SET"
    " vals = CAST(readings.vals || excluded.vals AS BLOB)"
)
INSERT_ROLLUPS = (
    "INSERT INTO rollups(hour, device, metric, n, k, lo, hi, total) VALUES (?,?,?,?,?,?,?,?)"
    " ON CONFLICT(hour, device, metric) DO UPDATE SET n=excluded.n, k=excluded.k,"
    " lo=excluded.lo, hi=excluded.hi, total=excluded.total"
)
#: SQL for the divisor of a rollup row's scaled values.
SCALE_SQL = "(CASE k WHEN 0 THEN 1.0 WHEN 1 THEN 10.0 WHEN 2 THEN 100.0 ELSE 1000.0 END)"
#: The hourly rollups of hours [?1, ?2) added into the daily ones (UTC days). Runs once per
#: hour folded: the caller moves ``daily_until`` in the same transaction.
FOLD_DAYS = (
    "INSERT INTO rollups_daily(device, metric, day, n, lo, hi, total)"
    f" SELECT device, metric, hour / 24, sum(n), min(lo / {SCALE_SQL}), max(hi / {SCALE_SQL}),"
    f" sum(total / {SCALE_SQL}) FROM rollups WHERE hour >= ?1 AND hour < ?2"
    " GROUP BY device, metric, hour / 24 ORDER BY 1, 2, 3"
    " ON CONFLICT(device, metric, day) DO UPDATE SET n = n + excluded.n,"
    " lo = min(lo, excluded.lo), hi = max(hi, excluded.hi), total = total + excluded.total"
)


def split_ms(ts: float, rank: int = 0) -> tuple[int, int]:
    """``(slot, ms)`` of an epoch time: its millisecond in the slot times ``RANKS``, plus
    its rank among the device's readings of that millisecond."""
    t = round(ts * 1000)
    return t // SLOT_MS, (t % SLOT_MS) * RANKS + min(rank, RANKS - 1)


def slot_of(ts: float) -> int:
    """The slot of an epoch time (clamped to [0, FOREVER]: open ends of a range)."""
    return int(min(max(ts, 0.0), FOREVER) * 1000) // SLOT_MS


def row_ts(slot: int, ms: int) -> float:
    return (slot * SLOT_MS + ms // RANKS) / 1000


# -- the dictionary ------------------------------------------------------------------------


class Codes:
    """Names (devices ``d``, metrics ``m``, topics ``t``) to their numbers, for the writer.

    A number given inside a transaction that rolls back is forgotten with it (``forget``)."""

    def __init__(self) -> None:
        self._codes: dict[tuple[str, str], int] | None = None

    def code(self, conn: sqlite3.Connection, kind: str, name: str) -> int:
        codes = self._codes
        if codes is None:
            codes = self._codes = {(r[1], r[2]): r[0] for r in conn.execute("SELECT * FROM codes")}
        c = codes.get((kind, name))
        if c is None:
            # Another connection may have numbered it (an upgrade, a restore, a test).
            c = code_of(conn, kind, name)
            if c is None:
                c = conn.execute(
                    "INSERT INTO codes(kind, name) VALUES (?, ?) RETURNING id", (kind, name)
                ).fetchone()[0]
            codes[(kind, name)] = c
        return c

    def forget(self) -> None:
        self._codes = None


def code_of(conn: sqlite3.Connection, kind: str, name: str) -> int | None:
    row = conn.execute("SELECT id FROM codes WHERE kind=? AND name=?", (kind, name)).fetchone()
    return None if row is None else int(row[0])


def names(conn: sqlite3.Connection, kind: str) -> dict[int, str]:
    return {r[0]: r[1] for r in conn.execute("SELECT id, name FROM codes WHERE kind=?", (kind,))}


# -- writes ----------------------------------------------------------------------------------


def insert_readings(conn: sqlite3.Connection, rows: Sequence[ReadingRow]) -> None:
    if rows:
        conn.executemany(INSERT_READINGS, rows)


def insert_rollups(conn: sqlite3.Connection, rows: Sequence[RollupRow]) -> None:
    if rows:
        conn.executemany(INSERT_ROLLUPS, rows)


# -- reads -------------------------------------------------------------------------------------


def tiers(conn: sqlite3.Connection) -> list[int]:
    """The retention classes present (a seek each: the key starts with them)."""
    out: list[int] = []
    row = conn.execute("SELECT keep FROM readings ORDER BY keep LIMIT 1").fetchone()
    while row is not None:
        out.append(int(row[0]))
        row = conn.execute(
            "SELECT keep FROM readings WHERE keep > ? ORDER BY keep LIMIT 1", (out[-1],)
        ).fetchone()
    return out


def slot_bounds(conn: sqlite3.Connection, keep: int) -> tuple[int, int] | None:
    """The first and the last slot of a class."""
    lo = conn.execute(
        "SELECT slot FROM readings WHERE keep=? ORDER BY slot LIMIT 1", (keep,)
    ).fetchone()
    if lo is None:
        return None
    hi = conn.execute(
        "SELECT slot FROM readings WHERE keep=? ORDER BY slot DESC LIMIT 1", (keep,)
    ).fetchone()
    return int(lo[0]), int(hi[0])


# One device's rows over a range of slots: a lookup per slot, in the slots' order.
_DEVICE_SLOTS = """
    WITH RECURSIVE s(k) AS (SELECT ?1 UNION ALL SELECT k {step} FROM s WHERE k {cmp} ?2)
    SELECT {columns} FROM s CROSS JOIN readings r
    WHERE r.keep = ?3 AND r.slot = s.k AND r.device = ?4
"""
_ROW = "r.slot, r.ms, r.lag, r.topic, r.info, r.vals"
_UP = _DEVICE_SLOTS.format(step="+ 1", cmp="<", columns=_ROW)
_DOWN = _DEVICE_SLOTS.format(step="- 1", cmp=">", columns=_ROW)
#: Only what a series needs: fewer objects per row.
_VALUES = _DEVICE_SLOTS.format(step="+ 1", cmp="<", columns="r.slot, r.ms, r.vals")


def _slot_ranges(conn: sqlite3.Connection, t0: float, t1: float) -> Iterator[tuple[int, int, int]]:
    """Each retention class's ``(keep, first slot, last slot)`` kept within [t0, t1]."""
    for keep in tiers(conn):
        bounds = slot_bounds(conn, keep)
        if bounds is not None:
            lo, hi = max(bounds[0], slot_of(t0)), min(bounds[1], slot_of(t1))
            if lo <= hi:
                yield keep, lo, hi


def device_rows(
    conn: sqlite3.Connection,
    device: int,
    t0: float,
    t1: float,
    *,
    newest_first: bool = False,
    limit: int = -1,
) -> Iterator[tuple[int, int, int, int, int, int, bytes]]:
    """One device's raw rows in [t0, t1] per class: ``(keep, slot, ms, lag, topic, info,
    vals)``, oldest slots first (or newest), at most ``limit`` rows per class."""
    for keep, lo, hi in _slot_ranges(conn, t0, t1):
        sql, args = (_DOWN, (hi, lo)) if newest_first else (_UP, (lo, hi))
        for r in conn.execute(sql + " LIMIT ?5", (*args, keep, device, limit)):
            ts = row_ts(r[0], r[1])
            if t0 <= ts <= t1:
                yield (keep, *r)


def series_points(
    conn: sqlite3.Connection, device: int, metric: int, t0: float, t1: float
) -> list[tuple[float, float]]:
    """One metric's raw values in [t0, t1], oldest first.

    A day's chart reads 8,640 rows: only the columns it needs, decoded in one loop (the
    lookups take 7 ms here, the decoding most of the rest)."""
    out: list[tuple[float, float]] = []
    find = codec.find
    for keep, lo, hi in _slot_ranges(conn, t0, t1):
        for slot, ms, vals in conn.execute(_VALUES, (lo, hi, keep, device)):
            v = find(vals, metric)
            if v is not None:
                ts = (slot * SLOT_MS + ms // RANKS) / 1000
                if t0 <= ts <= t1:
                    out.append((ts, float(v)))
    out.sort()
    return out


def all_rows_newest(
    conn: sqlite3.Connection, since: float | None, limit: int
) -> list[tuple[int, int, int, int, int, int, int, bytes]]:
    """Every device's newest raw rows (at least ``limit`` per class when there are that many
    from ``since``): ``(keep, slot, device, ms, lag, topic, info, vals)``. Reads back a
    few slots at a time, twice as many each time (up to an hour's), until enough rows, all
    newer than the next slots', are in."""
    out: list[tuple[int, int, int, int, int, int, int, bytes]] = []
    floor = slot_of(since) if since is not None else None
    for keep in tiers(conn):
        chunk = 2
        bounds = slot_bounds(conn, keep)
        if bounds is None:
            continue
        lo_bound = bounds[0] if floor is None else max(bounds[0], floor)
        hi = bounds[1]
        got = 0
        while hi >= lo_bound and got < limit:
            lo = max(lo_bound, hi - chunk + 1)
            rows = conn.execute(
                "SELECT keep, slot, device, ms, lag, topic, info, vals FROM readings"
                " WHERE keep=? AND slot BETWEEN ? AND ?",
                (keep, lo, hi),
            ).fetchall()
            out += rows
            got += len(rows)
            hi = lo - 1
            chunk = min(chunk * 2, 360)
    return out


def newest_received(conn: sqlite3.Connection) -> float | None:
    """When the newest raw reading was received (the last slot of each class)."""
    best: float | None = None
    for keep in tiers(conn):
        bounds = slot_bounds(conn, keep)
        if bounds is None:
            continue
        row = conn.execute(
            f"SELECT max(slot * ?1 + ms / {RANKS} + lag) FROM readings WHERE keep=?2 AND slot=?3",
            (SLOT_MS, keep, bounds[1]),
        ).fetchone()
        if row[0] is not None:
            t = float(row[0]) / 1000
            best = t if best is None else max(best, t)
    return best


def oldest_ts(conn: sqlite3.Connection, device: int, t0: float, t1: float) -> float | None:
    """The time of a device's oldest raw reading in [t0, t1] (any metric): the first row of
    each class, rows coming oldest first."""
    firsts: dict[int, float] = {}
    for keep, slot, ms, *_ in device_rows(conn, device, t0, t1, limit=8):
        firsts.setdefault(keep, row_ts(slot, ms))
    return min(firsts.values(), default=None)


def first_reading(conn: sqlite3.Connection, start: float, end: float) -> float | None:
    """The time of the first reading in [start, end), any class (a seek per class)."""
    best: float | None = None
    for keep in tiers(conn):
        row = conn.execute(
            "SELECT slot, ms FROM readings WHERE keep=? AND slot >= ? AND slot <= ?"
            " ORDER BY slot, device, ms LIMIT 64",
            (keep, slot_of(start), slot_of(end)),
        ).fetchall()
        ts = [row_ts(s, m) for s, m in row if start <= row_ts(s, m) < end]
        if ts:
            best = min(ts) if best is None else min(best, *ts)
    return best
