"""Store, its room: the one state of the data folder's storage that every writer reports to.

The ingest writer, the scheduler and the API report each write that the storage refuses
(SQLite's SQLITE_FULL or an I/O error, the system's ENOSPC...) and each write that goes
through; :class:`StorageState` turns those reports into one state (``ok``, ``low``,
``full``, ``failing``), raises the hub's ``disk_full`` (or ``storage_failed``) alert once
and clears it once. Health reads the state, the API turns a refused write into 507 (full)
or 503 (failing) through :func:`storage_error`.

A write that goes through on a full disk (SQLite reuses free pages of its file) does not
clear a full disk: the folder must also have :data:`CLEAR_BYTES` free, or the alert would
flap with every small write. While nothing else writes, :meth:`StorageState.recheck` (the
scheduler's tick) tries a one-row write with a bounded back-off, so the alert clears by
itself once space is freed; it also reads the free space (``statvfs``, a syscall) now and
then and raises ``disk_low`` before the wall is hit.

Threads: any (a re-entrant lock; the alerts are raised and cleared under it, so a raise
and a clear never cross).
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from hub.clock import Clock
from hub.errors import StorageFailed, StorageFull
from hub.events import AlertChange
from hub.store import Store

log = logging.getLogger(__name__)

#: ``busy``: locked by another connection (a 503 to retry, but no failure of the storage).
Kind = Literal["full", "failing", "busy"]
State = Literal["ok", "low", "full", "failing"]

#: A full disk counts as freed once the data folder has this much free again.
CLEAR_BYTES = 256 * 1024
#: Free space below min(LOW_BYTES, LOW_FRACTION of the file system) is a warning.
LOW_BYTES = 64 * 1024 * 1024
LOW_FRACTION = 0.05
#: How often the free space is read while all is well (seconds of the hub's clock).
LOW_CHECK_S = 30.0
#: The probe write while the storage refuses writes: its back-off, first and longest.
PROBE_MIN_S = 1.0
PROBE_MAX_S = 60.0

#: SQLite's primary result codes (the low byte of an extended code).
_SQLITE_FULL = sqlite3.SQLITE_FULL
_SQLITE_FAILING = frozenset(
    {
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_NOTADB,
        sqlite3.SQLITE_PROTOCOL,
    }
)
_SQLITE_BUSY = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
_ERRNO_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
_ERRNO_FAILING = frozenset({errno.EIO, errno.EROFS})


def _chain(e: BaseException) -> Iterator[BaseException]:
    """The error and what it was raised from or while handling, bounded: SQLite's own
    rollback of a failed INSERT makes our ROLLBACK fail with "cannot rollback", whose
    context is the real error."""
    seen: BaseException | None = e
    for _ in range(8):
        if seen is None:
            return
        yield seen
        seen = seen.__cause__ or seen.__context__


def _kind_of(e: BaseException) -> Kind | None:
    if isinstance(e, StorageFull):
        return "full"
    if isinstance(e, StorageFailed):
        return "failing"
    if isinstance(e, sqlite3.Error):
        code = getattr(e, "sqlite_errorcode", None)
        primary = code & 0xFF if isinstance(code, int) else None
        if primary == _SQLITE_FULL or "database or disk is full" in str(e):
            return "full"
        if primary in _SQLITE_FAILING or "disk I/O error" in str(e):
            return "failing"
        if primary in _SQLITE_BUSY:
            return "busy"
        return None
    if isinstance(e, OSError):
        if e.errno in _ERRNO_FULL:
            return "full"
        if e.errno in _ERRNO_FAILING:
            return "failing"
    return None


def classify(e: BaseException) -> Kind | None:
    """``full`` (SQLITE_FULL, ENOSPC), ``failing`` (an I/O error, read-only, damaged),
    ``busy`` (locked) or None: not the storage (a bug, a constraint)."""
    for err in _chain(e):
        kind = _kind_of(err)
        if kind is not None:
            return kind
    return None


def root_cause(e: BaseException) -> BaseException:
    """The storage's own error in ``e``'s chain (not "cannot rollback"), else ``e``."""
    return next((err for err in _chain(e) if _kind_of(err) is not None), e)


def is_disk_full(e: BaseException) -> bool:
    """SQLite's SQLITE_FULL ("database or disk is full") or the system's ENOSPC."""
    return classify(e) == "full"


def storage_error(e: BaseException) -> StorageFull | StorageFailed | None:
    """The domain error a refused write is to a person (the API: 507 or 503)."""
    kind = classify(e)
    if kind == "full":
        return StorageFull(
            "the hub's storage is full (thẻ nhớ đầy): nothing was saved; free space on the "
            "SD card (or ask the technician), then try again"
        )
    if kind is not None:
        return StorageFailed(
            f"the hub's storage refuses writes for now ({root_cause(e)}): nothing was saved; "
            "try again in a moment"
        )
    return None


@dataclass(frozen=True, slots=True)
class StorageStatus:
    """What health says of the storage."""

    state: State
    free_bytes: int | None
    total_bytes: int | None
    detail: str | None  # the failure, or the warning, in words
    since: float | None  # epoch seconds the failure began


class AlertSink(Protocol):
    """The hub's own alerts (``hub.broadcast.hub_alerts.HubAlerts``)."""

    def raise_(self, rule: str, severity: str, message: str) -> AlertChange: ...

    def clear(self, raised: AlertChange) -> None: ...


@dataclass(frozen=True, slots=True)
class _Failure:
    kind: Literal["full", "failing"]
    where: str
    error: str
    since: float


class StorageState:
    """The storage of the data folder as the writers found it, and its alerts."""

    def __init__(
        self,
        store: Store,
        folder: Path,
        clock: Clock,
        alerts: AlertSink | None = None,
        *,
        clear_bytes: int = CLEAR_BYTES,
    ) -> None:
        self.store, self.folder, self.clock, self.alerts = store, folder, clock, alerts
        self.clear_bytes = clear_bytes
        self._lock = threading.RLock()
        self._failure: _Failure | None = None
        self._alert: AlertChange | None = None  # disk_full or storage_failed, open
        self._low_alert: AlertChange | None = None
        self._probe_at = 0.0  # monotonic: the next probe write while failing
        self._probe_s = PROBE_MIN_S
        self._low_at = 0.0  # monotonic: the next look at the free space

    # -- what the writers report (any thread) ----------------------------------------------
    def failed(self, e: BaseException, where: str) -> Kind | None:
        """A write ``where`` was refused with ``e``: its kind, or None (not the storage).
        The first refusal raises the alert; later ones only log at debug level."""
        kind = classify(e)
        if kind is None or kind == "busy":
            return kind  # not the storage, or another connection's lock: nothing to raise
        cause = root_cause(e)
        with self._lock:
            if self._failure is not None and self._failure.kind == kind:
                log.debug("%s: still refused (%s)", where, cause)
                return kind
            self._failure = _Failure(kind, where, str(cause), self.clock.now().timestamp())
            self._probe_at = self.clock.monotonic() + PROBE_MIN_S
            self._probe_s = PROBE_MIN_S
            log.error("%s: the storage refuses writes (%s): %s", where, kind, cause)
            self._raise(kind)
        return kind

    def ok(self) -> None:
        """A write went through. Cheap while all is well (every ingest batch calls it)."""
        if self._failure is None:
            return
        with self._lock:
            failure = self._failure
            if failure is None:
                return
            if failure.kind == "full":
                free = self._free()[0]
                if free is not None and free < self.clear_bytes:
                    return  # a write into SQLite's free pages: still full
            self._failure = None
            log.warning(
                "the storage takes writes again (was %s since %s)", failure.kind, failure.where
            )
            if self._alert is not None and self.alerts is not None:
                raised, self._alert = self._alert, None
                self.alerts.clear(raised)

    def recheck(self) -> None:
        """Now and then (the scheduler's tick): a probe write while the storage refuses
        writes (bounded back-off), and a look at the free space while it does not."""
        mono = self.clock.monotonic()
        if self._failure is not None:
            if mono < self._probe_at:
                return
            with self._lock:
                self._probe_at = mono + self._probe_s
                self._probe_s = min(self._probe_s * 2, PROBE_MAX_S)
            try:
                self.store.set_meta("storage_probe", str(self.clock.now().timestamp()))
            except (sqlite3.Error, OSError) as e:
                if self.failed(e, "the storage probe") is None:
                    log.exception("the storage probe failed")
                return
            self.ok()
            return
        if mono < self._low_at:
            return
        self._low_at = mono + LOW_CHECK_S
        low = self._low_warning()
        with self._lock:
            if low is not None and self._low_alert is None and self.alerts is not None:
                self._low_alert = self.alerts.raise_("disk_low", "warning", low)
            elif low is None and self._low_alert is not None and self.alerts is not None:
                raised, self._low_alert = self._low_alert, None
                self.alerts.clear(raised)

    # -- what health reads (any thread) ------------------------------------------------------
    @property
    def problem(self) -> str | None:
        """Why the storage does not work, in words (health's problems), or None."""
        failure = self._failure
        return None if failure is None else self._words(failure)

    def out_of_room(self) -> bool:
        """Has the data folder less than :data:`CLEAR_BYTES` free (a statvfs, now)?"""
        free = self._free()[0]
        return free is not None and free < self.clear_bytes

    def error(self) -> StorageFull | StorageFailed | None:
        """The domain error a write refused now would raise (None: writes go through)."""
        failure = self._failure
        if failure is None:
            return None
        if failure.kind == "full":
            return storage_error(StorageFull(failure.error))
        return storage_error(StorageFailed(failure.error))

    def status(self) -> StorageStatus:
        free, total = self._free()
        failure = self._failure
        if failure is not None:
            return StorageStatus(failure.kind, free, total, self._words(failure), failure.since)
        low = self._low_warning(free, total)
        return StorageStatus("low" if low else "ok", free, total, low, None)

    # -- inside ------------------------------------------------------------------------------
    def _raise(self, kind: Kind) -> None:
        """Under the lock: one open alert, of the latest kind."""
        if self.alerts is None:
            return
        if self._alert is not None:
            raised, self._alert = self._alert, None
            self.alerts.clear(raised)
        failure = self._failure
        assert failure is not None
        rule = "disk_full" if kind == "full" else "storage_failed"
        self._alert = self.alerts.raise_(
            rule,
            "critical",
            f"{self._words(failure)}; scheduled broadcasts still play from the rendered "
            "audio, but messages wait in the broker and new announcements, feedback and "
            "sign-ins cannot be saved: free space on the SD card or replace it",
        )

    def _words(self, failure: _Failure) -> str:
        what = (
            "the data folder is full (disk full)"
            if failure.kind == "full"
            else "the database refuses writes"
        )
        free = self._free()[0]
        room = f", {free // 1024} KiB free" if free is not None else ""
        return f"{what}: {self.folder}{room}; first refused: {failure.where} ({failure.error})"

    def _free(self) -> tuple[int | None, int | None]:
        """Bytes free to the hub's user, and the file system's size (None: cannot tell)."""
        try:
            st = os.statvfs(self.folder)
        except OSError:
            return None, None
        return st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize

    def _low_warning(self, free: int | None = None, total: int | None = None) -> str | None:
        if free is None or total is None:
            free, total = self._free()
        if free is None or total is None:
            return None
        if free >= min(LOW_BYTES, int(total * LOW_FRACTION)):
            return None
        return (
            f"the data folder is almost full: {free // (1024 * 1024)} MiB free of "
            f"{total // (1024 * 1024)} MiB on {self.folder}; old events go first, then "
            "messages wait: free space on the SD card"
        )
