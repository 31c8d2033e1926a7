"""Notify: tell technicians and the village head, by webhook, e-mail, Telegram or SMS.

Its place in the flow: ``hub/automation/rules.py`` decides who hears of what and hands
a :class:`Notification` to :meth:`Notifier.send`, which only queues it. One worker thread
delivers each message per channel (``hub/automation/channels.py``), retries with
exponential back-off and finally gives up. A channel that is down never blocks the
caller, and never holds back the other channels' messages. With an outbox
(``hub/store/outbox.py``) what is undelivered survives a restart, and SMS channels work:
their messages go through :class:`hub.automation.sms.SmsGateway` (its log and limits are in
the same database; its "sms-status" thread starts and stops with the worker).

One message per incident and state: sending the same ``(incident, state)`` again
for a channel while it is queued or after it was delivered does nothing, so a rule
may call ``send`` on every sample while a condition holds.

Threads: ``send``, ``stats`` and ``pending`` may be used from any thread (ingest
writer, rules, API) and never touch the network; deliveries run in the worker thread
("notify"). ``on_result`` is called in the worker thread, and in the caller's thread for
a message dropped from a full queue.
"""

from __future__ import annotations

import logging
import random as _random
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, tzinfo
from typing import Literal

from hub.automation.channels import DeliveryError, channel_secrets, deliver_now, scrub
from hub.automation.notification import Notification, State
from hub.automation.notify_settings import AnyChannel, NotifySettings, SmsChannel
from hub.automation.sms import SmsGateway
from hub.clock import Clock, SystemClock
from hub.store.outbox import Outbox

__all__ = ["JITTER", "RETRY_AFTER_MAX_S", "Deliver", "Delivery", "Notifier", "NotifyStats"]

log = logging.getLogger(__name__)

#: Back-off jitter: each wait is shortened by up to this fraction, so that many
#: messages failing together do not all retry in the same second.
JITTER = 0.1
#: A server's own Retry-After is honoured, up to this many seconds.
RETRY_AFTER_MAX_S = 6 * 3600.0

Outcome = Literal["sent", "retry", "failed", "dropped"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """What became of one message on one channel (handed to ``on_result``)."""

    incident: str
    state: State
    channel: str
    outcome: Outcome
    attempts: int
    error: str | None = None
    retry_in_s: float | None = None


@dataclass(slots=True)
class NotifyStats:
    sent: int = 0
    failed: int = 0  # gave up: permanent refusal or max_attempts reached
    retried: int = 0  # failed attempts that will be tried again
    dropped: int = 0  # pushed out of a full queue
    deduped: int = 0
    unknown_channel: int = 0
    internal_errors: int = 0
    last_error: str | None = None


@dataclass(slots=True)
class _Job:
    n: Notification
    channel: str
    seq: int
    due: float
    attempts: int = 0
    row: int | None = None  # its notify_outbox row


Deliver = Callable[[Notification, AnyChannel], None]


class Notifier:
    """A bounded queue of messages and the one thread that delivers them.

    Scheduling is by next-attempt time: a message waiting out its back-off holds
    back nothing but later messages of the same incident on the same channel (so a
    ``cleared`` never arrives before its ``raised``). Among messages that are due,
    channels whose last attempt failed come last, so a dead endpoint's backlog does
    not delay a healthy channel.
    """

    def __init__(
        self,
        settings: NotifySettings,
        *,
        clock: Clock | None = None,
        wait: Callable[[float, threading.Event], bool] | None = None,
        random: Callable[[], float] = _random.random,
        on_result: Callable[[Delivery], None] | None = None,
        tz: tzinfo = UTC,
        deliver: Deliver | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        self.settings = settings
        self._outbox = outbox
        self._loaded = False
        self._clock = clock or SystemClock()
        # The back-off wait: returns early (True) when woken by send() or stop().
        self._wait = wait or self._clock.sleep
        self._random = random
        self._on_result = on_result
        self._tz = tz
        #: The SMS channels' sender and log (None without an outbox or an SMS channel).
        self.sms: SmsGateway | None = None
        if outbox is not None and any(
            isinstance(ch, SmsChannel) for ch in settings.channels.values()
        ):
            self.sms = SmsGateway(settings, outbox.store, clock=self._clock, tz=tz)
        self._deliver: Deliver = deliver or self._deliver_now
        # Every channel's secrets are scrubbed from every error: cheap, and sure.
        self._secrets = sorted(
            {s for ch in settings.channels.values() for s in channel_secrets(ch)},
            key=len,
            reverse=True,
        )
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._jobs: dict[int, _Job] = {}  # insertion order = age
        self._seq = 0
        self._in_flight: int | None = None
        # Last state accepted per (incident, channel): a repeat of it is a duplicate.
        self._last: OrderedDict[tuple[str, str], State] = OrderedDict()
        self._failing: set[str] = set()
        self._stats = NotifyStats()
        self._thread: threading.Thread | None = None

    # -- any thread ------------------------------------------------------------------------
    def send(self, n: Notification) -> None:
        """Queue ``n`` for its channels and return at once: no network, a short lock (and,
        with an outbox, one small insert per channel under it)."""
        names = n.channels or tuple(self.settings.channels)
        dropped: list[Delivery] = []
        gone: list[int | None] = []
        unknown: list[str] = []
        with self._lock:
            now = self._clock.monotonic()
            for ch in names:
                if ch not in self.settings.channels:
                    self._stats.unknown_channel += 1
                    unknown.append(ch)
                    continue
                key = (n.incident, ch)
                if self._last.get(key) == n.state:
                    self._stats.deduped += 1
                    continue
                self._last[key] = n.state
                self._last.move_to_end(key)
                while len(self._last) > self.settings.dedupe_window:
                    self._last.popitem(last=False)
                self._seq += 1
                # On disk before the worker can see it (a short insert, under the lock).
                row = self._save(n, ch)
                self._jobs[self._seq] = _Job(n, ch, self._seq, due=now, row=row)
                if len(self._jobs) > self.settings.queue_max:
                    old = next(s for s in self._jobs if s != self._in_flight)
                    job = self._jobs.pop(old)
                    self._forget(job)
                    self._stats.dropped += 1
                    dropped.append(self._result(job, "dropped", "queue full"))
                    gone.append(job.row)
        self._wake.set()
        for r in gone:
            self._unsave(r)
        for ch in unknown:
            log.warning("notification %s names unknown channel %r", n.incident, ch)
        for d in dropped:
            log.warning("notify queue full: dropped %s (%s) for %s", d.incident, d.state, d.channel)
            self._report(d)

    @property
    def stats(self) -> NotifyStats:
        with self._lock:
            return replace(self._stats)

    @property
    def pending(self) -> int:
        """Messages not yet delivered nor given up (including the one being tried)."""
        with self._lock:
            return len(self._jobs)

    def _deliver_now(self, n: Notification, channel: AnyChannel) -> None:
        if isinstance(channel, SmsChannel) and self.sms is not None:
            name = next(k for k, v in self.settings.channels.items() if v is channel)
            self.sms.deliver(n, name, channel)
        else:
            deliver_now(n, channel, tz=self._tz)

    # -- lifecycle (main thread) ---------------------------------------------------------
    def start(self) -> None:
        if self.sms is not None:
            self.sms.start()
        if self._thread is not None and self._thread.is_alive():
            return
        if not self._loaded:
            self._loaded = True
            self._reload()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="notify", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker. The back-off wait wakes at once; an attempt in progress may
        take up to its channel's timeout, and then the thread is left behind (daemon)."""
        self._stopping.set()
        self._wake.set()
        if self.sms is not None:
            self.sms.stop(timeout)
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("notify worker still busy with an attempt after %.1f s", timeout)
        left = self.pending
        if left:
            kept = " (kept on disk for the next start)" if self._outbox is not None else ""
            log.warning("notify stopped with %d message(s) undelivered%s", left, kept)

    # -- worker thread ---------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()  # before looking: a send() from now on wakes the wait below
            if self._stopping.is_set():  # stop() may have set the wake just cleared
                break
            with self._lock:
                job, wait_s = self._pick(self._clock.monotonic())
            if job is None:
                if wait_s is None:
                    self._wake.wait()
                else:
                    self._wait(wait_s, self._wake)
                continue
            try:
                self._attempt(job)
            except Exception as e:  # never let the worker die (nor loop on one message)
                with self._lock:
                    self._in_flight = None
                    if self._jobs.pop(job.seq, None) is not None:
                        self._forget(job)
                    self._stats.internal_errors += 1
                    self._stats.last_error = f"internal: {type(e).__name__}"
                log.exception("notify worker failed on %s", job.n.incident)
                self._unsave(job.row)

    def _pick(self, now: float) -> tuple[_Job | None, float | None]:
        best: _Job | None = None
        best_rank: tuple[bool, float, int] | None = None
        soonest: float | None = None
        heads: set[tuple[str, str]] = set()
        for job in self._jobs.values():  # oldest first
            key = (job.n.incident, job.channel)
            if key in heads:
                continue  # an older message of this incident on this channel goes first
            heads.add(key)
            if job.due > now:
                soonest = job.due if soonest is None else min(soonest, job.due)
                continue
            rank = (job.channel in self._failing, job.due, job.seq)
            if best_rank is None or rank < best_rank:
                best, best_rank = job, rank
        if best is not None:
            self._in_flight = best.seq
            return best, None
        return None, None if soonest is None else max(0.0, soonest - now)

    def _attempt(self, job: _Job) -> None:
        channel = self.settings.channels[job.channel]
        job.attempts += 1
        err: DeliveryError | None = None
        try:
            self._deliver(job.n, channel)
        except DeliveryError as e:
            err = e
        except Exception as e:  # a library surprise: treated as a passing fault
            err = DeliveryError(f"{type(e).__name__}: {e}")
        reason = scrub(err.reason, self._secrets) if err else None
        with self._lock:
            self._in_flight = None
            if err is None:
                self._jobs.pop(job.seq, None)
                self._failing.discard(job.channel)
                self._stats.sent += 1
                result = self._result(job, "sent")
            elif err.permanent or job.attempts >= self.settings.max_attempts:
                self._jobs.pop(job.seq, None)
                self._forget(job)
                if not err.permanent:
                    self._failing.add(job.channel)
                self._stats.failed += 1
                self._stats.last_error = f"{job.channel}: {reason}"
                result = self._result(job, "failed", reason)
            else:
                if err.retry_after is not None:
                    delay = min(max(0.0, err.retry_after), RETRY_AFTER_MAX_S)
                else:
                    delay = self.backoff(job.attempts)
                job.due = self._clock.monotonic() + delay
                self._failing.add(job.channel)
                self._stats.retried += 1
                self._stats.last_error = f"{job.channel}: {reason}"
                result = self._result(job, "retry", reason, delay)
        if result.outcome == "retry":
            self._saved_attempts(job)
        else:
            self._unsave(job.row)
        if result.outcome == "sent":
            log.info("notified %s via %s (%s)", job.n.incident, job.channel, job.n.state)
        elif result.outcome == "retry":
            log.warning(
                "notify %s via %s failed (attempt %d): %s; again in %.0f s",
                job.n.incident,
                job.channel,
                job.attempts,
                reason,
                result.retry_in_s,
            )
        else:
            log.error(
                "notify %s via %s given up after %d attempt(s): %s",
                job.n.incident,
                job.channel,
                job.attempts,
                reason,
            )
        self._report(result)

    def backoff(self, attempts: int) -> float:
        """The wait after the ``attempts``-th failure: doubling from retry_initial_s up to
        retry_max_s, shortened by up to JITTER at random."""
        s = self.settings
        base = min(s.retry_max_s, s.retry_initial_s * 2.0 ** min(attempts - 1, 60))
        return base * (1.0 - JITTER * self._random())

    # -- the outbox on disk: its faults are logged, the message stays queued in memory ----------
    def _save(self, n: Notification, channel: str) -> int | None:
        if self._outbox is None:
            return None
        try:
            return self._outbox.add(n, channel, self._clock.now().timestamp())
        except Exception:
            log.exception("notify outbox: could not save %s; it is queued in memory", n.incident)
            return None

    def _unsave(self, row: int | None) -> None:
        if self._outbox is not None and row is not None:
            try:
                self._outbox.remove(row)
            except Exception:
                log.exception("notify outbox: could not delete row %d", row)

    def _saved_attempts(self, job: _Job) -> None:
        if self._outbox is not None and job.row is not None:
            try:
                self._outbox.attempted(job.row, job.attempts)
            except Exception:
                log.exception("notify outbox: could not update row %d", job.row)

    def _reload(self) -> None:
        """At the first start: what the last run left undelivered, oldest first."""
        if self._outbox is None:
            return
        try:
            saved = self._outbox.load()
        except Exception:
            log.exception("notify outbox: could not read what the last run left")
            return
        stale: list[int] = []
        with self._lock:
            now = self._clock.monotonic()
            for row, channel, n, attempts in saved:
                if channel not in self.settings.channels:
                    stale.append(row)  # a channel since removed from the settings
                    continue
                self._seq += 1
                self._jobs[self._seq] = _Job(n, channel, self._seq, now, attempts, row)
                self._last[(n.incident, channel)] = n.state
        for row in stale:
            self._unsave(row)
        if saved:
            log.info("notify: %d message(s) from the last run to deliver", len(saved) - len(stale))

    # -- helpers (lock held where noted) ------------------------------------------------------
    def _forget(self, job: _Job) -> None:
        """Lock held. A message given up or dropped may be sent again later."""
        key = (job.n.incident, job.channel)
        if self._last.get(key) == job.n.state:
            del self._last[key]

    @staticmethod
    def _result(
        job: _Job, outcome: Outcome, error: str | None = None, retry_in: float | None = None
    ) -> Delivery:
        return Delivery(
            job.n.incident, job.n.state, job.channel, outcome, job.attempts, error, retry_in
        )

    def _report(self, d: Delivery) -> None:
        if self._on_result is None:
            return
        try:
            self._on_result(d)
        except Exception:
            log.exception("notify on_result callback failed")
