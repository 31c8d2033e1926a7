"""The `langso` command, its database part: `backup`, `restore`, and what `run` does with
the database before the hub is built (one hub per data directory; a damaged file moved
aside and replaced by the newest good backup, or by an empty database)."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from hub.errors import HubError
from hub.settings import Settings
from hub.store import backup

log = logging.getLogger("hub.store")

_MIB = 1 << 20


class HubRunning(HubError, RuntimeError):
    """A restore while the hub has the database open, or a second hub on one data dir."""


def backup_dir(settings: Settings) -> Path:
    """Where the nightly copies go and where a start looks for a good one."""
    return settings.data_dir / "backups"


@dataclass
class StartState:
    """What `langso run` holds and found before building the hub."""

    lock: IO[str]
    recovery: backup.Recovery | None


def prepare_start(settings: Settings) -> StartState:
    """Take the data directory's lock, then check the database (quick check) and
    recover from damage: before GPIO and the broker, so a damaged file never makes
    the hub exit (under systemd a crash loop, and no loudspeakers)."""
    lock = backup.hub_lock(settings.data_dir)
    if lock is None:
        holder = backup.lock_holder(settings.data_dir)
        raise HubRunning(
            f"another hub (pid {holder}) runs on {settings.data_dir}: stop it first "
            "(sudo systemctl stop langso-hub)"
        )
    recovery = backup.recover(settings.db_path, backup_dir(settings), now=datetime.now(UTC))
    if recovery is not None:
        log.critical("%s", recovery.message())
    return StartState(lock, recovery)


def cmd_backup(settings: Settings, *, out: Path | None, keep: int, max_mib: int) -> int:
    if keep < 1 or max_mib < 1:
        raise ValueError("--keep and --max-mib must be at least 1")
    out_dir = out or backup_dir(settings)
    started = time.monotonic()
    snap = backup.snapshot(
        settings.db_path,
        out_dir,
        now=datetime.now(UTC),
        keep=keep,
        max_bytes=max_mib * _MIB,
    )
    kept_bytes = sum(p.stat().st_size for p in snap.kept)
    print(
        f"wrote {snap.path} ({_mib(snap.size)} compressed, database {_mib(snap.database_size)},"
        f" integrity ok) in {time.monotonic() - started:.1f} s; {len(snap.kept)} backup(s)"
        f" kept in {out_dir} ({_mib(kept_bytes)})"
    )
    for p in snap.removed:
        print(f"removed {p} (over --keep {keep} or --max-mib {max_mib})")
    return 0


def cmd_restore(settings: Settings, file: Path, *, hub_url: str) -> int:
    """Refused while the hub runs: it holds the data directory's lock (`langso run`) or
    answers on its HTTP address (a hub started some other way)."""
    if not file.is_file():
        raise ValueError(f"{file}: no such backup file")
    lock = backup.hub_lock(settings.data_dir)
    if lock is None:
        raise HubRunning(
            f"the hub (pid {backup.lock_holder(settings.data_dir)}) is running on "
            f"{settings.data_dir}: stop it first (sudo systemctl stop langso-hub), then restore"
        )
    try:
        if _answers(hub_url):
            raise HubRunning(
                f"a hub answers at {hub_url}: stop it first (sudo systemctl stop langso-hub)"
            )
        aside = backup.install(file, settings.db_path, now=datetime.now(UTC), why="replaced")
    finally:
        lock.close()
    print(f"restored {file} into {settings.db_path} (integrity ok)")
    if aside is not None:
        print(f"the database it replaced is at {aside}")
    return 0


def _answers(url: str) -> bool:
    """True when a Làng Số hub's health endpoint answers at ``url``."""
    try:
        with urllib.request.urlopen(f"{url}/api/health", timeout=3) as r:
            body = json.load(r)
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return isinstance(body, dict) and "status" in body and "version" in body


def _mib(n: int) -> str:
    return f"{n / _MIB:.1f} MiB"
