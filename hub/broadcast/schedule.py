"""Broadcast stage, the scheduler: each due occurrence handed to the playout on time.

It hands an occurrence over a little before its amplifier lead-in, logs what it could
not play (``missed``) after downtime, and holds everything back while the system
clock is not synchronised (a Pi without NTP may think it is 1970).

Threads: the loop runs in the ``scheduler`` thread; ``wake`` may be called from any
thread (after an announcement changes).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

from hub.broadcast.hub_alerts import HubAlerts
from hub.broadcast.playout import Job, Playout, PlayoutLog
from hub.broadcast.recurrence import Recurrence, misfire
from hub.clock import Clock
from hub.events import AlertChange, AnnouncementChanged, Broadcast, BroadcastLogged, Dispatcher
from hub.settings import Settings
from hub.store.announcements import AnnouncementTable, Row

log = logging.getLogger(__name__)

#: The scheduler hands an occurrence to the playout this long before its lead-in.
HANDOFF_S = 2.0
#: The scheduler looks at the table at least this often.
POLL_S = 1.0
#: Missed occurrences logged one by one, at most (a week of hourly ones, in part).
MISSED_LOGGED = 50


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
    ) -> None:
        self.settings, self.clock = settings, clock
        self.table, self.as_run, self.playout = table, as_run, playout
        self.alerts, self.events = alerts, events
        self._clock_synced = clock_synced
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: The open ``clock_unsynced`` alert, cleared once the clock is synchronised.
        self.clock_alert: AlertChange | None = None

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
        if a.require_clock_sync and self._clock_synced() is False:
            if self.clock_alert is None:
                self.clock_alert = self.alerts.raise_(
                    "clock_unsynced",
                    "critical",
                    "the system clock is not synchronised (no NTP yet): "
                    "scheduled broadcasts wait until it is",
                )
            return 5.0
        if self.clock_alert is not None:
            raised, self.clock_alert = self.clock_alert, None
            self.alerts.clear(raised)
        now = self.clock.now()
        lead = self.settings.gpio.lead_in_s + HANDOFF_S
        grace = timedelta(seconds=a.grace_s)
        wait = 60.0
        for row in self.table.due():
            t = datetime.fromtimestamp(row["next_run"], UTC)
            until = (t - now).total_seconds() - lead
            if until > 0:
                wait = min(wait, until)
                break
            self._fire(row, t, now, grace)
        return wait

    def _fire(self, row: Row, t: datetime, now: datetime, grace: timedelta) -> None:
        rec = _recurrence(row, self.settings.tz)
        missed = 0
        nxt: datetime | None = t
        while nxt is not None and misfire(nxt, now, grace) == "missed":
            if missed < MISSED_LOGGED:
                self._log(_missed(row, nxt, "the hub was not running"))
            missed += 1
            nxt = rec.next_after(nxt)
        handed_over = None
        if nxt is not None and (nxt - now).total_seconds() <= (
            self.settings.gpio.lead_in_s + HANDOFF_S
        ):
            self.playout.submit(_job(row, nxt))
            handed_over = nxt
            nxt = rec.next_after(nxt)
        with self.table.write() as conn:
            self.table.advance(conn, row["id"], next_run=nxt, handed_over=handed_over)
        if nxt is None:
            self.events.publish(self.table.changed(row["id"]))

    def _log(self, b: Broadcast) -> None:
        self.as_run.record(b)
        self.events.publish(BroadcastLogged(b))


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
