"""Store, its copies: online backups, restore, and recovery from a damaged file at start.

A backup is SQLite's online backup API copying every page in one step (one read
transaction, so the copy is one consistent moment while the ingest writer goes on
in WAL), checked with ``PRAGMA integrity_check`` and gzip-compressed under a
temporary name before it takes its real one: a copy cut short by a power cut never
looks like a good one. Damaged databases and replaced ones are moved aside, never
deleted: ``hub.db.corrupt-<UTC time>`` with their ``-wal`` and ``-shm`` beside.

Runs in the ``langso`` command (backup, restore) and at the start of ``langso run``,
before the hub's threads exist; the hub's lock file (:func:`hub_lock`) keeps a
restore and a running hub apart.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import os
import re
import secrets
import shutil
import sqlite3
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from hub.errors import StoreError
from hub.events import AlertChange
from hub.store import SCHEMA_VERSION, DatabaseCorrupt, Store, check_file, immediate
from hub.store import alerts as alert_rows
from hub.store.space import LOW_BYTES

#: What a backup is called: its UTC time; ``hub-YYYYmmdd.db`` are the older nightly copies
#: (sqlite3's ``.backup``), still recognised for recovery and pruning.
_NAME = re.compile(r"^hub-(\d{8})(?:-(\d{6}))?\.db(\.gz)?$")
#: The suffixes SQLite keeps beside a database in WAL mode.
_SIDECARS = ("-wal", "-shm")
_CHUNK = 1 << 20
#: RAM the uncompressed copy is made in when it fits (a tmpfs on Debian and Pi OS).
RAM_STAGE = Path("/dev/shm")
#: Memory left to the hub and the system beside a copy staged in RAM.
STAGE_SPARE = 256 << 20


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A backup as written: its file, its size, and what pruning removed."""

    path: Path
    size: int
    database_size: int
    kept: tuple[Path, ...]
    removed: tuple[Path, ...]


@dataclass(frozen=True, slots=True)
class Recovery:
    """What the start did with a damaged database: where it went and what replaced it."""

    reason: str
    moved_to: Path
    restored_from: Path | None
    refused: tuple[str, ...]

    def message(self) -> str:
        what = f"The database was damaged ({self.reason}) and was moved aside to {self.moved_to}."
        if self.restored_from is not None:
            then = (
                f" The hub started from the backup {self.restored_from.name}: what was "
                "written after it was taken (events, announcements, users) is missing."
            )
        else:
            then = (
                " No good backup was found, so the hub started with an empty database: "
                "create an admin with `langso user add NAME --role admin`, then enter the "
                "schedule again."
            )
        refused = f" Backups refused: {'; '.join(self.refused)}." if self.refused else ""
        return what + then + refused


# -- backup --------------------------------------------------------------------------------


def snapshot(
    db_path: Path,
    out_dir: Path,
    *,
    now: datetime,
    keep: int = 15,
    max_bytes: int = 1 << 30,
    reserve: int = LOW_BYTES,
    stage: Path | None = RAM_STAGE,
) -> Snapshot:
    """Write ``out_dir/hub-YYYYmmdd-HHMMSS.db.gz`` (UTC) from the live database, verified,
    then prune older copies to ``keep`` files and ``max_bytes`` in all. Refused, before
    anything is written, when the copy would leave less than ``reserve`` bytes free on the
    database's card (the hub's writes would fail: a full card is worse than no backup).

    The uncompressed copy (checked, then compressed) is made in ``stage`` (RAM: a tmpfs)
    when it fits there with memory to spare, else beside the backups: in RAM the card is
    written the compressed copy only (a year's database: 140 MB a night instead of 440)."""
    if not db_path.exists():
        raise StoreError(f"no database at {db_path}: check data_dir in the settings")
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_room(db_path, out_dir, reserve)
    stamp = now.astimezone(UTC).strftime("%Y%m%d-%H%M%S")
    final = out_dir / f"hub-{stamp}.db.gz"
    # Named apart: another hub's backup may stage in the same RAM folder this second.
    tmp_db = _staging(stage, db_path, out_dir) / f".hub-{stamp}-{secrets.token_hex(4)}.db.tmp"
    tmp_gz = out_dir / f".hub-{stamp}.db.gz.tmp"
    try:
        _copy_online(db_path, tmp_db)
        verify(tmp_db)
        database_size = tmp_db.stat().st_size
        with open(tmp_db, "rb") as src, open(tmp_gz, "wb") as raw:
            # Level 1: 3x faster than 6 for a 9 % larger file (64 MiB here: 0.6 s, 10.5 MiB
            # against 1.9 s, 9.6 MiB); on a Pi that is what keeps a year's copy in a minute.
            with gzip.GzipFile(f"hub-{stamp}.db", "wb", compresslevel=1, fileobj=raw) as gz:
                shutil.copyfileobj(src, gz, _CHUNK)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp_gz, final)
        _sync_dir(out_dir)
    except OSError as e:
        raise StoreError(f"cannot write the backup in {out_dir}: {e}") from e
    finally:
        tmp_db.unlink(missing_ok=True)
        tmp_gz.unlink(missing_ok=True)
    kept, removed = prune(out_dir, keep=keep, max_bytes=max_bytes)
    return Snapshot(final, final.stat().st_size, database_size, kept, removed)


def _db_bytes(db_path: Path) -> int:
    return sum(
        p.stat().st_size for p in (db_path, db_path.with_name(db_path.name + "-wal")) if p.exists()
    )


def _mem_available() -> int:
    """Linux's estimate of the memory a new use may take without swapping (0: unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _staging(stage: Path | None, db_path: Path, out_dir: Path) -> Path:
    """Where the uncompressed copy goes: ``stage`` when it has room for it and the machine
    keeps ``STAGE_SPARE`` of memory besides (a tmpfs fills RAM), else ``out_dir``. Copies
    a killed run left in ``stage`` are removed first (nothing else clears a tmpfs)."""
    if stage is None or not stage.is_dir():
        return out_dir
    for old in stage.glob(".hub-*.db.tmp"):
        with contextlib.suppress(OSError):
            if time.time() - old.stat().st_mtime > 3600:
                old.unlink()
    need = _db_bytes(db_path) * 11 // 10
    try:
        free = shutil.disk_usage(stage).free
    except OSError:
        return out_dir
    if free < need or _mem_available() < need + STAGE_SPARE:
        return out_dir
    return stage


def _check_room(db_path: Path, out_dir: Path, reserve: int) -> None:
    """The copy needs the database's size (uncompressed, while it is checked) and the gzip
    beside it (at most as much again); on the database's own file system ``reserve`` more
    stays free for the hub."""
    size = _db_bytes(db_path)
    need = 2 * size
    try:
        same = os.stat(out_dir).st_dev == os.stat(db_path).st_dev
        free = shutil.disk_usage(out_dir).free
    except OSError as e:
        raise StoreError(f"cannot read the free space of {out_dir}: {e}") from e
    if same:
        need += reserve
    if free < need:
        kept = f" and {reserve >> 20} MiB left for the hub" if same else ""
        raise StoreError(
            f"not enough free space in {out_dir} for a backup: {free >> 20} MiB free, "
            f"{(2 * size) >> 20} MiB needed for the copy{kept}; remove old backups "
            "(or lower --keep / --max-mib), or give --out a folder on another disk"
        )


def _copy_online(db_path: Path, dest: Path) -> None:
    """Every page in one step of SQLite's backup API: the source holds one read
    transaction for the whole copy, so writers (WAL) go on and the copy is one moment.
    A stepped copy would restart each time the hub commits, and might never finish."""
    dest.unlink(missing_ok=True)
    src = sqlite3.connect(db_path, timeout=30.0)
    try:
        src.execute("PRAGMA busy_timeout=30000")
        dst = sqlite3.connect(dest, isolation_level=None)
        try:
            src.backup(dst)
            # One self-contained file: no -wal beside the copy to lose on the way.
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
    except sqlite3.Error as e:
        raise StoreError(f"cannot copy the database {db_path}: {e}") from e
    finally:
        src.close()


def verify(path: Path, *, name: str | None = None) -> None:
    """Raise unless ``path`` is an undamaged hub database this hub can open; messages
    call it ``name`` (default: its path)."""
    shown = name or str(path)
    check_file(path, thorough=True, name=shown)
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            has_meta = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error as e:
        raise DatabaseCorrupt(f"{shown} cannot be read: {e}") from e
    if version < 1 or has_meta is None:
        raise DatabaseCorrupt(f"{shown} is an SQLite file but not a hub database")
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{shown} has schema {version}, newer than this hub ({SCHEMA_VERSION}): "
            "upgrade the hub first"
        )


def backups(out_dir: Path) -> list[Path]:
    """The backups in ``out_dir``, newest first (by the time in their names)."""
    if not out_dir.is_dir():
        return []
    found = []
    for p in out_dir.iterdir():
        m = _NAME.match(p.name)
        if m and p.is_file():
            found.append((m.group(1) + (m.group(2) or "000000"), p.name, p))
    return [p for *_, p in sorted(found, reverse=True)]


def prune(out_dir: Path, *, keep: int, max_bytes: int) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    """Keep the newest backups while they fit ``keep`` files and ``max_bytes``; the
    newest is always kept (one copy over the budget beats none). Returns (kept, removed)."""
    kept: list[Path] = []
    removed: list[Path] = []
    total = 0
    # What a run killed midway (its timeout, a power cut) left; an hour is far beyond a
    # run's length, so a copy another run is writing now is never taken.
    for p in out_dir.glob(".hub-*.tmp"):
        if time.time() - p.stat().st_mtime > 3600:
            p.unlink(missing_ok=True)
    for p in backups(out_dir):
        size = p.stat().st_size
        # Once one copy is over the budget, every older one goes too: no holes.
        if not removed and (not kept or (len(kept) < keep and total + size <= max_bytes)):
            kept.append(p)
            total += size
        else:
            p.unlink(missing_ok=True)
            removed.append(p)
    return tuple(kept), tuple(removed)


# -- restore and recovery --------------------------------------------------------------------


def install(backup: Path, db_path: Path, *, now: datetime, why: str) -> Path | None:
    """Unpack ``backup`` beside ``db_path`` and verify it; only then move the current
    database (with its -wal, -shm) aside as ``<name>.<why>-<UTC time>`` and rename the
    copy into place. Returns where the old database went (None: there was none)."""
    tmp = db_path.with_name(db_path.name + ".restore-tmp")
    try:
        try:
            opener = gzip.open if backup.name.endswith(".gz") else open
            with opener(backup, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
                dst.flush()
                os.fsync(dst.fileno())
        except (EOFError, zlib.error, gzip.BadGzipFile) as e:
            raise DatabaseCorrupt(f"{backup} is not a complete gzip file: {e}") from e
        verify(tmp, name=str(backup))
        present = any(db_path.with_name(db_path.name + s).exists() for s in ("", *_SIDECARS))
        aside = move_aside(db_path, why, now) if present else None
        os.replace(tmp, db_path)
        _sync_dir(db_path.parent)
        return aside
    except OSError as e:
        raise StoreError(f"cannot put {backup} in place of {db_path}: {e}") from e
    finally:
        tmp.unlink(missing_ok=True)
        for s in _SIDECARS:
            tmp.with_name(tmp.name + s).unlink(missing_ok=True)


def move_aside(db_path: Path, why: str, now: datetime) -> Path:
    """Rename the database and its -wal and -shm to ``<name>.<why>-<UTC time>``; never
    over an earlier one. Returns the new name of the database."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = db_path.with_name(f"{db_path.name}.{why}-{stamp}")
    for n in range(1, 100):
        if not any(base.with_name(base.name + s).exists() for s in ("", *_SIDECARS)):
            break
        base = db_path.with_name(f"{db_path.name}.{why}-{stamp}.{n}")
    else:
        raise StoreError(f"too many {why} copies of {db_path} at {stamp}: clear some out")
    try:
        for s in ("", *_SIDECARS):
            src = db_path.with_name(db_path.name + s)
            if src.exists():
                os.replace(src, base.with_name(base.name + s))
        _sync_dir(db_path.parent)
    except OSError as e:
        raise StoreError(f"cannot move {db_path} aside: {e}") from e
    return base


def recover(db_path: Path, backup_dir: Path, *, now: datetime) -> Recovery | None:
    """At start: None when the database passes its quick check (or is new). A damaged
    one is moved aside and replaced by the newest backup that passes its integrity
    check, else left absent (the hub creates an empty one)."""
    try:
        check_file(db_path)
        return None
    except DatabaseCorrupt as e:
        reason = str(e)
    moved_to = move_aside(db_path, "corrupt", now)
    refused: list[str] = []
    for b in backups(backup_dir):
        try:
            install(b, db_path, now=now, why="corrupt")
        except StoreError as e:
            refused.append(f"{b.name}: {e}")
            continue
        return Recovery(reason, moved_to, b, tuple(refused))
    return Recovery(reason, moved_to, None, tuple(refused))


def record(store: Store, recovery: Recovery, now: datetime) -> AlertChange:
    """The hub's critical alert for a recovery, written once the new store is open."""
    change = AlertChange(
        secrets.token_hex(6),
        "hub",
        "database_corrupt",
        "critical",
        "raised",
        recovery.message(),
        now.timestamp(),
    )
    with immediate(store.connection()) as conn:
        alert_rows.write(conn, change)
    return change


# -- one hub per data directory --------------------------------------------------------------


def hub_lock(data_dir: Path) -> IO[str] | None:
    """Take ``data_dir/hub.lock`` (an flock, released by the kernel when the process ends,
    kill -9 too) and write this pid in it; None when another process holds it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    f = open(data_dir / "hub.lock", "a+")  # noqa: SIM115 - held for the process's life
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        return None
    f.truncate(0)
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def lock_holder(data_dir: Path) -> str:
    """The pid written in the lock file, for a message ("?" when unreadable)."""
    try:
        return (data_dir / "hub.lock").read_text().strip() or "?"
    except OSError:
        return "?"


def _sync_dir(d: Path) -> None:
    """A rename survives a power cut only once its directory is on the card."""
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
