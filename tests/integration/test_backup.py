"""`langso backup` and `langso restore` on real SQLite files: an online copy taken while a
writer commits is one consistent moment; a restore round-trips; a damaged backup is refused
and leaves the database alone; old copies are pruned to the budget."""

from __future__ import annotations

import gzip
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hub.errors import StoreError
from hub.store import Store, backup

ROOT = Path(__file__).parents[2]
BATCH = 500


def langso(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANGSO_")}
    env["LANGSO_DATA_DIR"] = str(data)
    # No hub answers here (restore also asks the HTTP address).
    env["LANGSO_HTTP__PORT"] = "9"
    return subprocess.run(
        [sys.executable, "-m", "hub", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def insert_batch(conn: sqlite3.Connection, batch: int) -> None:
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO events(ts, received_at, device_id, type, topic, data) VALUES (?,?,?,?,?,?)",
        [
            (batch, batch, f"s-{i % 50}", "reading", "t", f'{{"batch": {batch}}}')
            for i in range(BATCH)
        ],
    )
    conn.execute("COMMIT")


def unpacked(gz: Path, dest: Path) -> sqlite3.Connection:
    dest.write_bytes(gzip.decompress(gz.read_bytes()))
    return sqlite3.connect(dest)


def test_backup_while_a_writer_commits_is_consistent(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = Store(data / "hub.db")
    conn = store.writer_connection()
    for b in range(200):  # 100,000 rows: a copy that takes a while
        insert_batch(conn, b)
    stop = threading.Event()
    committed: list[float] = []

    def write() -> None:
        b = 200
        while not stop.is_set() and b < 100_000:
            insert_batch(conn, b)
            committed.append(time.monotonic())
            b += 1

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    started = time.monotonic()
    try:
        done = langso(data, "backup")
    finally:
        finished = time.monotonic()
        stop.set()
        writer.join(30)
    assert done.returncode == 0, done.stderr
    assert sum(started <= t <= finished for t in committed) > 0, "the writer was held up"
    # One read transaction: the copy never starts over because the writer committed.
    assert finished - started < 60
    [gz] = (data / "backups").glob("hub-*.db.gz")
    assert done.stdout.startswith(f"wrote {gz} (") and " integrity ok) in " in done.stdout
    copy = unpacked(gz, tmp_path / "copy.db")
    try:
        assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        # One moment: every batch in the copy is whole, and they run without a gap.
        sizes = copy.execute("SELECT ts, count(*) FROM events GROUP BY ts ORDER BY ts").fetchall()
    finally:
        copy.close()
    assert {n for _, n in sizes} == {BATCH}
    assert [int(ts) for ts, _ in sizes] == list(range(len(sizes)))
    assert len(sizes) >= 200
    store.close()


def test_restore_round_trip_moves_the_current_database_aside(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = Store(data / "hub.db")
    store.set_meta("state", "at the backup")
    assert langso(data, "backup").returncode == 0
    store.set_meta("state", "after the backup")
    store.close()
    [gz] = (data / "backups").glob("hub-*.db.gz")

    done = langso(data, "restore", str(gz))

    assert done.returncode == 0, done.stderr
    [aside] = data.glob("hub.db.replaced-*[0-9]Z")
    assert f"the database it replaced is at {aside}" in done.stdout
    for path, state in ((data / "hub.db", "at the backup"), (aside, "after the backup")):
        store = Store(path)
        try:
            assert store.get_meta("state") == state
        finally:
            store.close()


def test_a_damaged_backup_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = Store(data / "hub.db")
    store.set_meta("state", "current")
    store.close()
    before = (data / "hub.db").read_bytes()
    assert langso(data, "backup").returncode == 0
    [good] = (data / "backups").glob("hub-*.db.gz")
    raw = gzip.decompress(good.read_bytes())
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t(x)").connection.commit()
    bad = {
        "not-gzip.db.gz": b"garbage" * 100,
        "cut-short.db.gz": good.read_bytes()[: good.stat().st_size // 2],
        "page-2.db.gz": gzip.compress(raw[:4096] + os.urandom(4096) + raw[8192:]),
        "bad-header.db": b"Not SQLite at all" + raw[17:],
        "not-a-hub.db": other.read_bytes(),
    }
    for name, content in bad.items():
        (tmp_path / name).write_bytes(content)
        refused = langso(data, "restore", str(tmp_path / name))
        assert refused.returncode == 1, (name, refused.stdout)
        assert refused.stderr.startswith(f"langso: {tmp_path / name} "), refused.stderr
        assert (data / "hub.db").read_bytes() == before, name
        assert sorted(p.name for p in data.iterdir()) == ["backups", "hub.db", "hub.lock"]


def old_backups(data: Path, size: int) -> Path:
    Store(data / "hub.db").close()
    backups = data / "backups"
    backups.mkdir()
    for name in ("hub-20260101.db", "hub-20260102-023000.db.gz", "hub-20260103-023000.db.gz"):
        (backups / name).write_bytes(b"x" * size)
    (backups / "notes.txt").write_text("not a backup")
    return backups


def test_backup_keeps_the_newest_copies_up_to_keep(tmp_path: Path) -> None:
    backups = old_backups(tmp_path / "data", 1000)

    done = langso(tmp_path / "data", "backup", "--keep", "3")

    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in backups.iterdir())
    assert names[:2] == ["hub-20260102-023000.db.gz", "hub-20260103-023000.db.gz"]
    assert names[2].endswith(".db.gz") and names[3:] == ["notes.txt"]
    assert done.stdout.endswith(f"removed {backups / 'hub-20260101.db'} (over --keep 3 or "
                                "--max-mib 1024)\n")  # fmt: skip


def test_backup_keeps_the_newest_copies_within_the_size_budget(tmp_path: Path) -> None:
    backups = old_backups(tmp_path / "data", 600 * 1024)

    done = langso(tmp_path / "data", "backup", "--max-mib", "1")

    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in backups.iterdir())
    # The new copy (a few KiB) and one of 600 KiB fit in 1 MiB; the older ones go.
    assert names[0] == "hub-20260103-023000.db.gz" and names[2:] == ["notes.txt"]
    assert len(names) == 3


def test_a_backup_that_would_fill_the_card_is_refused_before_writing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = Store(data / "hub.db")
    store.set_meta("state", "current")
    store.close()
    out = data / "backups"
    free = shutil.disk_usage(data).free
    # The hub's reserve as large as what is free now: the copy would eat into it.
    with pytest.raises(StoreError, match=r"not enough free space .* left for the hub; remove"):
        backup.snapshot(data / "hub.db", out, now=datetime.now(UTC), reserve=free)
    assert list(out.iterdir()) == []
    snap = backup.snapshot(data / "hub.db", out, now=datetime.now(UTC))
    assert [p.name for p in out.iterdir()] == [snap.path.name]


def test_the_uncompressed_copy_is_made_in_ram_when_it_fits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, ram, out = tmp_path / "data", tmp_path / "ram", tmp_path / "data" / "backups"
    ram.mkdir()
    store = Store(data / "hub.db")
    store.set_meta("state", "current")
    store.close()
    copied_to: list[Path] = []
    real_copy = backup._copy_online

    def copy(db: Path, dest: Path) -> None:
        copied_to.append(dest.parent)
        real_copy(db, dest)

    monkeypatch.setattr(backup, "_copy_online", copy)
    stale = ram / ".hub-20260101-000000.db.tmp"  # left by a run killed an hour ago or more
    stale.write_bytes(b"x")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))

    snap = backup.snapshot(data / "hub.db", out, now=datetime.now(UTC), stage=ram)
    assert copied_to == [ram]
    assert list(ram.iterdir()) == []  # the copy gone once compressed, the stale one too
    with unpacked(snap.path, tmp_path / "check.db") as conn:
        assert conn.execute("SELECT value FROM meta WHERE key='state'").fetchone() == ("current",)

    # Without memory to spare beside it, the copy is made beside the backups.
    monkeypatch.setattr(backup, "_mem_available", lambda: 0)
    backup.snapshot(data / "hub.db", out, now=datetime.now(UTC) + timedelta(seconds=1), stage=ram)
    assert copied_to[-1] == out
