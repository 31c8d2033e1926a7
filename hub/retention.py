"""Retention: hourly metric rollups, then old raw data removed, so a year fits an SD card.

Runs as a job in the ingest writer thread (all writes happen there).
"""

from __future__ import annotations

import logging
import sqlite3

from hub.clock import Clock
from hub.settings import RetentionSettings
from hub.store import Store

log = logging.getLogger(__name__)

HOUR = 3600.0
DAY = 86_400.0


class Retention:
    def __init__(
        self,
        settings: RetentionSettings,
        store: Store,
        *,
        ingest_conn: sqlite3.Connection,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.store = store
        self.conn = ingest_conn
        self.clock = clock

    def rollup(self, until: float) -> int:
        """Fold every finished hour since the last rollup into metrics_rollup."""
        conn = self.conn
        row = conn.execute("SELECT value FROM meta WHERE key='rollup_until'").fetchone()
        start = float(row[0]) if row else None
        if start is None:
            first = conn.execute("SELECT min(ts) FROM events WHERE type='reading'").fetchone()[0]
            if first is None:
                return 0
            start = first - first % HOUR
        end = until - until % HOUR
        hours = 0
        while start < end:
            stop = min(end, start + 24 * HOUR)  # a day per transaction keeps each one short
            conn.execute("BEGIN IMMEDIATE")
            try:
                # json_each over the readings' metrics: the aggregation runs inside SQLite.
                conn.execute(
                    """
                    INSERT INTO metrics_rollup(device_id, name, hour, n, min, max, sum)
                    SELECT e.device_id, j.key, e.ts - (e.ts % 3600), count(*),
                           min(j.value), max(j.value), sum(j.value)
                    FROM events e, json_each(e.data, '$.metrics') j
                    WHERE e.type='reading' AND e.ts >= ? AND e.ts < ?
                      AND j.type IN ('integer', 'real')
                    GROUP BY e.device_id, j.key, e.ts - (e.ts % 3600)
                    ON CONFLICT(device_id, name, hour) DO UPDATE SET
                      n=excluded.n, min=excluded.min, max=excluded.max, sum=excluded.sum
                    """,
                    (start, stop),
                )
                conn.execute(
                    "INSERT INTO meta(key, value) VALUES('rollup_until', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                    (str(stop),),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            hours += int((stop - start) // HOUR)
            start = stop
        return hours

    def sweep(self) -> None:
        now = self.clock.now().timestamp()
        self.rollup(now)
        s = self.settings
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Raw events go only once their hour is rolled up.
            row = conn.execute("SELECT value FROM meta WHERE key='rollup_until'").fetchone()
            rolled = float(row[0]) if row else 0.0
            cutoff = min(now - s.events_days * DAY, rolled)
            conn.execute("DELETE FROM events WHERE ts < ?", (cutoff,))
            conn.execute("DELETE FROM metrics_rollup WHERE hour < ?", (now - s.rollup_days * DAY,))
            conn.execute(
                "DELETE FROM dead_letters WHERE received_at < ?", (now - s.dead_letters_days * DAY,)
            )
            conn.execute(
                "DELETE FROM alerts WHERE state='cleared' AND cleared_at < ?",
                (now - s.alerts_days * DAY,),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        log.debug("retention sweep done")
