"""Ingest: the writer thread that decodes, stores, then acknowledges every MQTT message.

Flow per group: decode with the adapters (as messages arrive) -> one SQLite transaction
through :mod:`hub.store.ingest` (raw readings, events, dead letters, devices, health
changes) -> acknowledge every message of the group -> publish the typed events
(:mod:`hub.events`) on the dispatcher. A crash before the commit loses nothing
(the broker re-sends what was not acknowledged); a crash between commit and
acknowledgement re-sends messages already stored, and those re-deliveries (DUP
flag, same packet id and content) are recognised and stored once.
Commits are grouped in time (``ingest.commit_interval_s``): at a village's 20 readings a
second, one commit every 20 s instead of one per message, which is what wears an
SD card (bench/wear.py). What must not wait commits at once (:attr:`Group.urgent`):
status, button and command events, a new device or metric, a health change, and a
reading an enabled rule watches (:meth:`Ingest.watch`, :mod:`hub.ingest.urgency`), so the
rules react as fast as with a commit per message. Devices' rows are written all
together every ``ingest.device_flush_s`` (their live state is here, in memory; after a
crash :meth:`Ingest._load` takes it from the newest raw readings).
A commit the storage refuses (a full SD card, an I/O error) pauses the writer: the group
stays decoded and unacknowledged (the broker keeps QoS 1 messages, its in-flight window
and ``queue_max`` bound what waits here), the refusal goes to the one storage state
(:mod:`hub.store.space`: the ``disk_full`` alert, health), and the same rows are tried
again with a bounded back-off until a commit goes through.
Between decoding and storing, :mod:`hub.ingest.limits` turns a replayed (retained)
command and metric names beyond a device's limit into dead letters; ``cmd/announce``
is stored as an event but is no device.

Threads: ``submit`` runs in paho's network thread; everything else in the
writer thread started by ``start``; ``stats`` and ``pending`` may be read from any
thread; ``call`` and ``call_wait`` hand a job to the writer thread from any thread.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from devices.adapters import Router
from hub.clock import Clock
from hub.events import (
    AlertChanged,
    Change,
    DeviceStatusChanged,
    Dispatcher,
    MessagesStored,
    StatusChange,
    Stored,
)
from hub.ingest.batch import DeviceRow, Group, IngestStats
from hub.ingest.decode import Decoder, Watched
from hub.ingest.monitor import Monitor
from hub.ingest.mqtt import InboundMessage
from hub.settings import Settings
from hub.store import Store, immediate
from hub.store import ingest as repo
from hub.store import readings as raw
from hub.store.space import StorageState, root_cause

__all__ = ["DEVICE_FLUSH_S", "DeviceRow", "Ingest", "IngestStats", "Watched"]

log = logging.getLogger(__name__)

#: Packet ids are 1..65,535: the digest of the last message committed under each id is
#: what a re-delivery (DUP, same id) is compared with. The broker gives an id to a new
#: message only once the previous one under it was acknowledged, i.e. committed.
PACKET_IDS = 65_536

#: With ``ingest.device_flush_s`` = 0, a device's row is rewritten at most this often
#: while it streams (by the hub's clock), and ``tick`` writes what is left over.
DEVICE_FLUSH_S = 2.0

#: A refused commit is tried again after this long, doubling up to RETRY_MAX_S (real
#: seconds: the broker and the disk live in real time).
RETRY_MIN_S = 0.25
RETRY_MAX_S = 8.0


class Ingest:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        router: Router,
        monitor: Monitor,
        clock: Clock,
        *,
        events: Dispatcher,
        storage: StorageState | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.router = router
        self.monitor = monitor
        self.clock = clock
        self.events = events
        self.storage = storage or StorageState(store, settings.data_dir, clock)
        #: Monotonic time the writer paused (a refused commit), None while it writes.
        self.paused_since: float | None = None
        self._holding = 0  # the size of the group a refused commit holds, for ``pending``
        self._open = 0  # messages in the group not yet committed
        self._ack: Callable[[Sequence[int]], None] = _no_ack
        self.stats = IngestStats()
        # paho thread -> writer: deque.append/popleft are atomic; the event wakes an idle
        # writer. queue.Queue costs a lock and a notify per message on both sides.
        self._inbox: deque[InboundMessage | Callable[[], None] | None] = deque()
        self._wake = threading.Event()
        self._space = threading.Event()  # set by the writer each time it takes a batch
        self._queue_max = settings.ingest.queue_max
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.conn = store.writer_connection()
        # Packet id -> 64-bit digest of the last message committed under it (0: none).
        # 512 KiB, where a set of recent (id, digest) pairs took about 6 MB.
        self._last_digest = array("Q", bytes(8 * PACKET_IDS))
        self._devices: dict[str, DeviceRow] = {}
        self._decoder = Decoder(
            settings, router, monitor, self.stats, self._devices, self._last_digest
        )
        self._dirty: dict[str, DeviceRow] = {}  # changed in memory, row not yet written
        self._flushed = time.monotonic()  # real time all dirty rows were last written
        self._codes = raw.Codes()
        self._last_ms: dict[tuple[int, int], tuple[int, int]] = {}
        self._load()

    # -- start-up ------------------------------------------------------------------------
    def _load(self) -> None:
        """Remember what the last run committed: devices, health and recent packet ids."""
        conn = self.conn
        open_alerts = repo.open_alerts(conn)
        rows = repo.devices(conn)
        for row in rows:
            device_id, kind, last_seen = row["id"], row["kind"], row["last_seen"]
            metrics, info = orjson.loads(row["metrics"]), orjson.loads(row["info"])
            self._devices[device_id] = DeviceRow(
                device_id, kind, row["source"], row["name"], last_seen or 0.0, metrics, info
            )
        self._catch_up()
        for row in rows:
            dev = self._devices[row["id"]]
            self.monitor.restore(
                dev.id, dev.kind, row["status"], dev.last_seen, open_alerts.get(dev.id, ())
            )
        last = self._last_digest
        for mid, d in repo.last_digests(conn):
            if 0 < mid < PACKET_IDS and d:
                last[mid] = int.from_bytes(d, "big")

    def _catch_up(self) -> None:
        """Device rows are written every ``device_flush_s``: a crash leaves them behind the
        raw readings by up to that long. Those readings bring them up to date."""
        seen = [d.last_seen for d in self._devices.values() if d.last_seen]
        if not seen:
            return
        since = max(seen) - self.settings.ingest.device_flush_s - 60.0
        for device_id, _ts, received, metrics in repo.catch_up_rows(self.conn, since):
            dev = self._devices.get(device_id)
            if dev is None or received < dev.last_seen:
                continue
            dev.metrics.update(metrics)
            dev.last_seen = received
            self._dirty[device_id] = dev

    def start(self, ack: Callable[[Sequence[int]], None]) -> None:
        """``ack``: the MQTT link's batch acknowledgement, called after each commit."""
        self._ack = ack
        self.stats.last_progress = self.clock.monotonic()
        self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
        self._thread.start()

    def watch(self, watched: Watched) -> None:
        """What makes a reading urgent besides a new device or metric or a health change: a
        rule watching it (:class:`hub.ingest.urgency.WatchedMetrics`). Any thread."""
        self._decoder.watched = watched

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            self._stopping.set()
            self._put(None)
            self._thread.join(timeout)
            self._thread = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def device(self, device_id: str) -> DeviceRow | None:
        """What the writer knows of a device (writer thread; others read a snapshot)."""
        return self._devices.get(device_id)

    def devices(self) -> list[DeviceRow]:
        return list(self._devices.values())

    @property
    def pending(self) -> int:
        """Messages (and jobs) waiting, with the group not yet committed."""
        return len(self._inbox) + max(self._holding, self._open)

    # -- paho network thread -----------------------------------------------------------
    def submit(self, msgs: list[InboundMessage]) -> None:
        # Blocks paho's thread when the writer is far behind: back-pressure reaches the
        # broker (it stops sending past its in-flight limit) instead of memory growing.
        self._inbox.extend(msgs)
        if not self._wake.is_set():
            self._wake.set()
        # Back-pressure: paho's thread stops reading, TCP stops the broker (which also
        # stops by itself at its max_inflight_messages unacknowledged messages).
        while len(self._inbox) > self._queue_max and not self._stopping.is_set():
            self._space.clear()
            if len(self._inbox) > self._queue_max:
                self._space.wait(0.1)

    # -- any thread: jobs that must run where the writes happen -------------------------
    def call(self, job: Callable[[], None]) -> None:
        # While the writer is paused, periodic jobs pile up behind the held batch: past
        # the inbox's bound they are dropped (the next tick comes anyway), so a long full
        # disk costs no memory.
        if self.paused_since is not None and len(self._inbox) > 2 * self._queue_max:
            self.stats.jobs_dropped += 1
            return
        self._put(job)

    def _put(self, item: InboundMessage | Callable[[], None] | None) -> None:
        self._inbox.append(item)
        self._wake.set()

    def call_wait(self, job: Callable[[], Any], timeout: float = 30.0) -> Any:
        refused = self.storage.error() if self.paused_since is not None else None
        if refused is not None:
            raise refused  # the writer waits for the storage: no request waits behind it
        done = threading.Event()
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["result"] = job()
            except BaseException as e:  # handed back to the caller
                box["error"] = e
            finally:
                done.set()

        self.call(run)
        if not done.wait(timeout):
            raise TimeoutError("the ingest writer did not answer in time")
        if "error" in box:
            raise box["error"]
        return box.get("result")

    # -- writer thread -----------------------------------------------------------------
    def _run(self) -> None:
        interval = self.settings.ingest.commit_interval_s
        size = self.settings.ingest.batch_size
        group: Group | None = None
        while True:
            if not self._inbox:
                # Real time: the broker and the disk live in it (a test's clock may not move).
                left = None if group is None else group.opened + interval - time.monotonic()
                if left is None or left > 0:
                    self._wake.wait(left)
            self._wake.clear()
            room = size - (len(group.batch) if group is not None else 0)
            batch, jobs, stop = self._take(room)
            self._space.set()
            if batch:
                if group is None:
                    group = Group(time.monotonic())
                self._decoder.prepare(batch, group)
                self._open = len(group.batch)
            if group is not None and (
                stop
                or group.urgent
                or len(group.batch) >= size
                or time.monotonic() - group.opened >= interval
            ):
                self._commit_with_retry(group)
                group, self._open = None, 0
            for job in jobs:
                try:
                    job()
                except Exception as e:
                    if self.storage.failed(e, "an ingest job (health tick, rules, retention)"):
                        self._rollback()  # the storage, not a bug: the next tick tries again
                        continue
                    self.stats.internal_errors += 1
                    self.stats.last_error = f"job: {type(e).__name__}: {e}"
                    log.exception("ingest job failed")
            if stop:
                self._flush_devices()
                return

    def _take(self, room: int) -> tuple[list[InboundMessage], list[Callable[[], None]], bool]:
        """Messages (up to ``room``) and jobs waiting; True when told to stop. Takes until
        the queue runs dry, the batch is full or ``flush_ms`` passed: never waits for a full
        batch (the broker stops sending once its in-flight window is used up)."""
        batch: list[InboundMessage] = []
        jobs: list[Callable[[], None]] = []
        deadline = self.clock.monotonic() + self.settings.ingest.flush_ms / 1000
        while len(batch) < max(room, 1):
            try:
                nxt = self._inbox.popleft()
            except IndexError:
                break
            if nxt is None:
                return batch, jobs, True
            if isinstance(nxt, InboundMessage):
                batch.append(nxt)
            else:
                jobs.append(nxt)
            if batch and self.clock.monotonic() >= deadline:
                break
        return batch, jobs, False

    def _jobs_while_paused(self) -> None:
        """The held batch waits; the jobs queued behind it do not: the watchdog's probe
        (a writer stuck on a full disk is not a hung one: killing the hub would silence
        the loudspeakers and change nothing on the disk), the health tick, the rules'
        timers. A job that writes fails like the batch and is not retried. Messages keep
        their place, ahead of any that arrive meanwhile."""
        others: list[InboundMessage | Callable[[], None] | None] = []
        jobs: list[Callable[[], None]] = []
        for _ in range(len(self._inbox)):  # what is queued now; later arrivals stay behind
            try:
                item = self._inbox.popleft()
            except IndexError:
                break
            if item is None or isinstance(item, InboundMessage):
                others.append(item)
            else:
                jobs.append(item)
        self._inbox.extendleft(reversed(others))
        for job in jobs:
            try:
                job()
            except Exception as e:
                if not self.storage.failed(e, "an ingest job while ingest is paused"):
                    log.exception("ingest job failed while ingest is paused")
                self._rollback()

    def _commit_with_retry(self, group: Group) -> None:
        """Commit the group; while the storage refuses, hold it (unacknowledged) and try
        again with a bounded back-off. Logs once when it pauses, once when it resumes."""
        delay = RETRY_MIN_S
        attempts = 0
        while True:
            try:
                self._process(group)
            except Exception as e:
                attempts += 1
                self._failed(e, len(group.batch), first=attempts == 1)
                self._jobs_while_paused()
                if self._stopping.wait(delay):
                    return
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            if attempts:
                paused = self.clock.monotonic() - (self.paused_since or 0.0)
                log.warning(
                    "ingest resumed: the held batch is committed after %d attempts (%.0f s)",
                    attempts,
                    paused,
                )
            self.paused_since, self._holding = None, 0
            self.storage.ok()
            return

    def _failed(self, e: Exception, size: int, *, first: bool) -> None:
        """A refused commit: nothing is acknowledged, so the broker keeps every message."""
        self._rollback()
        cause = root_cause(e)
        st = self.stats
        st.commit_failures += 1
        st.last_error = f"commit failed: {type(cause).__name__}: {cause}"
        kind = self.storage.failed(e, "the ingest writer")
        if not first:
            log.debug("ingest commit refused again: %s", cause)
            return
        self.paused_since = self.clock.monotonic()
        self._holding = size
        if kind is None:
            log.exception("ingest commit failed; %d messages held, retrying", size)
        else:
            log.error(
                "ingest paused: the storage refuses the commit (%s); %d messages held "
                "unacknowledged (the broker keeps them), retrying with back-off",
                cause,
                size,
            )

    def _rollback(self) -> None:
        """SQLite may have rolled back by itself (SQLITE_FULL) or not (a failed COMMIT):
        a transaction left open would refuse every later BEGIN. Names numbered in it are
        numbered again."""
        self._codes.forget()
        with contextlib.suppress(sqlite3.Error):
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")

    def _process(self, p: Group) -> None:
        """Commit, acknowledge, publish (tests replace it to make the storage refuse)."""
        self._commit(p)

    def _commit(self, p: Group) -> None:
        st = self.stats
        with immediate(self.conn) as conn:
            raw.insert_readings(
                conn, repo.reading_rows(conn, self._codes, p.readings, self._last_ms)
            )
            repo.insert_events(conn, p.event_rows)
            repo.insert_dead_letters(conn, p.dead_rows)
            repo.remember_digests(conn, p.seen_now)
            due = self._due(p)
            repo.upsert_devices(conn, due)
            repo.write_changes(conn, p.changes)
        self._written(due)
        # By what this commit wrote, not by the time: on a clock that did not move since
        # the last write (a coarse or a fake one), "written_at == now" would take a row
        # changed since for one written, and its latest metrics would never reach the file.
        written = {dev.id for dev in due}
        for dev in p.touched.values():
            if dev.id not in written:
                self._dirty[dev.id] = dev
        # Committed: now, and only now, the broker may forget these messages.
        last = self._last_digest
        for mid, key in p.seen_now.items():
            last[mid] = key
        self._ack([m.mid for m in p.batch if m.qos > 0])
        st.stored += len(p.stored)
        st.dead_letters += len(p.dead_rows)
        st.batches += 1
        if p.urgent:
            st.urgent_commits += 1
        if due or p.changes:
            st.generation += 1
        st.last_progress = self.clock.monotonic()
        self._publish(p.stored, p.changes)

    def _due(self, p: Group) -> list[DeviceRow]:
        """The device rows this commit writes: new ones always; with ``device_flush_s``
        every dirty row once that long passed (all together: they share pages), else (0)
        each touched row not written for ``DEVICE_FLUSH_S``."""
        flush_s = self.settings.ingest.device_flush_s
        if flush_s == 0:
            mono = self.clock.monotonic()
            return [r for r in p.touched.values() if mono - r.written_at >= DEVICE_FLUSH_S]
        new = [r for r in p.touched.values() if r.written_at == float("-inf")]
        if time.monotonic() - self._flushed < flush_s:
            return new
        self._flushed = time.monotonic()
        rows = {r.id: r for r in self._dirty.values()}
        rows.update((r.id, r) for r in p.touched.values())
        return list(rows.values())

    def _publish(self, stored: list[Stored], changes: list[Change]) -> None:
        """After the commit: each change, then the batch (writer thread)."""
        if not (stored or changes):
            return
        events = self.events
        failures = events.failures
        for c in changes:
            events.publish(
                DeviceStatusChanged(c) if isinstance(c, StatusChange) else AlertChanged(c)
            )
        events.publish(MessagesStored(tuple(stored), tuple(changes)))
        # The dispatcher logged the traceback; health and /metrics count it with ours. It
        # is shared: a failure in another thread's publish meanwhile may be counted here.
        if events.failures != failures:
            self.stats.internal_errors += events.failures - failures
            self.stats.last_error = "a subscriber of the ingest events failed (see the log)"

    # -- periodic work (writer thread) ----------------------------------------------------
    def tick(self) -> None:
        """Silence and tolerance timers, and the device rows when due: queued by the hub's
        timer, run here."""
        now = self.clock.now().timestamp()
        changes = self.monitor.tick(now)
        flush_s = self.settings.ingest.device_flush_s
        due = flush_s == 0 or time.monotonic() - self._flushed >= flush_s
        dirty = list(self._dirty.values()) if due else []
        if not changes and not dirty:
            return
        with immediate(self.conn) as conn:
            repo.upsert_devices(conn, dirty)
            repo.write_changes(conn, changes)
        if dirty:
            self._flushed = time.monotonic()
        self._written(dirty)
        self.stats.generation += 1
        self._publish([], changes)

    def _flush_devices(self) -> None:
        """Write the device rows still pending (at stop)."""
        dirty = list(self._dirty.values())
        if not dirty:
            return
        with immediate(self.conn) as conn:
            repo.upsert_devices(conn, dirty)
        self._written(dirty)

    def _written(self, devices: list[DeviceRow]) -> None:
        mono = self.clock.monotonic()
        for d in devices:
            d.written_at = mono
            self._dirty.pop(d.id, None)


def _no_ack(mids: Sequence[int]) -> None:
    """Before start nothing was received, so there is nothing to acknowledge."""
