"""Retention: hourly metric rollups, then old raw data removed, so a year fits an SD card.

Runs as a job in the ingest writer thread (all writes happen there). Besides the
database it trims the render cache: audio no announcement uses (listen previews,
versions an edit replaced), unused for ``render_cache_days``.

Every cut-off is "now minus so many days": a clock that jumped to 2036 would delete
everything. So a sweep first asks whether the clock is trusted at all (NTP, an RTC read
at boot, or the head's phone this boot: :mod:`hub.services.clock`), then checks it
against what the database has seen (the newest event received, the last sweep) and the
year this hub was built; a clock that fails any of these deletes nothing and moves no
watermark, and a watermark a jump left ahead of the clock comes back to it.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from audio.cache import Keep, RenderCache, needed_soon_s
from hub.clock import LATEST_SANE, SANE_YEARS, Clock
from hub.settings import RetentionSettings
from hub.store import Store

log = logging.getLogger(__name__)

HOUR = 3600.0
DAY = 86_400.0

#: A clock further ahead than this of the newest event and of the last sweep is not
#: trusted to delete (a hub down for longer sweeps again once events come in).
AHEAD_S = 7 * DAY


class ClockNotTrusted(Exception):
    """The clock is not trusted or beyond the sanity bound: this sweep deletes nothing."""


class Retention:
    def __init__(
        self,
        settings: RetentionSettings,
        store: Store,
        *,
        ingest_conn: sqlite3.Connection,
        clock: Clock,
        render_dir: Path | None = None,
        render_lock: threading.Lock | None = None,
        clock_synced: Callable[[], bool | None] = lambda: True,
    ) -> None:
        self.settings = settings
        #: Is the clock trusted (NTP, RTC, the head's phone)? False: nothing is deleted.
        self.clock_synced = clock_synced
        self.store = store
        self.conn = ingest_conn
        self.clock = clock
        self.render_dir = render_dir
        self.render_lock = render_lock or threading.Lock()

    def check_clock(self, now: float) -> None:
        """Raise :class:`ClockNotTrusted` when the clock is not trusted or ``now`` is past
        the sanity bound."""
        if self.clock_synced() is False:
            raise ClockNotTrusted(
                "the clock is not trusted (no NTP, no RTC read at boot, not set from the "
                "head's phone since boot)"
            )
        if now >= LATEST_SANE:
            year = datetime.fromtimestamp(now, UTC).year
            raise ClockNotTrusted(
                f"the clock says {year}, more than {SANE_YEARS} years after this release"
            )
        conn = self.conn
        # The newest row by id (the primary key): no scan of the events table.
        newest = conn.execute("SELECT received_at FROM events ORDER BY id DESC LIMIT 1").fetchone()
        swept = conn.execute("SELECT value FROM meta WHERE key='retention_swept'").fetchone()
        known = [float(r[0]) for r in (newest, swept) if r is not None]
        seen = max(known, default=None)
        if seen is not None and now > seen + AHEAD_S:
            raise ClockNotTrusted(
                f"the clock is {(now - seen) / DAY:.0f} days ahead of the newest event and of "
                "the last sweep"
            )

    def rollup(self, until: float) -> int:
        """Fold every finished hour since the last rollup into metrics_rollup."""
        conn = self.conn
        row = conn.execute("SELECT value FROM meta WHERE key='rollup_until'").fetchone()
        start = float(row[0]) if row else None
        after_jump = start is not None and start > until
        if start is None or after_jump:
            # First run, or a jump left the watermark ahead of the clock: from the oldest
            # raw reading (a rolled-up hour is recomputed from its readings, all still here).
            first = conn.execute("SELECT min(ts) FROM events WHERE type='reading'").fetchone()[0]
            if first is None:
                conn.execute("DELETE FROM meta WHERE key='rollup_until'")
                return 0
            start = first - first % HOUR
            if after_jump and first % HOUR:
                start += HOUR  # that hour's older readings may be gone: keep its rollup
            conn.execute("DELETE FROM meta WHERE key='rollup_until'")
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
        """Roll up, then delete what is past its days (nothing when the clock is refused)."""
        now = self.clock.now().timestamp()
        try:
            self.check_clock(now)
        except ClockNotTrusted as e:
            log.error("retention skipped, nothing deleted: %s (set the clock right)", e)
            return
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
            conn.execute(
                "DELETE FROM feedback WHERE status='done'"
                " AND coalesce(updated_at, received_at) < ?",
                (now - s.feedback_days * DAY,),
            )
            conn.execute(
                "INSERT INTO meta(key, value) VALUES('retention_swept', ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (str(now),),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self.sweep_render_cache(now)
        log.debug("retention sweep done")

    def sweep_render_cache(self, now: float) -> int:
        """The render cache (``audio/cache.py``): entries no announcement names and unused
        for ``render_cache_days`` go (a cache hit renews an entry), and render folders a
        crash left; then the cache is brought within ``audio.render_cache_mb`` (the budget
        the renderer set on the same cache object) by what the announcements say: an
        emergency's audio never goes, a coming occurrence's last, and never when due
        within ``needed_soon_s``. How many entries went."""
        d = self.render_dir
        if d is None or not d.is_dir():
            return 0
        # Not while a render runs (it may be reusing an old entry): next sweep, then.
        if not self.render_lock.acquire(blocking=False):
            return 0
        try:
            named: set[str] = set()
            pinned: set[str] = set()
            needed: dict[str, float] = {}
            for wav, web, priority, status, next_run, on_air in self.conn.execute(
                # on_air: handed to the playout and not logged yet (queued or playing)
                "SELECT render_wav, render_web, priority, status, next_run, last_run IS NOT"
                " NULL AND NOT EXISTS (SELECT 1 FROM broadcasts b WHERE b.announcement_id = a.id"
                " AND b.scheduled_for = a.last_run) FROM announcements a"
                " WHERE render_wav IS NOT NULL OR render_web IS NOT NULL"
            ):
                keys = {RenderCache.key_of(Path(p)) for p in (wav, web) if p}
                named |= keys
                if priority == "emergency" or on_air:
                    pinned |= keys
                if status in ("scheduled", "draft") and next_run is not None:
                    needed |= {k: min(needed.get(k, next_run), next_run) for k in keys}
            cache = RenderCache.at(d)
            cache.rescan()  # the running size, counted again from the disk
            cache.remove_leftovers(now - DAY)
            cache.pin(pinned)  # audio rendered before emergencies were marked
            removed = cache.expire(now - self.settings.render_cache_days * DAY, keep=named)
            soon = now + needed_soon_s(self.settings.sweep_interval_s)
            removed += len(cache.trim(Keep(frozenset(pinned), needed, soon)))
            if removed:
                log.info("render cache: %d entries deleted", removed)
            return removed
        finally:
            self.render_lock.release()
