"""A database at schema 13 (JSON readings in ``events``, device-major rollups) upgraded to
the packed, time-major readings: the event log, the series and the packet ids' digests
read the same after the upgrade as the JSON rows gave."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from hub.store import MIGRATIONS, Store
from hub.store import devices as repo
from hub.store import ingest as ingest_repo

T0 = 1_796_083_200.0  # 2026-12-01 00:00 UTC
TOPIC = "village/t/ap/ap-1/state"


def old_database(path: Path) -> list[dict[str, object]]:
    """Schema 13 with a day of an AP's readings (ints, decimals, a counter, info) and
    rollups of the day before; the readings as their JSON rows said."""
    conn = sqlite3.connect(path)
    for script in MIGRATIONS[:13]:
        conn.executescript(script)
    bodies = []
    rows: list[tuple[object, ...]] = []
    for i in range(8640):  # every 10 s for a day
        ts = T0 + i * 10 + 0.125
        body: dict[str, object] = {
            "metrics": {"clients": i % 17, "cpu_pct": round(3 + (i % 70) / 10, 1)}
        }
        body["metrics"]["rx_bytes"] = 10**10 + i * 12_345  # type: ignore[index]
        body["info"] = {"ssid": "LangSo", "fw": "23.05" if i < 5000 else "24.10"}
        bodies.append(body)
        rows.append(
            (
                ts,
                ts + 0.25,
                "ap-1",
                "reading",
                TOPIC,
                json.dumps(body),
                i % 65535 + 1,
                (i).to_bytes(8, "big"),
            )
        )
    rows.append((T0 + 5, T0 + 5, "ap-1", "status", "s", '{"online": true}', None, None))
    conn.executemany(
        "INSERT INTO events(ts, received_at, device_id, type, topic, data, mid, digest)"
        " VALUES (?,?,?,?,?,?,?,?)",
        rows,
    )
    conn.executemany(
        "INSERT INTO metrics_rollup(device_id, name, hour, n, min, max, sum)"
        " VALUES (?,?,?,?,?,?,?)",
        [("ap-1", "clients", T0 - 86_400 + h * 3600, 360, 0, 16, 2880.0) for h in range(24)],
    )
    conn.execute(
        "INSERT INTO devices(id, kind, source, first_seen, last_seen) VALUES"
        " ('ap-1', 'ap', 'native', ?, ?)",
        (T0 - 86_400, T0 + 86_400),
    )
    conn.execute("INSERT INTO meta(key, value) VALUES ('rollup_until', ?)", (str(T0),))
    conn.execute("PRAGMA user_version=13")
    conn.commit()
    conn.close()
    return bodies


def test_json_readings_and_rollups_read_the_same_after_the_upgrade(tmp_path: Path) -> None:
    bodies = old_database(tmp_path / "hub.db")
    store = Store(tmp_path / "hub.db")
    conn = store.connection()
    try:
        assert conn.execute("SELECT count(*) FROM events WHERE type='reading'").fetchone()[0] == 0
        # The event log: newest first, each reading's JSON as it was, its info included.
        log = repo.events(conn, "ap-1", None, 3)
        assert [e.type for e in log] == ["reading"] * 3
        assert [e.data for e in log] == bodies[:-4:-1]
        assert log[0].ts == T0 + 8639 * 10 + 0.125 and log[0].received_at == log[0].ts + 0.25
        assert log[0].topic == TOPIC
        early = repo.events(conn, "ap-1", None, 9000)
        assert len(early) == 8641 and early[-1].data == bodies[0]
        # Every raw value, as stored (a day: each reading its own point).
        for name in ("clients", "cpu_pct", "rx_bytes"):
            got = repo.series(conn, "ap-1", name, T0, T0 + 86_400, T0, 8640)
            assert [b.value for b in got] == [b["metrics"][name] for b in bodies]  # type: ignore[index]
            assert got[0].ts == T0 + 0.125
        # The rollups of the day before, hour by hour.
        hours = repo.series(conn, "ap-1", "clients", T0 - 86_400, T0, T0, 24)
        assert [(b.ts, b.value, b.min, b.max, b.n) for b in hours] == [
            (T0 - 86_400 + h * 3600 + 1800, 8.0, 0, 16, 360) for h in range(24)
        ]
        # A re-delivery after the upgrade is still recognised by its packet id's digest.
        digests = dict(ingest_repo.last_digests(conn))
        assert digests[8640 % 65535] == (8639).to_bytes(8, "big")
    finally:
        store.close()
