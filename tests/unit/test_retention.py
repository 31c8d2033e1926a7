"""Rollups and retention on a real SQLite file: a year of readings stays small."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from hub.clock import FakeClock
from hub.settings import RetentionSettings
from hub.store import SCHEMA_VERSION, Store
from hub.store.retention import Retention
from tests.storedata import add_events, count_events, rollups

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
    add_events(conn, rows)
    clock = FakeClock(datetime.fromtimestamp(T0 + 3 * 3600 + 60, UTC))
    r = Retention(RetentionSettings(events_days=1), store, ingest_conn=conn, clock=clock)
    r.sweep()
    got = [g[2:] for g in rollups(conn, "water_level_cm")]
    assert got == [
        (T0, 6, 0, 50, 150),
        (T0 + 3600, 6, 60, 110, 510),
        (T0 + 7200, 6, 120, 170, 870),
    ]
    assert count_events(conn) == len(rows)
    # Two days later the raw readings are gone, the hourly rollup stays.
    clock.advance(2 * 86_400)
    r.sweep()
    assert count_events(conn) == 0
    assert len(rollups(conn)) == 6
    conn.close()
    store.close()


def test_feedback_marked_done_expires_and_the_rest_stays(tmp_path: Path) -> None:
    store = Store(tmp_path / "hub.db")
    conn = store.new_connection()
    day = 86_400.0
    for message, status, received, updated in (
        ("old, done", "done", T0 - 500 * day, T0 - 450 * day),
        ("old, done lately", "done", T0 - 500 * day, T0 - 10 * day),
        ("old, never handled", "new", T0 - 500 * day, None),
        ("old, read", "read", T0 - 500 * day, T0 - 450 * day),
    ):
        conn.execute(
            "INSERT INTO feedback(received_at, message, status, ip_hash, updated_at)"
            " VALUES (?,?,?,?,?)",
            (received, message, status, "h", updated),
        )
    clock = FakeClock(datetime.fromtimestamp(T0, UTC))
    Retention(RetentionSettings(feedback_days=400), store, ingest_conn=conn, clock=clock).sweep()
    left = sorted(r[0] for r in conn.execute("SELECT message FROM feedback"))
    assert left == ["old, done lately", "old, never handled", "old, read"]
    conn.close()
    store.close()


def test_the_render_cache_keeps_what_announcements_use_and_what_was_used_lately(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "hub.db")
    conn = store.new_connection()
    cache = tmp_path / "render"
    cache.mkdir()
    day = 86_400.0

    def entry(key: str, age_days: float) -> list[Path]:
        files = [cache / f"{key}.json", cache / f"{key}.wav", cache / f"{key}.ogg"]
        for f in files:
            f.write_bytes(b"x")
            t = T0 - age_days * day
            os.utime(f, (t, t))
        return files

    preview = entry("aa11", 40)  # a listen preview nobody scheduled
    fresh = entry("bb22", 5)  # used five days ago
    scheduled = entry("cc33", 300)  # an announcement's audio: kept however old
    conn.execute(
        "INSERT INTO announcements(id, title, category, priority, zones, start_local, status,"
        " created_at, updated_at, created_by, render_wav, render_web) VALUES"
        " ('a1', 't', 'news', 'normal', '[]', '2026-01-01T06:00', 'done', 0, 0, 'x', ?, ?)",
        (str(scheduled[1]), str(scheduled[2])),
    )
    crashed = cache / ".render-abc"
    crashed.mkdir()
    (crashed / "program.wav").write_bytes(b"x")
    os.utime(crashed, (T0 - 2 * day, T0 - 2 * day))
    clock = FakeClock(datetime.fromtimestamp(T0, UTC))
    r = Retention(
        RetentionSettings(render_cache_days=30),
        store,
        ingest_conn=conn,
        clock=clock,
        render_dir=cache,
    )
    r.sweep()
    assert not any(f.exists() for f in preview)
    assert all(f.exists() for f in fresh + scheduled)
    assert not crashed.exists()
    # Not while a render runs: it may be reusing an old entry.
    again = entry("dd44", 40)
    with r.render_lock:
        assert r.sweep_render_cache(T0) == 0
    assert all(f.exists() for f in again)
    assert r.sweep_render_cache(T0) == 1
    conn.close()
    store.close()
