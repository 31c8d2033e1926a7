"""Rollups and retention on a real SQLite file: a year of readings stays small."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from hub.clock import FakeClock
from hub.retention import Retention
from hub.settings import RetentionSettings
from hub.store import SCHEMA_VERSION, Store

T0 = datetime(2026, 12, 1, tzinfo=UTC).timestamp()


def test_schema_is_migrated_once_and_versioned(tmp_path: Path) -> None:
    s = Store(tmp_path / "hub.db")
    assert s.one("PRAGMA user_version")[0] == SCHEMA_VERSION  # type: ignore[index]
    assert s.one("PRAGMA journal_mode")[0] == "wal"  # type: ignore[index]
    s.close()
    Store(tmp_path / "hub.db").close()  # opening again migrates nothing and fails nothing


def test_hourly_rollup_then_raw_events_expire(tmp_path: Path) -> None:
    store = Store(tmp_path / "hub.db")
    conn = store.new_connection()
    rows = []
    for minute in range(0, 180, 10):  # three hours, a reading every 10 minutes
        ts = T0 + minute * 60
        rows.append(
            (
                ts,
                ts,
                "wl-1",
                "reading",
                "t",
                json.dumps({"metrics": {"water_level_cm": minute, "battery_pct": 80}}),
            )
        )
    rows.append((T0, T0, "wl-1", "status", "t", json.dumps({"online": True})))
    conn.executemany(
        "INSERT INTO events(ts, received_at, device_id, type, topic, data) VALUES (?,?,?,?,?,?)",
        rows,
    )
    clock = FakeClock(datetime.fromtimestamp(T0 + 3 * 3600 + 60, UTC))
    r = Retention(RetentionSettings(events_days=1), store, ingest_conn=conn, clock=clock)
    r.sweep()
    got = conn.execute(
        "SELECT hour, n, min, max, sum FROM metrics_rollup WHERE name='water_level_cm'"
        " ORDER BY hour"
    ).fetchall()
    assert [tuple(g) for g in got] == [
        (T0, 6, 0, 50, 150),
        (T0 + 3600, 6, 60, 110, 510),
        (T0 + 7200, 6, 120, 170, 870),
    ]
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == len(rows)
    # Two days later the raw readings are gone, the hourly rollup stays.
    clock.advance(2 * 86_400)
    r.sweep()
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM metrics_rollup").fetchone()[0] == 6
    conn.close()
    store.close()
