"""Metric series that are true: the newest readings are never cut, a day reaches now, a
year is one request, downsampled in the database to the points asked.

The hub in this process (fake clock that never moves here, so no retention sweep runs),
a real broker, real HTTP, a real SQLite file. The readings and rollups are written
straight into the store's own tables in bulk (as ingest and retention would have left
them): a year of ingest would take hours, and what is tested is the read.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hub.clock import FakeClock
from hub.web import views
from tests.broker import Broker
from tests.hubtest import InProcessHub, hub_settings
from tests.storedata import add_rollups, convert_all

pytestmark = pytest.mark.broker

NOW = datetime(2026, 12, 1, 10, 17, 23, tzinfo=UTC)
T = NOW.timestamp()
HOUR = 3600.0
DAY = 86_400.0
METRIC = "water_level_cm"


@pytest.fixture(scope="module")
def village(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessHub]:
    data: Path = tmp_path_factory.mktemp("series")
    h = InProcessHub(hub_settings(broker, data), FakeClock(NOW))
    yield h
    h.stop()


def fill(
    h: InProcessHub,
    device: str,
    readings: Iterable[tuple[float, float]] = (),
    rollups: Iterable[tuple[float, int, float, float, float]] = (),
    folded: float | None = None,
) -> None:
    """A sensor with its raw readings (ts, value), hourly rollups (hour, n, min, max, sum)
    and, if given, retention's watermark (the hours before it are rolled up)."""
    conn = h.hub.store.new_connection()
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO devices(id, kind, source, status, first_seen, last_seen)"
            " VALUES(?, 'sensor', 'native', 'online', ?, ?)",
            (device, T - 400 * DAY, T),
        )
        topic = f"village/{h.settings.site}/sensor/{device}/state"
        conn.executemany(
            "INSERT INTO events(ts, received_at, device_id, type, topic, data)"
            " VALUES(?, ?, ?, 'reading', ?, ?)",
            ((ts, ts, device, topic, json.dumps({"metrics": {METRIC: v}})) for ts, v in readings),
        )
        add_rollups(conn, device, METRIC, rollups)
        if folded is not None:
            conn.execute(
                "INSERT INTO meta(key, value) VALUES('rollup_until', ?)"
                " ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (str(folded),),
            )
        conn.execute("COMMIT")
        convert_all(conn)  # the readings, as the store keeps them
    except sqlite3.Error:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()


def series(h: InProcessHub, device: str, **params: Any) -> list[dict[str, Any]]:
    r = h.http("technician").get(
        f"/api/devices/{device}/metrics", params={"name": METRIC, **params}
    )
    assert r.status_code == 200, r.text[:300]
    out: list[dict[str, Any]] = r.json()
    return out


def ts(point: dict[str, Any]) -> float:
    return datetime.fromisoformat(point["ts"].replace("Z", "+00:00")).timestamp()


def test_more_readings_than_points_end_at_the_newest(village: InProcessHub) -> None:
    # 2,000 readings over the last day, rising: the newest is the highest.
    fill(village, "s-cut", ((T - DAY + 43.2 * (i + 0.5), float(i)) for i in range(2000)))
    since = (T - DAY, T)
    got = series(village, "s-cut", since=str(since[0]), until=str(since[1]), points=100)
    assert len(got) == 100  # 20 readings a bucket, every bucket averaged
    assert [p["n"] for p in got] == [20] * 100
    assert got[-1]["max"] == 1999.0 and got[-1]["value"] == pytest.approx(1989.5)
    assert got[0]["min"] == 0.0
    assert ts(got[-1]) > T - DAY / 100
    # Asked for as many points as there are: the readings as stored, the newest last.
    stored = series(village, "s-cut", since=str(since[0]), points=2000)
    assert [p["value"] for p in stored] == [float(i) for i in range(2000)]


def test_the_default_day_reaches_now(village: InProcessHub) -> None:
    # A reading every 10 s for 25 hours (9,000): more than the old 5,000-row cut.
    n = 9000
    fill(village, "s-day", ((T - 10.0 * (n - 1 - i), float(i)) for i in range(n)))
    got = series(village, "s-day")
    width = DAY / 500
    assert len(got) == 500
    assert ts(got[-1]) > T - width and got[-1]["max"] == float(n - 1)
    assert T - DAY <= ts(got[0]) < T - DAY + width
    assert [p["value"] for p in got] == sorted(p["value"] for p in got)


def test_a_year_is_one_request_of_rollups_then_readings(village: InProcessHub) -> None:
    # Retention left hourly rollups for the year (the value: the day's number, 360
    # readings an hour) and raw readings since the last folded hour (one a minute).
    folded = T - T % HOUR
    first = folded - 366 * DAY
    hours = [first + i * HOUR for i in range(int((folded - first) // HOUR))]

    def day(t: float) -> float:
        return (t - first) // DAY

    rollups = ((hr, 360, day(hr) - 1, day(hr) + 1, 360 * day(hr)) for hr in hours)
    readings = [(t, day(t)) for t in (folded + 60.0 * i for i in range(int((T - folded) // 60)))]
    fill(village, "s-year", readings, rollups, folded=folded)
    t0 = T - 365 * DAY
    got = series(village, "s-year", since=str(t0), points=500)
    width = 365 * DAY / 500
    assert len(got) == 500
    assert t0 <= ts(got[0]) < t0 + width
    # The last bucket holds the newest raw readings, after the rollups.
    assert ts(got[-1]) > T - width and got[-1]["max"] == readings[-1][1] == 366.0
    values = [p["value"] for p in got]
    assert values == sorted(values) and values[0] == pytest.approx(1.0, abs=0.5)
    # Only the rollups: the same range, hourly data up to the last folded hour.
    hourly = series(village, "s-year", since=str(t0), resolution="hour", points=500)
    assert len(hourly) == 500 and ts(hourly[-1]) < folded and hourly[-1]["max"] == 366.0
    # The device page's chart reads the same way: its points, reaching now.
    chart = views.series(village.hub, "s-year", METRIC, t0, T)
    assert len(chart) == views.CHART_POINTS and chart[-1][0] > T - 365 * DAY / views.CHART_POINTS


def test_where_readings_expired_the_rollups_fill_in_once(village: InProcessHub) -> None:
    # Three days at 500 points (8.6-minute buckets): readings (value 1, one a minute) kept
    # for the last two days only, retention cut mid-hour; every hour rolled up (value 1),
    # hours before the cut counting readings that are gone.
    folded = T - T % HOUR
    cut = T - 2 * DAY - 1200.0
    start = T - 3 * DAY
    first = start - start % HOUR
    rollups = ((first + i * HOUR, 60, 1.0, 1.0, 60.0) for i in range(int((folded - first) // HOUR)))
    readings = [(cut + 60.0 * i, 1.0) for i in range(int((T - cut) // 60))]
    fill(village, "s-expired", readings, rollups, folded=folded)
    got = series(village, "s-expired", since=str(start), points=500)
    assert ts(got[0]) < start + 3600 and ts(got[-1]) > T - 3 * DAY / 500
    assert {p["value"] for p in got} == {1.0}  # nothing counted twice, nothing else mixed in
    hourly = [p for p in got if p["n"] == 60 and ts(p) < cut]
    assert len(hourly) >= 23  # the day before the cut, from its rollups
    assert sum(p["n"] for p in got if ts(p) >= cut) == len(readings)


@pytest.mark.parametrize("points", ["0", "5001", "many"])
def test_points_beyond_the_bounds_are_refused(village: InProcessHub, points: str) -> None:
    fill(village, f"s-bad-{points}")
    r = village.http("technician").get(
        f"/api/devices/s-bad-{points}/metrics", params={"name": METRIC, "points": points}
    )
    assert r.status_code == 422, r.text[:300]
    assert "points" in json.dumps(r.json()["detail"])


def test_the_api_documents_points(village: InProcessHub) -> None:
    spec = village.http().get("/openapi.json").json()
    params = spec["paths"]["/api/devices/{device_id}/metrics"]["get"]["parameters"]
    points = next(p for p in params if p["name"] == "points")
    assert points["schema"]["minimum"] == 1 and points["schema"]["maximum"] == 5000
    assert points["schema"]["default"] == 500 and "bucket" in points["description"]


def test_series_read_a_few_at_a_time_and_all_are_answered(
    village: InProcessHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub.services import devices as service
    from hub.store import devices as repo

    fill(village, "s-many", ((T - 10.0 * i, float(i)) for i in range(500)))
    real, lock = repo.series, threading.Lock()
    running, most = [0], [0]

    def counted(*args: Any, **kwargs: Any) -> Any:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            time.sleep(0.05)  # long enough for every thread to be waiting meanwhile
            return real(*args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(repo, "series", counted)
    got: list[int] = []
    threads = [
        threading.Thread(
            target=lambda: got.append(len(village.hub.devices.series("s-many", METRIC)))
        )
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert got == [500] * 8
    assert most[0] == service.SERIES_AT_ONCE
