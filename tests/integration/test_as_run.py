"""The as-run log through crashes and a full disk (real SQLite; the full disk a real 2 MiB
tmpfs, the hub in this process with a real broker): a broadcast left ``playing`` by a dead
hub is logged ``interrupted`` with how far it got and replayed at most once; a row the
full disk refused is written once space returns, exactly once."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from audio.sinks.file import FileSink
from audio.sinks.null import NullSink
from hub.broadcast.playout import PaAdapter, Playout, PlayoutPolicy
from hub.broadcast.recovery import recover_interrupted
from hub.clock import FakeClock
from hub.events import BroadcastLogged, Dispatcher
from hub.store import Store
from hub.store.announcements import AnnouncementTable, BroadcastLog
from tests.broker import Broker
from tests.hubtest import InProcessHub, hub_settings

T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)  # 07:00 in the village
TZ = ZoneInfo("Asia/Ho_Chi_Minh")


class Log:
    """A real database with announcements, and the as-run log over it."""

    def __init__(self, path: Path) -> None:
        self.store = Store(path)
        self.table = AnnouncementTable(self.store, TZ)
        self.log = BroadcastLog(self.table)

    def announcement(self, aid: str, priority: str) -> None:
        with self.table.write() as conn:
            self.table.insert(
                conn,
                {
                    "id": aid,
                    "title": f"Tin {aid}",
                    "text": "Thông báo.",
                    "category": "emergency" if priority == "emergency" else "notice",
                    "priority": priority,
                    "zones": '["all"]',
                    "start_local": "2026-12-01T07:00:00",
                    "status": "done",
                    "render_wav": f"/var/cache/{aid}.wav",
                    "duration_s": 40.0,
                    "created_by": "test",
                    "created_at": 0.0,
                    "updated_at": 0.0,
                },
            )

    def on_air(self, aid: str, due: datetime, played_s: float | None, **kw: str) -> int:
        """What the playout writes before the amplifier and while it plays."""
        row = self.log.begin(
            aid, due, zones=["all"], priority=kw.get("priority", "normal"), at=due, detail=None
        )
        assert row is not None
        if played_s is not None:
            self.log.progress(row, started_at=due, at=due + timedelta(seconds=played_s))
        return row

    def rows(self) -> list[tuple[str, str, str | None]]:
        return [
            (r["announcement_id"], r["status"], r["detail"])
            for r in self.store.query("SELECT * FROM broadcasts ORDER BY id")
        ]


def playout(clock: FakeClock, log: BroadcastLog, events: Dispatcher) -> Playout:
    return Playout(
        sink=NullSink(clock=clock.now),
        pa=PaAdapter(None),
        clock=clock,
        policy=PlayoutPolicy(tz=TZ, quiet_hours=None),
        events=events,
        as_run=log,
    )


def test_cut_on_air_is_logged_interrupted_and_replayed_at_most_once(tmp_path: Path) -> None:
    db = Log(tmp_path / "hub.db")
    for aid, priority in (("e", "emergency"), ("near", "normal"), ("far", "high")):
        db.announcement(aid, priority)
    db.on_air("e", T0 - timedelta(seconds=30), 20, priority="emergency")
    db.on_air("near", T0 - timedelta(minutes=2), None)
    db.on_air("far", T0 - timedelta(minutes=20), 30, priority="high")
    clock, events = FakeClock(T0), Dispatcher()
    logged: list[str] = []
    events.subscribe(BroadcastLogged, lambda ev: logged.append(ev.broadcast.status))

    p = playout(clock, db.log, events)
    replays = recover_interrupted(p, db.log, emergency=True, others_within_s=600)
    assert db.rows() == [
        ("e", "interrupted", "cut after ~20 s of 40 s"),
        ("near", "interrupted", "cut in its first seconds, of 40 s"),
        ("far", "interrupted", "cut after ~30 s of 40 s"),
    ]
    assert logged == ["interrupted"] * 3
    # The emergency at once, the normal one within its grace; the one 20 min old not.
    assert [(j.announcement_id, j.scheduled_for, j.replay_of) for j in replays] == [
        ("e", T0, T0 - timedelta(seconds=30)),
        ("near", T0, T0 - timedelta(minutes=2)),
    ]
    assert [j.announcement_id for j in p.pending] == ["e", "near"]

    # The replay goes on air (its own row: its instant is the restart's) and the hub dies
    # again: logged interrupted, never replayed a second time.
    row = db.log.begin(
        "e", T0, zones=["all"], priority="emergency", at=T0, detail="replay of the broadcast of x"
    )
    assert row is not None
    again = recover_interrupted(
        playout(clock, db.log, events), db.log, emergency=True, others_within_s=600
    )
    assert again == []
    assert db.rows()[-1] == (
        "e",
        "interrupted",
        "cut in its first seconds, of 40 s; replay of the broadcast of x",
    )
    # Nothing left playing: a third start finds nothing.
    assert recover_interrupted(p, db.log, emergency=True, others_within_s=600) == []
    db.store.close()


def test_replaying_is_a_setting(tmp_path: Path) -> None:
    db = Log(tmp_path / "hub.db")
    db.announcement("e", "emergency")
    db.announcement("n", "normal")
    db.on_air("e", T0, 5, priority="emergency")
    db.on_air("n", T0, 5)
    p = playout(FakeClock(T0 + timedelta(seconds=10)), db.log, Dispatcher())
    assert recover_interrupted(p, db.log, emergency=False, others_within_s=None) == []
    assert [s for _, s, _ in db.rows()] == ["interrupted", "interrupted"]
    db.store.close()


# ---- a full disk -------------------------------------------------------------------------


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


def _rows(db: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute("SELECT announcement_id, status FROM broadcasts").fetchall()
    finally:
        conn.close()


@pytest.mark.broker
def test_a_row_the_full_disk_refused_is_written_once_space_returns(
    broker: Broker, small_disk: Path, tmp_path: Path
) -> None:
    clock = FakeClock(T0)
    h = InProcessHub(
        hub_settings(broker, small_disk),
        clock,
        # The loudspeakers are not on the SD card: the sink plays whatever the disk says.
        sink=FileSink(tmp_path / "out", speed=0, clock=clock.now),
    )
    plays: list[str] = []
    h.hub.playout.trace = lambda what, at: plays.append(what) if what == "play" else None
    logged: list[str] = []
    h.hub.events.subscribe(BroadcastLogged, lambda ev: logged.append(ev.broadcast.status))
    try:
        r = h.http("head").post(
            "/api/announcements",
            json={"title": "Một", "text": "Một.", "start_at": "2026-12-01T07:01:00"},
        )
        assert r.status_code == 201, r.text
        aid = r.json()["id"]
        # Every page the database had in spare is used up too: the WAL file goes.
        h.hub.store.connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        _fill(small_disk)
        h.run_until(lambda: plays, step=2.0, what="the broadcast")
        h.run_until(lambda: h.hub.playout.writer.unwritten == 1, step=2.0, what="row kept")
        assert _rows(small_disk / "hub.db") == [] and logged == []
        # Space again: the next turn of the playout writes it, once.
        (small_disk / "filler").unlink()
        h.run_until(lambda: logged, step=2.0, what="the row written")
        later = clock.now() + timedelta(seconds=30)
        h.run_until(lambda: clock.now() > later, step=2.0)
        assert _rows(small_disk / "hub.db") == [(aid, "played")]
        assert logged == ["played"] and plays == ["play"]
        assert h.hub.playout.writer.unwritten == 0
        [b] = h.http().get("/api/broadcasts").json()
        assert (b["announcement_id"], b["status"]) == (aid, "played")
    finally:
        h.stop()
