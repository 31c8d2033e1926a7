"""Shared helper for the benchmarks (not a benchmark itself): a database like a year of a
village, in the store's layout (:mod:`hub.store.readings`), built in bulk.

Used by ``bench/year.py``, ``bench/reads.py`` and ``bench/retention.py``. What the hub
would write over a year is built from one hour it really writes: the readings of that
hour go through the writer's own functions (:func:`hub.store.ingest.reading_rows`: names
numbered in ``codes``, values packed by :mod:`hub.store.codec`), the hour is folded into
rollups by the real retention sweep (:class:`hub.store.retention.Retention`), then SQLite
copies both, shifted in time, in key order (C speed): the raw readings over the raw
window, the hourly rollups over ``retention.hourly_days`` and the daily ones (each day 24
such hours, as the sweep folds them) over the year, each metric by its own days. Copies
carry the same values, hence the same bytes per row as the hour they copy; counters that
would grow over a year take a byte or two more there.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hub.settings import RetentionSettings
from hub.store import immediate
from hub.store import ingest as repo
from hub.store import readings as raw

HOUR, DAY = 3600.0, 86_400.0
SLOTS_PER_HOUR = int(HOUR * 1000) // raw.SLOT_MS
#: Readings per transaction while writing the template hour.
CHUNK = 20_000


@dataclass(frozen=True)
class Pending:
    """A reading as the writer holds it before its commit (``PendingLike``)."""

    ts: float
    device_id: str
    topic: str
    values: Sequence[tuple[str, float]]
    keep: int = 0
    info: bool = False

    @property
    def received_at(self) -> float:
        return self.ts + 0.05


def write_readings(conn: sqlite3.Connection, readings: Iterable[Pending]) -> int:
    """Readings into ``readings`` as the writer stores them, a transaction per chunk."""
    codes = raw.Codes()
    last: dict[tuple[int, int], tuple[int, int]] = {}
    n = 0
    chunk: list[Pending] = []

    def flush() -> None:
        with immediate(conn):
            raw.insert_readings(conn, repo.reading_rows(conn, codes, chunk, last))

    for r in readings:
        chunk.append(r)
        if len(chunk) == CHUNK:
            flush()
            n += len(chunk)
            chunk = []
    if chunk:
        flush()
        n += len(chunk)
    return n


def fold_hour(store: object, conn: sqlite3.Connection, hour: float) -> None:
    """The real retention sweep, its clock just after ``hour``: folds that hour (its first
    sweep starts at the first reading) and deletes nothing of it."""
    from hub.clock import FakeClock
    from hub.settings import RetentionSettings
    from hub.store import Store
    from hub.store.retention import Retention

    assert isinstance(store, Store)
    clock = FakeClock(datetime.fromtimestamp(hour + HOUR + 60, UTC))
    Retention(RetentionSettings(), store, ingest_conn=conn, clock=clock).sweep()


def repeat_raw(conn: sqlite3.Connection, hour: float, copies: int) -> None:
    """The raw readings of ``hour`` copied into the ``copies`` hours after it."""
    s0 = int(hour * 1000) // raw.SLOT_MS
    with immediate(conn):
        conn.execute(
            """
            WITH RECURSIVE c(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM c WHERE k < ?1)
            INSERT OR IGNORE INTO readings(keep, slot, device, ms, lag, topic, info, vals)
            SELECT r.keep, r.slot + c.k * ?2, r.device, r.ms, r.lag, r.topic, r.info, r.vals
            FROM c CROSS JOIN readings r
            WHERE r.keep = 0 AND r.slot >= ?3 AND r.slot < ?3 + ?2
            ORDER BY c.k, r.slot, r.device, r.ms
            """,
            (copies, SLOTS_PER_HOUR, s0),
        )


def repeat_rollups(
    conn: sqlite3.Connection, hour: float, end: float, settings: RetentionSettings
) -> int:
    """The rollups of ``hour`` (the sweep's) copied as retention keeps them at ``end``:
    hourly over ``hourly_days``, daily (each day 24 such hours, as the sweep folds them)
    over ``rollup_days`` (at most a year), each metric by its own days
    (``rollup_days_by_metric``); both watermarks at ``end``. Returns the hourly rows."""
    h, end_h = int(hour // HOUR), int(end // HOUR)
    year = min(settings.rollup_days, 365.0)
    with immediate(conn):
        conn.execute("CREATE TEMP TABLE days_of(metric INTEGER PRIMARY KEY, days REAL)")
        conn.executemany(
            "INSERT INTO days_of SELECT id, ? FROM codes WHERE kind='m' AND name=?",
            [(min(d, year), name) for name, d in settings.rollup_days_by_metric.items()],
        )
        conn.execute(
            """
            WITH RECURSIVE c(x) AS (SELECT ?1 UNION ALL SELECT x + 1 FROM c WHERE x + 1 < ?2)
            INSERT OR IGNORE INTO rollups(hour, device, metric, n, k, lo, hi, total)
            SELECT c.x, r.device, r.metric, r.n, r.k, r.lo, r.hi, r.total
            FROM c CROSS JOIN rollups r WHERE r.hour = ?3 AND c.x != ?3
            AND c.x >= ?2 - 24 * min(?4, coalesce((SELECT days FROM days_of d
                                                    WHERE d.metric = r.metric), ?4))
            ORDER BY c.x, r.device, r.metric
            """,
            (end_h - int(settings.hourly_days * 24), end_h, h, settings.hourly_days),
        )
        sc = raw.SCALE_SQL.replace("k", "r.k")
        conn.execute(
            f"""
            WITH RECURSIVE c(x) AS (SELECT ?1 UNION ALL SELECT x + 1 FROM c WHERE x + 1 < ?2)
            INSERT OR REPLACE INTO rollups_daily(device, metric, day, n, lo, hi, total)
            SELECT r.device, r.metric, c.x, 24 * r.n, r.lo / {sc}, r.hi / {sc},
                   24 * r.total / {sc}
            FROM rollups r CROSS JOIN c WHERE r.hour = ?3
            AND c.x >= ?2 - coalesce((SELECT days FROM days_of d WHERE d.metric = r.metric), ?4)
            ORDER BY r.device, r.metric, c.x
            """,
            (end_h // 24 - int(year), end_h // 24, h, year),
        )
        conn.execute("DROP TABLE temp.days_of")
        for key in ("rollup_until", "daily_until"):
            value = end if key == "rollup_until" else end_h
            conn.execute(
                "INSERT INTO meta(key, value) VALUES(?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, str(value)),
            )
    return int(conn.execute("SELECT count(*) FROM rollups").fetchone()[0])


def write_devices(
    conn: sqlite3.Connection,
    devices: Iterable[tuple[str, str, Mapping[str, float]]],
    first_seen: float,
    now: float,
) -> None:
    """Rows of ``devices`` (id, kind, last metrics), all online, seen ``now``."""
    with immediate(conn):
        conn.executemany(
            "INSERT INTO devices(id, kind, name, source, status, status_since, first_seen,"
            " last_seen, metrics) VALUES(?, ?, ?, 'native', 'online', ?, ?, ?, ?)",
            ((d, k, d, now, first_seen, now, json.dumps(dict(m))) for d, k, m in devices),
        )


def db_mb(path: Path) -> float:
    """The database file's size (after a checkpoint: the WAL is empty)."""
    return round(path.stat().st_size / 2**20, 1)


def table_mb(conn: sqlite3.Connection) -> dict[str, float]:
    """Each table's and index's pages (``dbstat``), the largest first."""
    rows = conn.execute(
        "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"
    ).fetchall()
    return {str(n): round(b / 2**20, 1) for n, b in rows if b >= 2**20 / 10}


if __name__ == "__main__":  # `make bench` runs every bench/*.py: nothing to measure here
    sys.exit(0)
