"""A damaged database at start (`langso run` as a process, real SQLite files): moved aside
with its -wal, replaced by the newest good backup or an empty database, a critical alert
raised, and an emergency still plays. `langso restore` refuses while the hub runs."""

from __future__ import annotations

import gzip
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from hub.services.users import Users
from hub.store import Store
from tests.broker import Broker
from tests.hubtest import PASSWORD, HubProcess, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.slow]

ROOT = Path(__file__).parents[2]
PAGE = 4096


def _truncated(b: bytes) -> bytes:
    return b[: len(b) // 2]


def _zeroed(b: bytes) -> bytes:
    return bytes(len(b))


def _garbage(b: bytes) -> bytes:
    return os.urandom(len(b))


def _bad_header(b: bytes) -> bytes:
    return b"Not SQLite at all" + b[17:]


def _page_2(b: bytes) -> bytes:
    # The first table's root (meta): SQLite opens the file and reads its schema fine.
    return b[:PAGE] + os.urandom(PAGE) + b[2 * PAGE :]


DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "truncated": _truncated,
    "zeroed": _zeroed,
    "garbage": _garbage,
    "bad_header": _bad_header,
    "page_2": _page_2,
}


def langso(hub: HubProcess, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub", *args],
        input=stdin,
        env=hub.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def hub_database(db: Path, *, user: str | None = None) -> None:
    """A real hub database (every migration), optionally with a head account, closed so
    that everything is in the main file."""
    store = Store(db)
    try:
        if user:
            Users(store).add(user, "head", PASSWORD, actor="test", now=0)
        store.set_meta("marker", "from before the damage")
    finally:
        store.close()


def damage(db: Path, how: str) -> bytes:
    db.write_bytes(DAMAGE[how](db.read_bytes()))
    # A -wal left beside it (a power cut mid-write) must go aside with it, not be replayed.
    db.with_name("hub.db-wal").write_bytes(b"half a frame")
    return db.read_bytes()


def ro(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)


def hub_alerts(db: Path) -> list[tuple[str, str, str, str]]:
    conn = ro(db)
    try:
        return conn.execute(
            "SELECT device_id, rule, severity, message FROM alerts WHERE rule='database_corrupt'"
        ).fetchall()
    finally:
        conn.close()


def emergency_plays(hub: HubProcess, user: str) -> None:
    with httpx.Client(base_url=hub.url, timeout=120) as http:
        r = http.post("/api/auth/token", data={"username": user, "password": PASSWORD})
        assert r.status_code == 200, r.text
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        r = http.post(
            "/api/announcements",
            json={
                "title": "Lũ về",
                "text": "Nước lên nhanh.",
                "category": "emergency",
                "priority": "emergency",
                "zones": ["all"],
            },
            headers=headers,
        )
        assert r.status_code == 201, r.text
        aid = r.json()["id"]

        def played() -> bool:
            rows = http.get("/api/broadcasts", headers=headers).json()
            return any(b["announcement_id"] == aid and b["status"] == "played" for b in rows)

        wait_for(played, 60, "the emergency to play")


@pytest.mark.parametrize("how", list(DAMAGE))
def test_a_damaged_database_is_moved_aside_and_the_hub_starts_empty(
    broker: Broker, tmp_path: Path, how: str
) -> None:
    data = tmp_path / "hub"
    data.mkdir()
    db = data / "hub.db"
    hub_database(db, user="truong")
    damaged = damage(db, how)
    hub = HubProcess(broker, data, site=f"corrupt-{how.replace('_', '-')}")
    try:
        hub.start()
        [aside] = data.glob("hub.db.corrupt-*[0-9]Z")
        assert aside.read_bytes() == damaged  # kept as it was, for a post-mortem
        assert aside.with_name(aside.name + "-wal").read_bytes() == b"half a frame"
        [(device, rule, severity, message)] = hub_alerts(db)
        assert (device, rule, severity) == ("hub", "database_corrupt", "critical")
        assert aside.name in message and "empty database" in message
        # The empty database has no accounts: the one the message names is made, and an
        # emergency goes out (the recovery is one path whatever the damage: played once
        # here for the subtlest, and after a restore from a backup below).
        made = langso(hub, "user", "add", "moi", "--role", "head", "--password-stdin",
                      stdin=PASSWORD + "\n")  # fmt: skip
        assert made.returncode == 0, made.stderr
        if how == "page_2":
            emergency_plays(hub, "moi")
    finally:
        hub.stop()


def test_a_damaged_database_is_replaced_by_the_newest_good_backup(
    broker: Broker, tmp_path: Path
) -> None:
    data = tmp_path / "hub"
    data.mkdir()
    db = data / "hub.db"
    hub_database(db, user="truong")
    hub = HubProcess(broker, data, site="corrupt-backup")
    made = langso(hub, "backup")
    assert made.returncode == 0, made.stderr
    [good] = sorted((data / "backups").glob("hub-*.db.gz"))
    # A newer copy that is itself damaged (the card failing for a while): refused.
    newer = data / "backups" / "hub-29990101-000000.db.gz"
    newer.write_bytes(gzip.compress(_page_2(gzip.decompress(good.read_bytes()))))
    damage(db, "garbage")
    try:
        hub.start()
        [(_, _, _, message)] = hub_alerts(db)
        assert f"started from the backup {good.name}" in message
        assert newer.name in message  # said why it was not used
        conn = ro(db)
        try:
            [(marker,)] = conn.execute("SELECT value FROM meta WHERE key='marker'").fetchall()
        finally:
            conn.close()
        assert marker == "from before the damage"
        emergency_plays(hub, "truong")  # the account came back with the backup

        # While the hub runs, a restore is refused and touches nothing.
        refused = langso(hub, "restore", str(good))
        assert refused.returncode == 1
        assert "stop it first" in refused.stderr
        assert list(data.glob("hub.db.replaced-*")) == []
        assert list(data.glob("hub.db.restore-tmp*")) == []
    finally:
        hub.stop()
    # Stopped, the same restore goes through.
    done = langso(hub, "restore", str(good))
    assert done.returncode == 0, done.stderr
    assert len(list(data.glob("hub.db.replaced-*[0-9]Z"))) == 1
