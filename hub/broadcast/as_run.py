"""Broadcast stage, the playout's as-run log: each row kept until the database takes it.

The playout writes a broadcast's row ``playing`` before the amplifier goes on, marks its
progress now and then, and finishes it when it ends (see
:class:`hub.store.announcements.BroadcastLog`). A row the database refuses (a full SD
card) waits in a bounded queue in memory and is written, in order and exactly once, at
the next write or the next turn of the playout's loop; only then is
:class:`BroadcastLogged` published, so a subscriber always reads back what it is told.

Threads: the playout thread; ``logged`` also from a request thread (a cancel): one
lock keeps the rows in order.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from hub.events import Broadcast, BroadcastLogged, Dispatcher

log = logging.getLogger(__name__)

#: What a refused write is: SQLite's SQLITE_FULL, an I/O error, ENOSPC...
WRITE_ERRORS = (sqlite3.Error, OSError)
#: Rows kept while the database refuses them: days of broadcasts, a few hundred KB.
UNWRITTEN_MAX = 500


class PlayoutLog(Protocol):
    """Where the playout writes its as-run log (hub.store.announcements.BroadcastLog)."""

    def record(self, b: Broadcast) -> None: ...
    def played_today(self, day_start: datetime) -> int: ...
    def begin(
        self,
        announcement_id: str,
        scheduled_for: datetime,
        *,
        zones: Sequence[str],
        priority: str,
        at: datetime,
        detail: str | None,
    ) -> int | None: ...
    def progress(self, row_id: int, *, started_at: datetime, at: datetime) -> None: ...
    def finish(self, row_id: int, b: Broadcast) -> None: ...


@dataclass(frozen=True, slots=True)
class _Unwritten:
    broadcast: Broadcast
    row_id: int | None  # the row written ``playing``, to finish; None: a new row


class AsRunWriter:
    """The playout's writes of the as-run log, with the queue of refused ones."""

    def __init__(
        self, log_: PlayoutLog, events: Dispatcher, *, max_unwritten: int = UNWRITTEN_MAX
    ) -> None:
        self.log, self.events, self.max_unwritten = log_, events, max_unwritten
        self._lock = threading.RLock()
        self._unwritten: deque[_Unwritten] = deque()
        self._failing = False
        #: Rows given up because the queue was full (the oldest go first).
        self.dropped = 0

    @property
    def unwritten(self) -> int:
        return len(self._unwritten)

    def begin(
        self,
        announcement_id: str,
        scheduled_for: datetime,
        *,
        zones: Sequence[str],
        priority: str,
        at: datetime,
        detail: str | None,
    ) -> int | None:
        """The ``playing`` row, before the amplifier goes on; None if it cannot be written
        (the broadcast plays all the same, and its final row joins the queue)."""
        self.flush()
        try:
            return self.log.begin(
                announcement_id,
                scheduled_for,
                zones=zones,
                priority=priority,
                at=at,
                detail=detail,
            )
        except WRITE_ERRORS as e:
            log.warning("cannot log %s as playing (%s): it plays all the same", announcement_id, e)
            return None

    def progress(self, row_id: int | None, *, started_at: datetime, at: datetime) -> None:
        """A progress mark; a refused one is skipped (the next one says more)."""
        if row_id is None:
            return
        try:
            self.log.progress(row_id, started_at=started_at, at=at)
        except WRITE_ERRORS as e:
            log.debug("progress mark of row %s not written: %s", row_id, e)

    def logged(self, b: Broadcast, row_id: int | None = None) -> None:
        """The final row of an occurrence (the ``playing`` one finished, or a new one)."""
        with self._lock:
            self._unwritten.append(_Unwritten(b, row_id))
            if len(self._unwritten) > self.max_unwritten:
                lost = self._unwritten.popleft()
                self.dropped += 1
                log.error(
                    "the playout log queue is full (%d rows): the row of %s at %s is lost",
                    self.max_unwritten,
                    lost.broadcast.announcement_id,
                    lost.broadcast.scheduled_for.isoformat(),
                )
        self.flush()

    def flush(self) -> int:
        """Write what waits, oldest first, until the database refuses one; the number
        written. Each is removed only after its commit: written exactly once."""
        written: list[Broadcast] = []
        with self._lock:
            while self._unwritten:
                item = self._unwritten[0]
                try:
                    if item.row_id is None:
                        self.log.record(item.broadcast)
                    else:
                        self.log.finish(item.row_id, item.broadcast)
                except WRITE_ERRORS as e:
                    if not self._failing:
                        self._failing = True
                        log.error(
                            "writing the playout log failed (%s): %d row(s) kept in memory "
                            "until the database takes writes again",
                            e,
                            len(self._unwritten),
                        )
                    break
                except Exception:
                    # A bug, not the storage: retrying it would block every later row.
                    log.exception("writing the playout log failed: row dropped")
                    self._unwritten.popleft()
                    continue
                self._unwritten.popleft()
                written.append(item.broadcast)
            if written and self._failing and not self._unwritten:
                self._failing = False
                log.info("the playout log is written again")
        # The row first: what a subscriber reads back (the announcement's last broadcast)
        # is already there.
        for b in written:
            self.events.publish(BroadcastLogged(b))
        return len(written)
