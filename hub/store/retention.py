"""Retention: hourly metric rollups, then old raw data removed, so a year fits an SD card.

Runs in the ingest writer thread (all writes happen there), in steps. A step does about
``STEP_S`` of work in one transaction, then the sweep queues its next step behind
whatever the writer has waiting (:meth:`Retention.sweep_in_steps` with ``ingest.call``):
a batch of messages, and the emergency rule it fires, waits for one step at most, never
for the whole sweep (as one job, on a big database out of the page cache, it stopped
ingest and the rules for 10-13 s). Rollups fold one finished hour at a time, readings
taken in time order (rows written one after another: pages side by side on the card)
a chunk per unit of work, summed in memory; the hour's rollups and its watermark are
written together once it is whole, so a reader never sees half an hour and a sweep cut
off midway folds that hour again. Folded hours are then added into daily rollups
(``rollups_daily``: a year's chart reads 365 rows), a few hours per unit with their
watermark ``daily_until``. Deletes go in batches of rows. Each kind of unit
learns its size: halved when a unit took longer than ``UNIT_S``, doubled when it took
under a quarter of it (an SD card is slower than this machine).

Besides the database it trims the render cache: audio no announcement uses (listen
previews, versions an edit replaced), unused for ``render_cache_days``.

Every cut-off is "now minus so many days": a clock that jumped to 2036 would delete
everything. So a sweep first asks whether the clock is trusted at all (NTP, an RTC read
at boot, or the head's phone this boot: :mod:`hub.services.clock`), then checks it
against what the database has seen (the newest event received, the last sweep) and the
year this hub was built; a clock that fails any of these deletes nothing and moves no
watermark, and a watermark a jump left ahead of the clock comes back to it. A sweep
keeps the "now" it started with to its last step.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from audio.cache import Keep, RenderCache, needed_soon_s
from hub.clock import LATEST_SANE, SANE_YEARS, Clock
from hub.settings import RetentionSettings
from hub.store import Store, codec, immediate
from hub.store import readings as raw

log = logging.getLogger(__name__)

HOUR = 3600.0
DAY = 86_400.0

#: A clock further ahead than this of the newest event and of the last sweep is not
#: trusted to delete (a hub down for longer sweeps again once events come in).
AHEAD_S = 7 * DAY

#: A step starts no unit of work that would end past this (by the last unit's length),
#: then commits (a commit of many deleted rows costs a few more ms) and yields.
STEP_S = 0.03
#: What one unit of work aims at.
UNIT_S = 0.015
#: Bounds of a unit's size (rows read or deleted, rollup keys expired).
MIN_UNIT, MAX_UNIT = 50, 20_000
#: Rollup rows written per unit when an hour is whole (≈ 1 ms per 100 rows here).
WRITE_ROWS = 1000

#: An hour is folded once it ended this long ago: readings wait in the writer for up to
#: ``ingest.commit_interval_s`` (20 s at most), and a device's own clock may be a little
#: behind.
LATE_S = 60.0


class ClockNotTrusted(Exception):
    """The clock is not trusted or beyond the sanity bound: this sweep deletes nothing."""


@dataclass(slots=True)
class UnitSize:
    """How much one unit of a kind of work takes on: learnt from how long units took."""

    rows: int
    lo: int = MIN_UNIT
    hi: int = MAX_UNIT

    def adapt(self, took: float) -> None:
        if took > UNIT_S:
            self.rows = max(self.lo, self.rows // 2)
        elif took < UNIT_S / 4:
            self.rows = min(self.hi, self.rows * 2)


@dataclass(slots=True)
class SweepStats:
    """What one sweep did (the log, ``bench/retention.py`` and the tests read it)."""

    now: float
    steps: int = 0
    longest_s: float = 0.0  # the longest step, by the retention's timer
    total_s: float = 0.0
    hours: int = 0  # hours folded into rollups
    deleted: int = 0  # rows deleted, every table
    done: bool = False


class Sweep:
    """One sweep, run by :meth:`step` until it returns False (the writer thread)."""

    def __init__(self, retention: Retention, now: float) -> None:
        self.retention = retention
        self.stats = SweepStats(now)
        self.stepped_at = retention.clock.monotonic()
        self._units = retention.units(now, self.stats)
        self._rows_done = False

    def step(self) -> bool:
        """About ``step_s`` of work in one transaction; False once the sweep is over."""
        r = self.retention
        timer, st = r.timer, self.stats
        t0 = timer()
        if self._rows_done:
            r.sweep_render_cache(st.now)  # files, outside any transaction
            more = False
        else:
            unit = 0.0  # the last unit's length: the next one is not started past step_s
            with immediate(r.conn):
                while True:
                    t = timer()
                    if unit and t - t0 + unit > r.step_s:
                        break
                    if not next(self._units, False):
                        self._rows_done = True
                        break
                    unit = timer() - t
            more = True
        took = timer() - t0
        st.steps += 1
        st.total_s += took
        st.longest_s = max(st.longest_s, took)
        self.stepped_at = r.clock.monotonic()
        if not more:
            st.done = True
            log.info(
                "retention sweep: %d hours rolled up, %d rows deleted, in %d steps (longest "
                "%.0f ms)",
                st.hours,
                st.deleted,
                st.steps,
                st.longest_s * 1000,
            )
        return more


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
        timer: Callable[[], float] = time.perf_counter,
        step_s: float = STEP_S,
    ) -> None:
        self.settings = settings
        #: Is the clock trusted (NTP, RTC, the head's phone)? False: nothing is deleted.
        self.clock_synced = clock_synced
        self.store = store
        self.conn = ingest_conn
        self.clock = clock
        self.render_dir = render_dir
        self.render_lock = render_lock or threading.Lock()
        #: Measures steps and units (wall time; a test may count the thread's CPU time).
        self.timer = timer
        self.step_s = step_s
        # Learnt sizes, kept from one sweep to the next.
        self.fold_size = UnitSize(6, lo=1, hi=360)  # slots (10 s of readings) per unit
        self.delete_size = UnitSize(2000)  # rows deleted per unit (~5 ms here)
        self.key_size = UnitSize(200)  # rollup series expired per unit
        self.day_size = UnitSize(1, lo=1, hi=24 * 31)  # hours folded into days per unit
        #: The sweep going on in steps, and the last one's figures.
        self.going: Sweep | None = None
        self.last: SweepStats | None = None

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
        # The newest event by id (the primary key), the newest reading by its slot: no scan.
        newest = conn.execute("SELECT received_at FROM events ORDER BY id DESC LIMIT 1").fetchone()
        swept = conn.execute("SELECT value FROM meta WHERE key='retention_swept'").fetchone()
        known = [float(r[0]) for r in (newest, swept) if r is not None]
        reading = raw.newest_received(conn)
        if reading is not None:
            known.append(reading)
        seen = max(known, default=None)
        if seen is not None and now > seen + AHEAD_S:
            raise ClockNotTrusted(
                f"the clock is {(now - seen) / DAY:.0f} days ahead of the newest event and of "
                "the last sweep"
            )

    # -- running a sweep ------------------------------------------------------------------
    def begin(self) -> Sweep | None:
        """A sweep from now, or None when the clock is refused (nothing deleted)."""
        now = self.clock.now().timestamp()
        try:
            self.check_clock(now)
        except ClockNotTrusted as e:
            log.error("retention skipped, nothing deleted: %s (set the clock right)", e)
            return None
        return Sweep(self, now)

    def sweep(self) -> SweepStats | None:
        """A whole sweep, its steps one after the other (tests, a benchmark)."""
        run = self.begin()
        if run is None:
            return None
        while run.step():
            pass
        self.last = run.stats
        return run.stats

    def sweep_in_steps(self, post: Callable[[Callable[[], None]], None]) -> None:
        """Start a sweep whose every step queues the next one with ``post`` (the writer's
        ``call``: behind the messages and jobs waiting). Writer thread. A sweep still
        moving goes on (restarting it would fold its hour again); one that stopped (a step
        dropped or refused while the disk refused writes) is replaced."""
        going = self.going
        if going is not None:
            idle = self.clock.monotonic() - going.stepped_at
            if idle < self.settings.sweep_interval_s:
                log.info("retention: the last sweep is still going (step %d)", going.stats.steps)
                return
        run = self.going = self.begin()
        if run is None:
            return

        def step() -> None:
            if self.going is not run:
                return  # replaced
            try:
                more = run.step()
            except BaseException:
                self.going = None
                raise
            if more:
                post(step)
            else:
                self.going = None
                self.last = run.stats

        step()

    # -- the units of work (each ``yield`` is where a step may commit) ------------------------
    def units(self, now: float, stats: SweepStats) -> Iterator[bool]:
        """Roll up, then delete what is past its days; the last sweep's time at the end."""
        s = self.settings
        conn = self.conn
        yield from self._rollup(now, stats)
        yield from self._fold_days()
        # Raw readings go only once their hour is rolled up, each retention class by its
        # days: one range of the key each.
        row = conn.execute("SELECT value FROM meta WHERE key='rollup_until'").fetchone()
        rolled = float(row[0]) if row else 0.0
        for keep in raw.tiers(conn):
            days = s.events_days if keep == 0 else keep / 24
            yield from self._expire_raw(keep, min(now - days * DAY, rolled), stats)
        yield from self._batches(
            "DELETE FROM events WHERE id IN"
            " (SELECT id FROM events WHERE ts < ? ORDER BY ts LIMIT ?)",
            now - s.events_days * DAY,
            stats,
        )
        yield from self._expire_rollups(now, stats)
        yield from self._expire_dead_letters(now - s.dead_letters_days * DAY, stats)
        yield from self._batches(
            "DELETE FROM alerts WHERE rowid IN (SELECT rowid FROM alerts"
            " WHERE state='cleared' AND cleared_at < ? LIMIT ?)",
            now - s.alerts_days * DAY,
            stats,
        )
        yield from self._batches(
            "DELETE FROM feedback WHERE rowid IN (SELECT rowid FROM feedback"
            " WHERE status='done' AND coalesce(updated_at, received_at) < ? LIMIT ?)",
            now - s.feedback_days * DAY,
            stats,
        )
        _set_meta(conn, "retention_swept", now)
        yield True

    def _rollup(self, until: float, stats: SweepStats) -> Generator[bool, None, None]:
        """Fold every finished hour since the last rollup into ``rollups``."""
        conn = self.conn
        row = conn.execute("SELECT value FROM meta WHERE key='rollup_until'").fetchone()
        start = float(row[0]) if row else None
        after_jump = start is not None and start > until
        if start is None or after_jump:
            # First run, or a jump left the watermark ahead of the clock: from the oldest
            # raw reading (a rolled-up hour is recomputed from its readings, all still here).
            conn.execute("DELETE FROM meta WHERE key='rollup_until'")
            first = raw.first_reading(conn, float("-inf"), until)
            if first is None:
                return
            start = first - first % HOUR
            if after_jump and first % HOUR:
                start += HOUR  # that hour's older readings may be gone: keep its rollup
        late = until - LATE_S
        end = late - late % HOUR
        while start < end:
            # Hours without readings have no rollups: on to the next reading's hour.
            nxt = raw.first_reading(conn, start, end)
            if nxt is None:
                _set_meta(conn, "rollup_until", end)
                yield True
                return
            hour = nxt - nxt % HOUR
            acc = yield from self._fold_hour(hour)
            h = int(hour // HOUR)
            items = sorted((h, d, m, *a.row()) for (d, m), a in acc.items())
            for i in range(0, len(items), WRITE_ROWS):
                if i:
                    yield True
                raw.insert_rollups(conn, items[i : i + WRITE_ROWS])
            start = hour + HOUR
            _set_meta(conn, "rollup_until", start)
            stats.hours += 1
            yield True

    def _fold_days(self) -> Iterator[bool]:
        """The hourly rollups of the whole days folded since ``daily_until`` added into the
        daily ones, a few hours per unit, each unit with its watermark (one transaction:
        never added twice). A watermark ahead of the hourly one (a clock jump made it fold
        again) waits."""
        conn, size, timer = self.conn, self.day_size, self.timer
        row = conn.execute("SELECT value FROM meta WHERE key='rollup_until'").fetchone()
        if row is None:
            return
        # Whole days only: the table is device-major, so folding every hour would dirty a
        # page per series each sweep (a card's wear); once a day, the day's hours at once.
        upto = int(float(row[0]) // HOUR) // 24 * 24
        mark = conn.execute("SELECT value FROM meta WHERE key='daily_until'").fetchone()
        if mark is None:
            first = conn.execute("SELECT hour FROM rollups ORDER BY hour LIMIT 1").fetchone()
            if first is None:
                return
            start = int(first[0])
        else:
            start = int(float(mark[0]))
        while start < upto:
            t = timer()
            stop = min(upto, start + size.rows)
            conn.execute(raw.FOLD_DAYS, (start, stop))
            _set_meta(conn, "daily_until", stop)
            size.adapt(timer() - t)
            start = stop
            yield True

    def _fold_hour(self, hour: float) -> Generator[bool, None, dict[tuple[int, int], Fold]]:
        """The hour's aggregates per (device, metric), a few slots of readings per unit
        (rows one after another: pages side by side on the card)."""
        conn, size, timer = self.conn, self.fold_size, self.timer
        acc: dict[tuple[int, int], Fold] = {}
        first, stop = raw.slot_of(hour), raw.slot_of(hour + HOUR)
        for keep in raw.tiers(conn):
            lo = first
            while lo < stop:
                t = timer()
                hi = min(stop, lo + size.rows)
                for device, vals in conn.execute(
                    "SELECT device, vals FROM readings WHERE keep=? AND slot >= ? AND slot < ?",
                    (keep, lo, hi),
                ):
                    for code, tag, v in codec.entries(vals):
                        a = acc.get((device, code))
                        if a is None:
                            acc[(device, code)] = Fold(tag, v)
                        else:
                            a.add(tag, v)
                size.adapt(timer() - t)
                lo = hi
                if lo < stop:
                    yield True
        return acc

    def _batches(self, sql: str, before: float, stats: SweepStats) -> Iterator[bool]:
        """``sql`` (a DELETE of ``LIMIT ?`` rows older than ``before``) until it runs dry."""
        size, timer = self.delete_size, self.timer
        while True:
            t, asked = timer(), size.rows
            n = self.conn.execute(sql, (before, asked)).rowcount
            size.adapt(timer() - t)
            stats.deleted += n
            yield True
            if n < asked:
                return

    def _expire_raw(self, keep: int, before: float, stats: SweepStats) -> Iterator[bool]:
        """A retention class's readings older than ``before``, a unit of rows at a time
        from its oldest slot (the key's order: a range delete)."""
        conn, size, timer = self.conn, self.delete_size, self.timer
        cut = raw.slot_of(before)
        while True:
            t = timer()
            edge = conn.execute(
                "SELECT slot FROM readings WHERE keep=? AND slot < ? ORDER BY slot"
                " LIMIT 1 OFFSET ?",
                (keep, cut, size.rows),
            ).fetchone()
            upto = cut if edge is None else int(edge[0])
            stats.deleted += conn.execute(
                "DELETE FROM readings WHERE keep=? AND slot < ?", (keep, upto)
            ).rowcount
            size.adapt(timer() - t)
            yield True
            if edge is None or upto == cut:
                return

    def _expire_rollups(self, now: float, stats: SweepStats) -> Iterator[bool]:
        """Hours older than each metric's days (``rollup_days``, ``rollup_days_by_metric``,
        at most ``hourly_days`` and only once folded into days), a few hours at a time from
        where the last sweep stopped for those days (the table is hour-major: a range of
        hours, never a scan of the year); then the days older than the metric's days."""
        conn, s = self.conn, self.settings
        codes = raw.names(conn, "m")
        by_days: dict[float, list[int]] = {}
        for code, name in codes.items():
            by_days.setdefault(s.rollup_days_by_metric.get(name, s.rollup_days), []).append(code)
        first = conn.execute("SELECT hour FROM rollups ORDER BY hour LIMIT 1").fetchone()
        if first is None:
            return
        # Hours go after hourly_days, once added into their days (``daily_until``).
        mark = conn.execute("SELECT value FROM meta WHERE key='daily_until'").fetchone()
        folded = int(float(mark[0])) if mark else 0
        for days, metrics in sorted(by_days.items()):
            hourly = min(days, s.hourly_days)
            key = f"rollups_expired:{hourly:g}"
            row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
            start = max(int(first[0]), int(float(row[0])) if row else 0)
            cut = min(int((now - hourly * DAY) // HOUR), folded)
            marks = ",".join("?" * len(metrics))
            while start < cut:
                t = self.timer()
                upto = min(cut, start + max(1, self.key_size.rows // 50))
                stats.deleted += conn.execute(
                    f"DELETE FROM rollups WHERE hour >= ? AND hour < ? AND metric IN ({marks})",
                    (start, upto, *metrics),
                ).rowcount
                start = upto
                _set_meta(conn, key, start)
                self.key_size.adapt(self.timer() - t)
                yield True
            yield from self._expire_days(now, days, metrics, stats)

    def _expire_days(
        self, now: float, days: float, metrics: list[int], stats: SweepStats
    ) -> Iterator[bool]:
        """Daily rollups of ``metrics`` older than ``days``: a range of each device's series
        (the table is device-major), a few devices per unit, once a day."""
        conn = self.conn
        cut = int((now - days * DAY) // DAY)
        key = f"daily_expired:{days:g}"
        row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        if row is not None and int(float(row[0])) >= cut:
            return
        marks = ",".join("?" * len(metrics))
        devices = sorted(raw.names(conn, "d"))
        per_unit = max(1, self.key_size.rows // len(metrics))
        for i in range(0, len(devices), per_unit):
            t = self.timer()
            for device in devices[i : i + per_unit]:
                stats.deleted += conn.execute(
                    f"DELETE FROM rollups_daily WHERE device = ? AND metric IN ({marks})"
                    " AND day < ?",
                    (device, *metrics, cut),
                ).rowcount
            self.key_size.adapt(self.timer() - t)
            yield True
        _set_meta(conn, key, cut)

    def _expire_dead_letters(self, before: float, stats: SweepStats) -> Iterator[bool]:
        """Dead letters by id, oldest first, up to the first one still kept: no index has
        their time, and ids follow it (a clock set back leaves a few for a later sweep)."""
        conn, size, timer = self.conn, self.delete_size, self.timer
        last = 0
        while True:
            t, asked = timer(), size.rows
            rows = conn.execute(
                "SELECT id, received_at FROM dead_letters WHERE id > ? ORDER BY id LIMIT ?",
                (last, asked),
            ).fetchall()
            if not rows:
                return
            stats.deleted += conn.execute(
                "DELETE FROM dead_letters WHERE id > ? AND id <= ? AND received_at < ?",
                (last, rows[-1][0], before),
            ).rowcount
            size.adapt(timer() - t)
            yield True
            if len(rows) < asked or any(r[1] >= before for r in rows):
                return
            last = rows[-1][0]

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


@dataclass(slots=True)
class Fold:
    """One (device, metric)'s hour: count, extremes and sum, as integers scaled by
    ``10**k`` while every value has at most ``k`` decimals (exact), else floats."""

    n: int
    k: int
    lo: int | float
    hi: int | float
    total: int | float

    def __init__(self, tag: int, v: int | float) -> None:
        self.n, self.k = 1, codec.decimals(tag)
        if self.k < 0:
            v = float(v)
        self.lo = self.hi = self.total = v

    def add(self, tag: int, v: int | float) -> None:
        k = codec.decimals(tag)
        if k < 0 or self.k < 0:
            if self.k >= 0:
                self._floats()
            v = codec.value(tag, v) if k >= 0 else v
        elif k > self.k:
            f = 10 ** (k - self.k)
            self.lo, self.hi, self.total, self.k = self.lo * f, self.hi * f, self.total * f, k
        elif k < self.k:
            v = v * 10 ** (self.k - k)
        self.n += 1
        self.total += v
        if v < self.lo:
            self.lo = v
        if v > self.hi:
            self.hi = v

    def _floats(self) -> None:
        sc = codec.SCALES[self.k + 1] if self.k else 1
        self.lo, self.hi, self.total = self.lo / sc, self.hi / sc, self.total / sc
        self.k = -1

    def row(self) -> tuple[int, int, int | float, int | float, int | float]:
        """``n, k, lo, hi, total`` as stored (k 0 for floats: divided by 1)."""
        return self.n, max(self.k, 0), self.lo, self.hi, self.total


def _set_meta(conn: sqlite3.Connection, key: str, value: float) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES(?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
        (key, str(value)),
    )
