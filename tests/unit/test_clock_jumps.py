"""A wrong clock costs nothing: RRULE lookups after a jump of years, retention refusing
a clock beyond its sanity bound (real SQLite)."""

from __future__ import annotations

import json
import random
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hub.broadcast.recurrence import Recurrence, near, parse_rrule
from hub.clock import FakeClock
from hub.settings import RetentionSettings
from hub.store import Store
from hub.store.retention import Retention
from tests.storedata import add_events, count_events, rollups

VN = ZoneInfo("Asia/Ho_Chi_Minh")
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def test_an_hourly_lookup_ten_years_on_costs_what_one_an_hour_on_does() -> None:
    r = Recurrence(datetime(2026, 12, 1, 6, 0), VN, "FREQ=HOURLY")
    t = time.perf_counter()
    got = r.next_after(datetime(2036, 12, 1, 0, 30, tzinfo=UTC))
    took = time.perf_counter() - t
    assert got == datetime(2036, 12, 1, 1, 0, tzinfo=UTC)
    # dateutil alone walks 87,600 occurrences here (0.3 s on this machine, minutes on a
    # scheduler that looked up each one); moved near the target it walks one or two.
    assert took < 0.05, f"{took:.3f} s"


def test_a_rule_moved_near_the_target_gives_the_same_dates() -> None:
    rules = [
        "FREQ=HOURLY;INTERVAL=5",
        "FREQ=HOURLY;INTERVAL=3;BYHOUR=6,9,12,15",
        "FREQ=DAILY;INTERVAL=3",
        "FREQ=DAILY;BYDAY=MO,FR;BYHOUR=7,19",
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH",
        "FREQ=WEEKLY;INTERVAL=3;WKST=SU;BYDAY=SU,SA",
        "FREQ=MONTHLY;BYDAY=1MO",
        "FREQ=MONTHLY;INTERVAL=5",
        "FREQ=MONTHLY;BYDAY=MO,TU;BYSETPOS=-1",
        "FREQ=YEARLY;INTERVAL=3",
        "FREQ=DAILY;UNTIL=20300101T000000",
    ]
    rnd = random.Random(12)
    for text in rules:
        for _ in range(25):
            start = datetime(2026, rnd.randint(1, 12), rnd.randint(1, 28), rnd.randint(0, 23))
            try:
                rule = parse_rrule(text, start)
            except ValueError:
                continue  # INTERVAL=3 with BYHOUR matches no hour from some starts
            lo = start + timedelta(hours=rnd.randint(0, 24 * 365 * 4), minutes=rnd.randint(0, 59))
            moved = near(rule, start, lo)
            assert moved.after(lo) == rule.after(lo), (text, start, lo)
            hi = lo + timedelta(days=40)
            assert moved.between(lo, hi) == rule.between(lo, hi), (text, start, lo)


def _store_with_a_day_of_readings(path: Path) -> tuple[Store, sqlite3.Connection]:
    store = Store(path)
    conn = store.new_connection()
    base = T0.timestamp()
    add_events(
        conn,
        [
            (ts, ts, "wl-1", "reading", "t", json.dumps({"metrics": {"water_level_cm": 1}}))
            for ts in (base + m * 600 for m in range(6 * 24))
        ],
    )
    return store, conn


def test_a_retention_run_at_2036_deletes_nothing_and_moves_no_watermark(tmp_path: Path) -> None:
    store, conn = _store_with_a_day_of_readings(tmp_path / "hub.db")
    clock = FakeClock(T0 + timedelta(days=1, hours=1))
    r = Retention(RetentionSettings(events_days=1), store, ingest_conn=conn, clock=clock)
    r.sweep()
    meta = "SELECT key, value FROM meta WHERE key IN ('rollup_until', 'retention_swept')"
    before = dict(conn.execute(meta).fetchall())

    def counts() -> tuple[int, int]:
        return count_events(conn), len(rollups(conn))

    kept = counts()
    assert kept[0] > 0 and kept[1] > 0

    for wrong in (datetime(2036, 12, 1, tzinfo=UTC), datetime(2099, 1, 1, tzinfo=UTC)):
        clock.set(wrong)
        r.sweep()
        assert counts() == kept
        assert dict(conn.execute(meta).fetchall()) == before
    conn.close()
    store.close()


def test_a_watermark_a_jump_left_ahead_comes_back_to_the_clock(tmp_path: Path) -> None:
    store, conn = _store_with_a_day_of_readings(tmp_path / "hub.db")
    ahead = (T0 + timedelta(days=30)).timestamp()
    conn.execute("INSERT INTO meta(key, value) VALUES('rollup_until', ?)", (str(ahead),))
    clock = FakeClock(T0 + timedelta(days=1, hours=1))
    r = Retention(RetentionSettings(events_days=7), store, ingest_conn=conn, clock=clock)
    r.sweep()
    (until,) = conn.execute("SELECT value FROM meta WHERE key='rollup_until'").fetchone()
    assert float(until) <= clock.now().timestamp()
    rolled = len(rollups(conn))
    assert rolled == 24  # every hour of the day, rolled up again from the raw readings
    conn.close()
    store.close()
