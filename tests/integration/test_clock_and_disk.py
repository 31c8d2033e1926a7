"""Emergencies through a wrong clock and a full disk: a real broker, real SQLite, real HTTP,
the hub in this process on a fake clock; the full disk is a real 2 MiB tmpfs."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from audio.sinks.file import FileSink
from hub.clock import FakeClock
from hub.events import AlertChanged
from tests.broker import Broker
from tests.hubtest import InProcessHub, hub_settings

pytestmark = pytest.mark.broker

T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)  # 07:00 in the village


class Hub:
    def __init__(self, broker: Broker, data: Path, clock: FakeClock, **kw: Any) -> None:
        self.clock = clock
        self.h = InProcessHub(
            hub_settings(broker, data),
            clock,
            sink=FileSink(data / "out", speed=0, clock=clock.now),
            **kw,
        )
        self.plays: list[str] = []
        self.h.hub.playout.trace = lambda what, at: (
            self.plays.append(what) if what == "play" else None
        )
        self.alerts: list[tuple[str, str]] = []
        self.h.hub.events.subscribe(
            AlertChanged, lambda ev: self.alerts.append((ev.alert.rule, ev.alert.state))
        )

    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        r = self.h.http("head").post("/api/announcements", json=body)
        assert r.status_code == 201, r.text
        out: dict[str, Any] = r.json()
        return out

    def fresh_sign_in(self) -> None:
        for client in self.h._clients.values():
            client.close()
        self.h._clients.clear()
        self.h.tokens.clear()

    def broadcasts(self) -> list[dict[str, Any]]:
        return list(reversed(self.h.http().get("/api/broadcasts", params={"limit": 200}).json()))

    def announcement(self, aid: str) -> dict[str, Any]:
        out: dict[str, Any] = self.h.http().get(f"/api/announcements/{aid}").json()
        return out


EMERGENCY = {"title": "Lũ", "text": "Nước lên.", "category": "emergency", "priority": "emergency"}


def test_with_the_clock_unsynchronised_now_plays_and_scheduled_waits(
    broker: Broker, tmp_path: Path
) -> None:
    h = Hub(broker, tmp_path / "hub", FakeClock(T0), synced=lambda: False)
    try:
        later = h.post({"title": "Họp", "text": "Họp thôn.", "start_at": "2026-12-01T07:01:00"})
        e = h.post(EMERGENCY)
        now = h.post({"title": "Ngay", "text": "Thông báo ngay."})
        h.h.run_until(lambda: len(h.broadcasts()) == 2, step=2.0, what="the two 'now' items played")
        assert {b["announcement_id"]: b["status"] for b in h.broadcasts()} == {
            e["id"]: "played",
            now["id"]: "played",
        }
        open_alerts = h.h.http("technician").get("/api/alerts", params={"state": "open"}).json()
        assert "clock_unsynced" in {a["rule"] for a in open_alerts}
        # The one scheduled for 07:01 waits for a clock it can trust.
        h.h.run_until(lambda: h.clock.now() > T0 + timedelta(minutes=5), step=2.0)
        assert len(h.broadcasts()) == 2
        assert h.announcement(later["id"])["status"] == "scheduled"
    finally:
        h.h.stop()


def test_a_jump_of_a_year_logs_one_missed_and_never_holds_an_emergency(
    broker: Broker, tmp_path: Path
) -> None:
    clock = FakeClock(T0)
    h = Hub(broker, tmp_path / "hub", clock)
    try:
        hourly = [
            h.post(
                {
                    "title": f"Giờ {i}",
                    "text": "Báo giờ.",
                    "rrule": "FREQ=HOURLY",
                    "start_at": "2026-12-01T07:30:00",
                }
            )
            for i in range(3)
        ]
        clock.set(T0 + timedelta(days=365, minutes=45))  # 07:45 a year on: nothing ran
        h.fresh_sign_in()  # the year outlived the tokens
        t = time.monotonic()
        e = h.post(EMERGENCY)
        h.h.run_until(
            lambda: any(b["announcement_id"] == e["id"] for b in h.broadcasts()),
            what="the emergency after the jump",
        )
        took = time.monotonic() - t
        assert took < 20, f"the emergency waited {took:.0f} s"
        h.h.run_until(
            lambda: sum(b["status"] == "missed" for b in h.broadcasts()) == 3, what="missed"
        )
        for a in hourly:
            mine = [b for b in h.broadcasts() if b["announcement_id"] == a["id"]]
            assert [(b["scheduled_for"], b["status"]) for b in mine] == [
                ("2026-12-01T00:30:00Z", "missed")
            ]
            assert h.announcement(a["id"])["next_run"] == "2027-12-01T01:30:00Z"
    finally:
        h.h.stop()


def test_after_two_days_ahead_and_back_next_run_follows_the_clock(
    broker: Broker, tmp_path: Path
) -> None:
    clock = FakeClock(T0)
    h = Hub(broker, tmp_path / "hub", clock)
    try:
        a = h.post(
            {
                "title": "Tin",
                "text": "Bản tin.",
                "rrule": "FREQ=DAILY",
                "start_at": "2026-12-01T19:00:00",
            }
        )
        assert a["next_run"] == "2026-12-01T12:00:00Z"
        clock.set(T0 + timedelta(days=2))
        h.h.run_until(
            lambda: h.announcement(a["id"])["next_run"] == "2026-12-03T12:00:00Z",
            what="next run two days on",
        )
        clock.set(T0 + timedelta(seconds=30))  # NTP puts it right
        # FakeClock moves its monotonic time back too (a real one never does): the
        # scheduler's wait was measured on it, so wake it as real time passing would.
        h.h.hub.scheduler.wake()
        h.h.run_until(
            lambda: h.announcement(a["id"])["next_run"] == "2026-12-01T12:00:00Z",
            what="next run back with the clock",
        )
    finally:
        h.h.stop()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MiB tmpfs (root only), unmounted after the test."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    d = tmp_path / "small"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(d)], check=True)
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], check=True)


def _fill(d: Path) -> None:
    """Write zeros until the file system says it is full (bounded by its 2 MiB)."""
    with contextlib.suppress(OSError), open(d / "filler", "wb") as f:
        for _ in range(1024):
            f.write(b"\0" * 4096)
            f.flush()


def test_a_full_disk_plays_an_occurrence_once_and_says_disk_full(
    broker: Broker, tmp_path: Path, small_disk: Path
) -> None:
    clock = FakeClock(T0)
    h = Hub(broker, small_disk, clock, synced=lambda: True)
    try:
        first = h.post({"title": "Một", "text": "Một.", "start_at": "2026-12-01T07:01:00"})
        second = h.post({"title": "Hai", "text": "Hai.", "start_at": "2026-12-01T07:03:00"})
        # Every page the database had in spare is used up too: the WAL file goes.
        h.h.hub.store.connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        _fill(small_disk)
        h.h.run_until(lambda: len(h.plays) >= 1, step=2.0, what="the first occurrence")
        # The refused write never sends it back to the playout.
        h.h.run_until(
            lambda: len(h.plays) >= 2, step=2.0, limit=600, what="the second (rendered) item"
        )
        # Three minutes of ticks after the second (a refused write replayed every 10 s).
        h.h.run_until(lambda: h.clock.now() > T0 + timedelta(minutes=6), step=2.0)
        assert h.plays == ["play", "play"]
        assert [a for a in h.alerts if a[0] in ("disk_full", "storage_failed")] == [
            ("disk_full", "raised")
        ]
        # Space again: the schedule is written, the alert cleared.
        (small_disk / "filler").unlink()
        h.h.run_until(lambda: ("disk_full", "cleared") in h.alerts, step=2.0, what="alert cleared")
        # Each refused write is retried at a later tick: wait for both, then look.
        for a in (first, second):
            h.h.run_until(
                lambda a=a: h.announcement(a["id"])["status"] != "scheduled",
                what=f"{a['id']} written",
            )
            assert h.announcement(a["id"])["status"] == "done"
        assert len(h.plays) == 2
    finally:
        h.h.stop()
