"""Retention's defaults for a year on an SD card: which metrics' hourly rollups stay a year.

An access point's uptime, channel and noise floor are kept 30 days (bench/year.py: their
year of rollups was a quarter of the database); its clients, and a gauge's water level,
the whole ``rollup_days``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from hub.clock import FakeClock
from hub.settings import RetentionSettings
from hub.store import Store, immediate
from hub.store.retention import Retention
from tests.storedata import add_rollups, rollups

T0 = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
DAY = 86_400.0


def test_constant_metrics_lose_their_rollups_after_30_days_the_others_stay(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "hub.db")
    conn = store.new_connection()
    # An hour 40 days ago and one 10 days ago, for each metric.
    hours = [(T0 - 40 * DAY, 360, 1.0, 2.0, 540.0), (T0 - 10 * DAY, 360, 1.0, 2.0, 540.0)]
    with immediate(conn):
        for name in ("uptime_s", "channel", "noise_dbm", "clients"):
            add_rollups(conn, "ap-001", name, hours)
        add_rollups(conn, "wl-001", "water_level_cm", hours)
        conn.execute("INSERT INTO meta(key, value) VALUES('rollup_until', ?)", (str(T0),))
    clock = FakeClock(datetime.fromtimestamp(T0, UTC))
    Retention(RetentionSettings(), store, ingest_conn=conn, clock=clock).sweep()
    kept = {(r[1], r[2]) for r in rollups(conn)}
    for name in ("uptime_s", "channel", "noise_dbm"):
        assert (name, T0 - 40 * DAY) not in kept
        assert (name, T0 - 10 * DAY) in kept
    for name in ("clients", "water_level_cm"):
        assert {(name, T0 - 40 * DAY), (name, T0 - 10 * DAY)} <= kept
    # The days too: the three constant metrics only from 30 days ago.
    days = conn.execute(
        "SELECT c.name, d.day * 86400.0 FROM rollups_daily d JOIN codes c ON c.id = d.metric"
    ).fetchall()
    assert sorted(n for n, d in days if d < T0 - 30 * DAY) == ["clients", "water_level_cm"]
    assert len(days) == 7  # 5 metrics x 2 days, less the three 40-day-old ones
    conn.close()
    store.close()


def test_a_table_given_replaces_the_default() -> None:
    s = RetentionSettings(rollup_days_by_metric={"uptime_s": 7})
    assert s.rollup_days_by_metric == {"uptime_s": 7}
    assert RetentionSettings().rollup_days_by_metric == {
        "uptime_s": 30,
        "channel": 30,
        "noise_dbm": 30,
    }
