"""Broadcast stage, the playout: one queue, never two at once; priorities, preemption, quiet hours.

The three classes of Vietnamese grassroots broadcasting: ``normal`` fits the
schedule, ``high`` (priority) goes before normal ones, ``emergency`` plays at
once, preempting whatever plays and ignoring quiet hours and the daily cap.

Timing: a job is handed over ahead of its instant; the amplifier (and the zone
relays, and the on-air LED) switch on ``lead_in_s`` before it, so that at the
scheduled second only the sink starts and the first words are not clipped.

With remote speaker clusters (:mod:`hub.broadcast.clusters`), the playout routes them and
switches their amplifiers as it does its own relays and amplifier, and the as-run row says
which clusters heard the broadcast (``clusters 5/6; missing: ...``).

A broadcast's as-run row is written ``playing`` before the amplifier goes on and
finished when it ends (:mod:`hub.broadcast.as_run`); a row a dead hub left ``playing`` is
logged ``interrupted`` at the next start and, as the settings say, replayed once.

Threads: everything here runs in the ``playout`` thread; ``submit`` and
``stop_current`` may be called from any thread. ``heartbeat`` is the monotonic time of the
loop's last turn (the systemd watchdog reads it): the loop turns at least every
``IDLE_TURN_S`` when idle and every ``PROGRESS_S`` on air.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

from audio.errors import AudioError
from audio.sinks import Playback, Sink
from hub.broadcast.as_run import AsRunWriter, PlayoutLog
from hub.broadcast.live_playback import LiveSource
from hub.broadcast.pa_link import ClustersLike, PaAdapter, PaLike, SafeClusters
from hub.broadcast.recurrence import in_window, window_end
from hub.clock import Clock
from hub.events import (
    Broadcast,
    BroadcastStatus,
    Dispatcher,
    PlayoutState,
    PlayoutStateChanged,
    Priority,
)
from hub.store.announcements import REPLAY_OF

log = logging.getLogger(__name__)

RANK: dict[str, int] = {"emergency": 0, "high": 1, "normal": 2}
Status = BroadcastStatus
__all__ = ["ClustersLike", "Job", "PaAdapter", "PaLike", "Playout", "PlayoutLog", "PlayoutPolicy"]

#: The idle loop turns at least this often: the watchdog's heartbeat, the log's retries.
IDLE_TURN_S = 5.0
#: On air, a progress mark is written this often (coarse: the SD card matters).
PROGRESS_S = 10.0


@dataclass(frozen=True, slots=True)
class Job:
    """One occurrence of an announcement, ready to play (audio rendered ahead)."""

    announcement_id: str
    scheduled_for: datetime  # aware UTC: the instant the first sample is due
    priority: Priority
    wav: Path
    duration_s: float
    zones: tuple[str, ...] = ("all",)
    title: str = ""
    #: A replay of a broadcast a restart cut: the instant that one was due.
    replay_of: datetime | None = None
    #: A live broadcast from the head's phone: its voice plays instead of ``wav``; quiet
    #: hours and the daily cap do not hold it, and a preempted one is not rebooked.
    live: LiveSource | None = None

    @property
    def rank(self) -> tuple[int, datetime]:
        return (RANK[self.priority], self.scheduled_for)


@dataclass(frozen=True, slots=True)
class PlayoutPolicy:
    tz: tzinfo
    lead_in_s: float = 1.5
    tail_s: float = 2.0
    quiet_hours: str | None = "21:30-05:30"
    daily_cap: int = 12


@dataclass
class _Current:
    job: Job
    playback: Playback | None = None
    preempted_by: str | None = None
    stopped_by: str | None = None
    row: int | None = None  # its as-run row, written ``playing`` before the amplifier


class Playout:
    """Plays what the scheduler hands over; logs each occurrence, then publishes
    :class:`BroadcastLogged`, and :class:`PlayoutStateChanged` on every change."""

    def __init__(
        self,
        *,
        sink: Sink,
        pa: PaLike,
        clock: Clock,
        policy: PlayoutPolicy,
        events: Dispatcher,
        as_run: PlayoutLog,
        trace: Callable[[str, datetime], None] | None = None,
        clusters: ClustersLike | None = None,
    ) -> None:
        self.sink, self.pa, self.clock, self.policy = sink, pa, clock, policy
        #: The remote speaker clusters, if any (routed and switched with the PA).
        self.clusters = SafeClusters(clusters)
        self.events, self.as_run = events, as_run
        self.writer = AsRunWriter(as_run, events)
        #: Monotonic time of the loop's last turn (the watchdog's sign of progress).
        self.heartbeat = time.monotonic()
        self.trace = trace or (lambda what, at: None)
        self._lock = threading.Lock()
        self._pending: list[Job] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._current: _Current | None = None
        self._thread: threading.Thread | None = None
        self.state = PlayoutState()

    # -- any thread ---------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        self.heartbeat = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="playout", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Shut down: cut what plays, amplifier off (every exit path ends here)."""
        self._stop.set()
        self._wake.set()
        self.stop_current("shutdown")
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self._safe_off()

    def submit(self, job: Job) -> None:
        with self._lock:
            if any(
                j.announcement_id == job.announcement_id and j.scheduled_for == job.scheduled_for
                for j in self._pending
            ):
                return  # the scheduler may hand the same occurrence over twice: play it once
            self._pending.append(job)
            self._pending.sort(key=lambda j: j.rank)
            cur = self._current
            if (
                cur is not None
                and job.priority == "emergency"
                and cur.job.priority != "emergency"
                and cur.preempted_by is None
            ):
                cur.preempted_by = job.announcement_id
                if cur.playback is not None:
                    cur.playback.stop()
        self._wake.set()
        self._publish_state()

    def stop_current(self, by: str) -> bool:
        """The stop button, or ``POST /api/broadcasts/stop``: cut what plays now."""
        with self._lock:
            cur = self._current
            if cur is None:
                return False
            cur.stopped_by = by
            if cur.playback is not None:
                cur.playback.stop()
        self._wake.set()
        return True

    def cancel(self, announcement_id: str) -> int:
        """Drop queued occurrences of an announcement (and cut it if it plays)."""
        with self._lock:
            dropped = [j for j in self._pending if j.announcement_id == announcement_id]
            self._pending = [j for j in self._pending if j.announcement_id != announcement_id]
        for j in dropped:
            self._log(j, "cancelled", detail="cancelled before it played")
        cur = self._current
        if cur is not None and cur.job.announcement_id == announcement_id:
            self.stop_current("cancelled")
        self._publish_state()
        return len(dropped)

    @property
    def pending(self) -> list[Job]:
        with self._lock:
            return list(self._pending)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- playout thread -------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self.heartbeat = time.monotonic()
            self._wake.clear()
            # Rows the database refused before: written now if it takes writes again.
            self.writer.flush()
            job, wait = self._next()
            if job is None:
                self.clock.sleep(min(wait, IDLE_TURN_S), self._wake)
                continue
            cur = self._current
            try:
                self._play(job)
            except Exception as e:  # never leave the amplifier on, never die
                log.exception("playout of %s failed", job.announcement_id)
                self._safe_off()
                with self._lock:
                    self._current = None
                row = cur.row if cur is not None else None
                self._log(job, "failed", detail=f"{type(e).__name__}: {e}", row=row)
                self._publish_state()

    def _next(self) -> tuple[Job | None, float]:
        """The job to start now (its lead-in has come), or how long to wait."""
        now = self.clock.now()
        lead = timedelta(seconds=self.policy.lead_in_s)
        wait = 3600.0
        with self._lock:
            for job in self._pending:
                hold = self._held_until(job, now)
                if hold is not None:
                    wait = min(wait, (hold - now).total_seconds())
                    continue
                start = job.scheduled_for - lead
                # An emergency starts now even if the clock went back after it was handed
                # over (its instant is then ahead of the clock): a jump never delays one.
                if start <= now or job.priority == "emergency":
                    self._pending.remove(job)
                    self._current = _Current(job)
                    return job, 0.0
                wait = min(wait, (start - now).total_seconds())
        return None, max(0.0, wait)

    def _held_until(self, job: Job, now: datetime) -> datetime | None:
        """Quiet hours and the daily cap hold normal and priority broadcasts back."""
        if job.priority == "emergency" or job.live is not None:
            return None  # the head is speaking now
        p = self.policy
        if p.quiet_hours and in_window(p.quiet_hours, now, p.tz):
            return window_end(p.quiet_hours, now, p.tz)
        local = now.astimezone(p.tz)
        day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        if self.as_run.played_today(day_start.astimezone(UTC)) >= p.daily_cap:
            return (day_start + timedelta(days=1)).astimezone(UTC)
        return None

    def _play(self, job: Job) -> None:
        p = self.policy
        cur = self._current
        assert cur is not None
        # The row before the amplifier: a hub that dies on air leaves it ``playing`` (with
        # the clusters it was going to reach).
        cur.row = self.writer.begin(
            job.announcement_id,
            job.scheduled_for,
            zones=job.zones,
            priority=job.priority,
            at=self.clock.now(),
            detail=_joined(_replay_note(job), self.clusters.reach_note(job.zones, job.priority)),
        )
        # Relays first, amplifier second: switching a relay under load clicks in every
        # speaker of the village.
        self.pa.select_zones(job.zones)
        self.pa.on_air(True)
        self.pa.amp_on()
        p = self.policy
        # The node agents' own cap: the broadcast, its lead-in and tail, and a margin.
        self.clusters.open(
            job.zones, job.priority, for_s=p.lead_in_s + job.duration_s + p.tail_s + 30
        )
        self.trace("amp_on", self.clock.now())
        # Wait out the lead-in until the instant (an emergency or a late job: at once,
        # still after a full lead-in so the amplifier has settled).
        settled = self.clock.now() + timedelta(seconds=p.lead_in_s)
        due = settled if job.priority == "emergency" else max(job.scheduled_for, settled)
        interrupted = False
        while True:
            remaining = (due - self.clock.now()).total_seconds()
            if remaining <= 0:
                break
            if self.clock.sleep(remaining, self._wake) and (
                cur.preempted_by or cur.stopped_by or self._stop.is_set()
            ):
                interrupted = True
                break
            self._wake.clear()
        if interrupted:
            self._finish(job, None, None)
            return
        try:
            if job.live is not None:
                playback = job.live.play(self.sink)
            else:
                playback = self.sink.play(
                    job.wav, announcement_id=job.announcement_id, zones=job.zones
                )
        except AudioError as e:
            self._finish(job, None, None, error=str(e))
            return
        started = playback.started_at
        self.trace("play", started)
        with self._lock:
            cur.playback = playback
            preempt = cur.preempted_by or cur.stopped_by
        if preempt:
            playback.stop()
        self._set_state(
            PlayoutState(
                "playing", job.announcement_id, job.title, job.priority, started, job.zones
            )
        )
        if not self._wait_on_air(cur, playback, started):
            limit = job.duration_s * 1.5 + 30
            playback.stop()
            playback.wait(5)
            self._finish(
                job, started, self.clock.now(), error=f"sink did not finish in {limit:.0f} s"
            )
            return
        self._finish(job, started, playback.ended_at or self.clock.now(), error=playback.error)

    def _wait_on_air(self, cur: _Current, playback: Playback, started: datetime) -> bool:
        """Wait for the sink, bounded (a sink that hangs is cut after its length plus a
        margin), marking progress every ``PROGRESS_S``; False if it had to be cut."""
        limit = cur.job.duration_s * 1.5 + 30
        waited = 0.0
        while waited < limit:
            step = min(PROGRESS_S, limit - waited)
            if playback.wait(step):
                return True
            waited += step
            self.heartbeat = time.monotonic()
            self.writer.progress(cur.row, started_at=started, at=self.clock.now())
        return playback.wait(0)

    def _finish(
        self,
        job: Job,
        started: datetime | None,
        ended: datetime | None,
        *,
        error: str | None = None,
    ) -> None:
        cur = self._current
        assert cur is not None
        with self._lock:
            self._current = None
            next_emergency = any(j.priority == "emergency" for j in self._pending)
        if cur.preempted_by is not None:
            status: Status = "preempted"
            detail = f"preempted by {cur.preempted_by}"
            # Rebooked into the next free gap: it goes back to the queue as it was (not a
            # live one: that voice is gone, and the phone is told).
            if job.live is None:
                with self._lock:
                    self._pending.append(replace(job))
                    self._pending.sort(key=lambda j: j.rank)
        elif cur.stopped_by is not None:
            status, detail = ("cancelled", f"stopped by {cur.stopped_by}")
        elif error:
            status, detail = ("failed", error)
        else:
            status, detail = ("played", None)
        self.clusters.audio_done()
        if next_emergency and cur.preempted_by is not None:
            # Keep the amplifier and relays up: the emergency follows at once.
            self.trace("handover", self.clock.now())
        else:
            self._tail_off()
        detail = _joined(detail, self.clusters.close())
        self._log(job, status, started=started, ended=ended, detail=detail, row=cur.row)
        self._set_state(PlayoutState())

    def _tail_off(self) -> None:
        self.clock.sleep(self.policy.tail_s, self._stop)
        self.pa.amp_off()
        self.trace("amp_off", self.clock.now())
        self.pa.release_zones()
        self.pa.on_air(False)

    def _safe_off(self) -> None:
        for step in (
            self.pa.amp_off,
            self.pa.release_zones,
            lambda: self.pa.on_air(False),
            self.clusters.audio_done,
            lambda: _discard(self.clusters.close()),
        ):
            try:
                step()
            except Exception:
                log.exception("switching the PA off failed")

    def _log(
        self,
        job: Job,
        status: Status,
        *,
        started: datetime | None = None,
        ended: datetime | None = None,
        detail: str | None = None,
        row: int | None = None,
    ) -> None:
        note = _replay_note(job)
        if note is not None:
            detail = f"{detail}; {note}" if detail else note
        if job.live is not None:
            detail = _joined(job.live.note(), detail)
        b = Broadcast(
            job.announcement_id,
            job.scheduled_for,
            status,
            job.zones,
            job.priority,
            started,
            ended,
            detail,
        )
        # Written now, or kept until the database takes writes again; BroadcastLogged
        # follows the write.
        self.writer.logged(b, row)
        if job.live is not None:
            try:
                job.live.finished(status, detail)
            except Exception:
                log.exception("ending the live broadcast %s failed", job.announcement_id)

    def _set_state(self, state: PlayoutState) -> None:
        self.state = state
        self._publish_state()

    def _publish_state(self) -> None:
        with self._lock:
            self.state = replace(self.state, queue=tuple(j.announcement_id for j in self._pending))
            state = self.state
        self.events.publish(PlayoutStateChanged(state))


def _joined(*notes: str | None) -> str | None:
    return "; ".join(n for n in notes if n) or None


def _discard(_: object) -> None:
    """A step whose result is not needed."""


def _replay_note(job: Job) -> str | None:
    if job.replay_of is None:
        return None
    return f"{REPLAY_OF}{job.replay_of.astimezone(UTC).isoformat().replace('+00:00', 'Z')}"
