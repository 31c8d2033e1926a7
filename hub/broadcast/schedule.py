"""Broadcast stage, the scheduler: each due occurrence handed to the playout on time.

It hands an occurrence over a little before its amplifier lead-in and logs what it
could not play (``missed``, one row per announcement whatever the gap) after downtime
or a clock jump. While the system clock is known to be wrong (a Pi without NTP may
think it is 1970) scheduled items wait; what was asked to play now (an emergency, a
"now" from the API, the panel button, a rule, ``cmd/announce``) plays whatever the
clock says. A clock that goes back brings next runs back with it.

The table may refuse a write (a full SD card): what was handed to the playout is kept
in memory before the write, so an occurrence never goes back to the playout twice, the
schedule goes on from memory, and the refusal is reported to the one storage state
(:mod:`hub.store.space`), which raises the hub's ``disk_full`` alert once. Each tick also
lets that state probe the storage, so the alert clears once space is freed.

Threads: the loop runs in the ``scheduler`` thread; ``wake`` may be called from any
thread (after an announcement changes).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

from hub.broadcast.hub_alerts import HubAlerts
from hub.broadcast.playout import Job, Playout, PlayoutLog
from hub.broadcast.recurrence import Recurrence, misfire
from hub.clock import Clock
from hub.events import AlertChange, AnnouncementChanged, Broadcast, BroadcastLogged, Dispatcher
from hub.settings import Settings
from hub.store.announcements import AnnouncementTable, Row
from hub.store.space import StorageState

log = logging.getLogger(__name__)

#: The scheduler hands an occurrence to the playout this long before its lead-in.
HANDOFF_S = 2.0
#: The scheduler looks at the table at least this often.
POLL_S = 1.0
#: A wall clock this much behind the last tick's went back (NTP stepped it, or a person).
JUMP_BACK_S = 1.0
#: What a refused write of the schedule is (SQLite's SQLITE_FULL, ENOSPC, an I/O error...).
WRITE_ERRORS = (sqlite3.Error, OSError)


@dataclass(frozen=True, slots=True)
class _Unsaved:
    """The schedule of one announcement as the scheduler moved it, the table not yet."""

    was: float  # the row's next_run the write failed to replace
    updated_at: float  # the row's version: an edit since makes this stale
    next_run: datetime | None
    handed_over: datetime | None


class Scheduler:
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        *,
        table: AnnouncementTable,
        as_run: PlayoutLog,
        playout: Playout,
        alerts: HubAlerts,
        events: Dispatcher,
        clock_synced: Callable[[], bool | None] = lambda: True,
        storage: StorageState | None = None,
    ) -> None:
        self.settings, self.clock = settings, clock
        self.table, self.as_run, self.playout = table, as_run, playout
        self.alerts, self.events = alerts, events
        self._clock_synced = clock_synced
        #: Where a refused write is reported (and the ``disk_full`` alert raised, once).
        self.storage = storage or StorageState(table.store, settings.data_dir, clock, alerts)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: The open ``clock_unsynced`` alert, cleared once the clock is synchronised.
        self.clock_alert: AlertChange | None = None
        # Scheduler thread only: the last occurrence handed to the playout, per
        # announcement (written before the table is), and schedules the table refused.
        self._handed: dict[str, float] = {}
        self._unsaved: dict[str, _Unsaved] = {}
        self._last_now: datetime | None = None

    # -- any thread ---------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        self._recover()
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        self._wake.set()

    def on_announcement_changed(self, ev: AnnouncementChanged) -> None:
        """Subscribed to :class:`AnnouncementChanged`: look at the table again now."""
        self._wake.set()

    # -- the scheduler thread (``_recover``: the starting thread, before it runs) ---------
    def _recover(self) -> None:
        """After a restart: an occurrence handed to the playout but never logged (the hub
        died in between) plays again if still within the grace period."""
        now = self.clock.now()
        grace = self.settings.announcements.grace_s
        for row in self.table.handed_over_unlogged():
            t = datetime.fromtimestamp(row["last_run"], UTC)
            if (now - t).total_seconds() <= grace:
                self.playout.submit(_job(row, t))
            else:
                self._log(_missed(row, t, "the hub was down"))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                wait = self._tick()
            except Exception:
                log.exception("scheduler tick failed")
                wait = 5.0
            self.clock.sleep(min(wait, POLL_S), self._wake)

    def _tick(self) -> float:
        a = self.settings.announcements
        now = self.clock.now()
        self.storage.recheck()
        self._follow_clock_back(now)
        unsynced = a.require_clock_sync and self._clock_synced() is False
        if unsynced and self.clock_alert is None:
            self.clock_alert = self.alerts.raise_(
                "clock_unsynced",
                "critical",
                "the system clock is not synchronised (no NTP yet): scheduled broadcasts "
                "wait until it is; emergencies and what is sent to play now still play",
            )
        elif not unsynced and self.clock_alert is not None:
            raised, self.clock_alert = self.clock_alert, None
            self.alerts.clear(raised)
        lead = self.settings.gpio.lead_in_s + HANDOFF_S
        grace = timedelta(seconds=a.grace_s)
        wait = 5.0 if unsynced else 60.0
        due: list[tuple[Row, datetime]] = []
        for row, t in self._due():
            if unsynced and not _now_item(row):
                continue  # a time the clock may have wrong: wait for the clock
            until = (t - now).total_seconds() - lead
            if until > 0:
                wait = min(wait, until)
                break
            due.append((row, t))
        # Emergencies first: a long list of other due items never holds one back.
        due.sort(key=lambda rt: rt[0]["priority"] != "emergency")
        for row, t in due:
            self._fire(row, t, now, grace)
        return wait

    def _due(self) -> list[tuple[Row, datetime]]:
        """Scheduled rows and when each is next due, soonest first: the table's next_run,
        or the scheduler's own where the table refused it (a write is tried again)."""
        out = []
        for row in self.table.due():
            t: datetime | None = datetime.fromtimestamp(row["next_run"], UTC)
            u = self._unsaved.pop(row["id"], None)
            if u is not None and (u.was, u.updated_at) == (row["next_run"], row["updated_at"]):
                self._save(row, u.next_run, u.handed_over)
                t = u.next_run
            if t is not None:
                out.append((row, t))
        out.sort(key=lambda rt: rt[1])
        return out

    def _follow_clock_back(self, now: datetime) -> None:
        """The wall clock went back (after a jump forward, or NTP correcting a wrong
        clock): next runs the scheduler moved ahead come back to the first occurrence
        from now, or a daily item would stay days ahead of the village."""
        last, self._last_now = self._last_now, now
        if last is None or (last - now).total_seconds() < JUMP_BACK_S:
            return
        log.warning("the clock went back by %s: next runs follow it", last - now)
        self._handed.clear()  # occurrences ahead of the clock are due again, once
        for row, t in self._due():
            back = _recurrence(row, self.settings.tz).next_after(now, inclusive=True)
            if back is not None and back < t:
                self._save(row, back, None)
                self.events.publish(self.table.changed(row["id"]))

    def _fire(self, row: Row, t: datetime, now: datetime, grace: timedelta) -> None:
        rec = _recurrence(row, self.settings.tz)
        aid = row["id"]
        nxt: datetime | None = t
        if misfire(t, now, grace) == "missed":
            # One row for the whole gap and one lookup from now: downtime or a clock jump
            # costs the same whatever its length (walking every hourly occurrence of a year
            # took minutes, and held an emergency back).
            self._log(_missed(row, t, "the hub was not running"))
            nxt = rec.next_after(now - grace, inclusive=True)
        handed_over = None
        if nxt is not None and (nxt - now).total_seconds() <= (
            self.settings.gpio.lead_in_s + HANDOFF_S
        ):
            # Remembered before the write: if the table refuses it, the next tick must not
            # hand the same occurrence over again (a full disk replayed one every 10 s).
            if self._handed.get(aid) != nxt.timestamp():
                self._handed[aid] = nxt.timestamp()
                self.playout.submit(_job(row, nxt))
            handed_over = nxt
            nxt = rec.next_after(nxt)
        if self._save(row, nxt, handed_over) and nxt is None:
            self.events.publish(self.table.changed(aid))

    def _save(self, row: Row, nxt: datetime | None, handed_over: datetime | None) -> bool:
        """Write the announcement's next run; a refused write is kept in memory (the
        schedule goes on from there), raises the storage alert once, and is retried."""
        try:
            with self.table.write() as conn:
                self.table.advance(conn, row["id"], next_run=nxt, handed_over=handed_over)
        except WRITE_ERRORS as e:
            self._unsaved[row["id"]] = _Unsaved(
                row["next_run"], row["updated_at"], nxt, handed_over
            )
            if self.storage.failed(e, "the schedule") is None:
                log.error("cannot write the schedule of %s: %s", row["id"], e)
            return False
        self.storage.ok()
        return True

    def _log(self, b: Broadcast) -> None:
        try:
            self.as_run.record(b)
        except WRITE_ERRORS as e:
            # A missed row not logged is a line less in the history; the schedule goes on.
            if self.storage.failed(e, "the playout log") is None:
                log.error("cannot log %s of %s: %s", b.status, b.announcement_id, e)
            return
        self.events.publish(BroadcastLogged(b))


def _now_item(row: Row) -> bool:
    """Was this occurrence asked to play now (due when it was written), or an emergency?
    Both play whatever the clock says: the clock that wrote it is the clock that plays it."""
    return bool(
        row["priority"] == "emergency" or row["next_run"] <= (row["updated_at"] or 0.0) + 1.0
    )


def _recurrence(row: Row, tz: tzinfo) -> Recurrence:
    return Recurrence(
        datetime.fromisoformat(row["start_local"]),
        tz,
        row["rrule"],
        tuple(datetime.fromisoformat(d) for d in json.loads(row["exdates"])),
        datetime.fromtimestamp(row["expires_at"], UTC) if row["expires_at"] else None,
    )


def _job(row: Row, t: datetime) -> Job:
    return Job(
        row["id"],
        t,
        row["priority"],
        Path(row["render_wav"]),
        row["duration_s"],
        tuple(json.loads(row["zones"])),
        row["title"],
    )


def _missed(row: Row, t: datetime, why: str) -> Broadcast:
    return Broadcast(
        row["id"], t, "missed", tuple(json.loads(row["zones"])), row["priority"], detail=why
    )
