"""Daily rollups: the sweep folds the hourly ones into days (once each, in steps), a wide
series reads the days (a year: 365 rows of one range, not 8,760 lookups), and days expire
after ``rollup_days``.

A real SQLite file through :class:`hub.store.Store`; hourly rollups written as retention
leaves them (:func:`tests.storedata.add_rollups`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub.clock import FakeClock
from hub.settings import RetentionSettings
from hub.store import Store, immediate
from hub.store import devices as repo
from hub.store.retention import Retention
from tests.storedata import add_rollups

HOUR, DAY = 3600.0, 86_400.0
END = datetime(2026, 12, 1, tzinfo=UTC).timestamp()  # midnight: whole days before it
DAYS = 5


def hours() -> list[tuple[float, int, float, float, float]]:
    """(hour, n, min, max, sum) for DAYS days before END: 360 readings an hour, the mean
    the hour of the day."""
    out = []
    for i in range(DAYS * 24):
        h = END - DAYS * DAY + i * HOUR
        mean = float(i % 24)
        out.append((h, 360, mean - 1, mean + 1, 360 * mean))
    return out


@pytest.fixture
def db(tmp_path: Path) -> Iterator[tuple[Store, sqlite3.Connection]]:
    store = Store(tmp_path / "hub.db")
    conn = store.new_connection()
    with immediate(conn):
        add_rollups(conn, "wl-1", "water_level_cm", hours())
        conn.execute("INSERT INTO meta(key, value) VALUES('rollup_until', ?)", (str(END),))
    yield store, conn
    conn.close()
    store.close()


def sweep(store: Store, conn: sqlite3.Connection, **settings: float) -> None:
    clock = FakeClock(datetime.fromtimestamp(END + 60, UTC))
    r = Retention(RetentionSettings(**settings), store, ingest_conn=conn, clock=clock)
    r.day_size.rows = 5  # several units: a day is folded across steps
    assert r.sweep() is not None


def daily(conn: sqlite3.Connection) -> list[tuple[float, int, float, float, float]]:
    return [
        (d * DAY, n, lo, hi, total)
        for d, n, lo, hi, total in conn.execute(
            "SELECT day, n, lo, hi, total FROM rollups_daily ORDER BY day"
        )
    ]


def test_hours_fold_into_days_once(db: tuple[Store, sqlite3.Connection]) -> None:
    store, conn = db
    sweep(store, conn)
    want = [
        (END - (DAYS - d) * DAY, 24 * 360, -1.0, 24.0, 360 * sum(range(24))) for d in range(DAYS)
    ]
    assert daily(conn) == want
    sweep(store, conn)  # folded hours are not added again
    assert daily(conn) == want


def test_a_wide_series_reads_the_days(db: tuple[Store, sqlite3.Connection]) -> None:
    store, conn = db
    sweep(store, conn)
    # The hours gone (as a shorter hourly retention would leave them): the days answer.
    with immediate(conn):
        conn.execute("DELETE FROM rollups")
    got = repo.series(conn, "wl-1", "water_level_cm", END - 365 * DAY, END, END, 500)
    assert [(b.ts, b.value, b.min, b.max, b.n) for b in got] == [
        (END - (DAYS - d) * DAY + DAY / 2, 11.5, -1.0, 24.0, 24 * 360) for d in range(DAYS)
    ]
    # Buckets narrower than half a day read the days too where the hours are gone.
    narrow = repo.series(conn, "wl-1", "water_level_cm", END - DAY, END, END, 500)
    assert [(b.ts, b.n) for b in narrow] == [(END - DAY / 2, 24 * 360)]


def test_hours_go_after_hourly_days_once_folded_days_stay(
    db: tuple[Store, sqlite3.Connection],
) -> None:
    store, conn = db
    sweep(store, conn, hourly_days=2)
    hours_left = tuple(conn.execute("SELECT min(hour), count(*) FROM rollups").fetchone())
    assert hours_left == ((END - 2 * DAY) // HOUR, 48)
    assert len(daily(conn)) == DAYS
    # A narrow chart of the last day reads its hours; of four days ago, that day.
    last = repo.series(conn, "wl-1", "water_level_cm", END - DAY, END, END, 500)
    assert len(last) == 24
    old = repo.series(conn, "wl-1", "water_level_cm", END - 4 * DAY, END - 3 * DAY, END, 500)
    assert [(b.ts, b.n) for b in old] == [(END - 3.5 * DAY, 24 * 360)]


def test_a_series_over_days_and_hours_counts_each_reading_once(
    db: tuple[Store, sqlite3.Connection],
) -> None:
    store, conn = db
    before = repo.series(conn, "wl-1", "water_level_cm", END - 4.7 * DAY, END, END, 4)
    sweep(store, conn)
    after = repo.series(conn, "wl-1", "water_level_cm", END - 4.7 * DAY, END, END, 4)
    assert sum(b.n for b in after) == sum(b.n for b in before)
    assert sum(b.value * b.n for b in after) == pytest.approx(sum(b.value * b.n for b in before))


def test_days_expire_after_rollup_days(db: tuple[Store, sqlite3.Connection]) -> None:
    store, conn = db
    sweep(store, conn)
    sweep(store, conn, rollup_days=2)
    assert [d for d, *_ in daily(conn)] == [END - 2 * DAY, END - DAY]
