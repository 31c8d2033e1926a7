"""Ingest: the writer thread that decodes, stores, then acknowledges every MQTT message.

Flow per batch: decode with the adapters -> one SQLite transaction through
:mod:`hub.store.ingest` (events, dead letters, devices, health changes) ->
acknowledge every message of the batch -> publish the typed events
(:mod:`hub.events`) on the dispatcher. A crash before the commit loses nothing
(the broker re-sends what was not acknowledged); a crash between commit and
acknowledgement re-sends messages already stored, and those re-deliveries (DUP
flag, same packet id and content) are recognised and stored once.
A commit the storage refuses (a full SD card, an I/O error) pauses the writer: the batch
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
import hashlib
import json
import logging
import sqlite3
import threading
from array import array
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from devices.adapters import Router
from devices.events import AnnounceCommand, Availability, ButtonPress, DecodeError, Ignored, Reading
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
from hub.ingest.limits import RETAINED_COMMAND_REASON, TOO_MANY_NAMES, cap_names, replayed_command
from hub.ingest.monitor import Monitor
from hub.ingest.mqtt import InboundMessage
from hub.settings import Settings
from hub.store import Store, immediate
from hub.store import ingest as repo
from hub.store.space import StorageState, root_cause

log = logging.getLogger(__name__)

#: Packet ids are 1..65,535: the digest of the last message committed under each id is
#: what a re-delivery (DUP, same id) is compared with. The broker gives an id to a new
#: message only once the previous one under it was acknowledged, i.e. committed.
PACKET_IDS = 65_536

#: A device's row (last_seen, latest metrics) is rewritten at most this often while it
#: streams; the events table has every reading, and ``tick`` writes what is left over.
DEVICE_FLUSH_S = 2.0

#: A refused commit is tried again after this long, doubling up to RETRY_MAX_S (real
#: seconds: the broker and the disk live in real time).
RETRY_MIN_S = 0.25
RETRY_MAX_S = 8.0


@dataclass(slots=True)
class IngestStats:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    ignored: int = 0
    dead_letters: int = 0
    internal_errors: int = 0
    batches: int = 0
    commit_failures: int = 0
    #: Jobs refused while the writer is paused and its inbox is full (periodic ticks).
    jobs_dropped: int = 0
    last_progress: float = 0.0  # monotonic time of the last committed batch
    #: Counts the commits that may have changed the devices or alerts tables (readers key
    #: their caches on it: the same generation, the same rows).
    generation: int = 0
    last_error: str | None = None
    dead_by_reason: dict[str, int] = field(default_factory=dict)


#: Events that come from a device (everything but Ignored).
Devicelike = Reading | Availability | ButtonPress | AnnounceCommand


def digest(topic: str, payload: bytes) -> bytes:
    return hashlib.blake2b(topic.encode() + b"\0" + payload, digest_size=8).digest()


def _epoch(ts: datetime | None, fallback: float) -> float:
    return ts.timestamp() if ts is not None else fallback


@dataclass(slots=True)
class _Prepared:
    """A batch decoded, its health observed: what one transaction writes. Made once per
    batch, so a retried commit writes the same rows and loses no health change."""

    batch: list[InboundMessage]
    event_rows: list[repo.EventRow]
    dead_rows: list[repo.DeadRow]
    stored: list[Stored]
    touched: dict[str, DeviceRow]
    changes: list[Change]
    seen_now: dict[int, int]  # packet id -> digest, remembered once committed


@dataclass(slots=True)
class DeviceRow:
    id: str
    kind: str
    source: str
    name: str | None
    last_seen: float
    metrics: dict[str, float] = field(default_factory=dict)
    info: dict[str, object] = field(default_factory=dict)
    written_at: float = float("-inf")  # monotonic time of its last write


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
        self._held: _Prepared | None = None  # the batch a refused commit holds
        self._holding = 0  # its size, for ``pending``
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
        self._max_names = settings.ingest.max_metrics_per_device
        self._dirty: dict[str, DeviceRow] = {}  # changed in memory, row not yet written
        self._load()

    # -- start-up ------------------------------------------------------------------------
    def _load(self) -> None:
        """Remember what the last run committed: devices, health and recent packet ids."""
        conn = self.conn
        open_alerts = repo.open_alerts(conn)
        for row in repo.devices(conn):
            device_id, kind, last_seen = row["id"], row["kind"], row["last_seen"]
            metrics, info = json.loads(row["metrics"]), json.loads(row["info"])
            self._devices[device_id] = DeviceRow(
                device_id, kind, row["source"], row["name"], last_seen or 0.0, metrics, info
            )
            self.monitor.restore(
                device_id, kind, row["status"], last_seen, open_alerts.get(device_id, ())
            )
        last = self._last_digest
        for mid, d in repo.last_digests(conn, PACKET_IDS):
            if 0 < mid < PACKET_IDS and d:
                last[mid] = int.from_bytes(d, "big")

    def start(self, ack: Callable[[Sequence[int]], None]) -> None:
        """``ack``: the MQTT link's batch acknowledgement, called after each commit."""
        self._ack = ack
        self.stats.last_progress = self.clock.monotonic()
        self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
        self._thread.start()

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
        """Messages (and jobs) waiting, with the batch a refused commit holds."""
        return len(self._inbox) + self._holding

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
        flush_s = self.settings.ingest.flush_ms / 1000
        size = self.settings.ingest.batch_size
        while True:
            if not self._inbox:
                self._wake.wait()
            self._wake.clear()
            if not self._inbox:
                continue
            item = self._inbox.popleft()
            if item is None:
                self._flush_devices()
                return
            batch: list[InboundMessage] = []
            jobs: list[Callable[[], None]] = []
            stop = False
            (batch if isinstance(item, InboundMessage) else jobs).append(item)  # type: ignore[arg-type]
            deadline = self.clock.monotonic() + flush_s
            # Commit when the queue runs dry (the socket is idle), when the batch is full,
            # or at the flush deadline: never wait for a full batch, as the broker stops
            # sending once its in-flight window of unacknowledged messages is used up.
            while len(batch) < size and self.clock.monotonic() < deadline:
                try:
                    nxt = self._inbox.popleft()
                except IndexError:
                    break
                if nxt is None:
                    stop = True
                    break
                if isinstance(nxt, InboundMessage):
                    batch.append(nxt)
                else:
                    jobs.append(nxt)
            self._space.set()
            if batch:
                self._commit_with_retry(batch)
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

    def _commit_with_retry(self, batch: list[InboundMessage]) -> None:
        """Commit the batch; while the storage refuses, hold it (unacknowledged) and try
        again with a bounded back-off. Logs once when it pauses, once when it resumes."""
        delay = RETRY_MIN_S
        attempts = 0
        while True:
            try:
                self._process(batch)
            except Exception as e:
                attempts += 1
                self._failed(e, len(batch), first=attempts == 1)
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
        a transaction left open would refuse every later BEGIN."""
        with contextlib.suppress(sqlite3.Error):
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")

    def _process(self, batch: list[InboundMessage]) -> None:
        """Decode (once per batch), commit, acknowledge, publish."""
        held = self._held
        if held is None or held.batch is not batch:
            held = self._held = self._prepare(batch)
        self._commit(held)
        self._held = None

    def _prepare(self, batch: list[InboundMessage]) -> _Prepared:
        st = self.stats
        cap = self.settings.ingest.max_payload_bytes
        keep = self.settings.ingest.dead_letter_bytes
        p = _Prepared(batch, [], [], [], {}, [], {})
        event_rows, dead_rows, stored = p.event_rows, p.dead_rows, p.stored
        touched, changes, seen_now = p.touched, p.changes, p.seen_now
        last = self._last_digest
        for m in batch:
            st.received += 1
            d = digest(m.topic, m.payload)
            if m.qos > 0:
                key = int.from_bytes(d, "big")
                if m.dup and (last[m.mid] == key or seen_now.get(m.mid) == key):
                    st.duplicates += 1
                    continue
                seen_now[m.mid] = key
            try:
                if len(m.payload) > cap:
                    raise DecodeError(f"payload too large: {len(m.payload)} bytes > {cap}")
                events = self.router.parse(m.topic, m.payload)
            except DecodeError as e:
                dead_rows.append(self._dead(m, str(e), d, keep))
                continue
            except Exception as e:
                # A bug in an adapter must cost one message, never the hub.
                st.internal_errors += 1
                st.last_error = f"decoding {m.topic}: {type(e).__name__}: {e}"
                log.exception("adapter failed on %s", m.topic)
                dead_rows.append(self._dead(m, f"internal error: {type(e).__name__}: {e}", d, keep))
                continue
            for ev in events:
                if isinstance(ev, Ignored):
                    st.ignored += 1
                    continue
                if replayed_command(ev, m.retain):
                    dead_rows.append(self._dead(m, RETAINED_COMMAND_REASON, d, keep))
                    continue
                if type(ev) is Reading:
                    dev = self._devices.get(ev.device_id)
                    capped = (
                        cap_names(ev, {}, {}, self._max_names)
                        if dev is None
                        else cap_names(ev, dev.metrics, dev.info, self._max_names)
                    )
                    if capped is not None:
                        trimmed, reason = capped
                        dead_rows.append(self._dead(m, reason, d, keep, TOO_MANY_NAMES))
                        if trimmed is None:
                            continue
                        ev = trimmed
                try:
                    row = self._event_row(ev, m, d, touched, changes)
                except Exception as e:
                    st.internal_errors += 1
                    st.last_error = f"handling {m.topic}: {type(e).__name__}: {e}"
                    log.exception("handling an event from %s failed", m.topic)
                    dead_rows.append(
                        self._dead(m, f"internal error: {type(e).__name__}: {e}", d, keep)
                    )
                    break
                event_rows.append(row)
                stored.append(Stored(ev, m.received_at, m.topic))
        return p

    def _commit(self, p: _Prepared) -> None:
        st = self.stats
        with immediate(self.conn) as conn:
            repo.insert_events(conn, p.event_rows)
            repo.insert_dead_letters(conn, p.dead_rows)
            mono = self.clock.monotonic()
            due = [r for r in p.touched.values() if mono - r.written_at >= DEVICE_FLUSH_S]
            repo.upsert_devices(conn, due)
            repo.write_changes(conn, p.changes)
        for dev in due:
            dev.written_at = mono
        # By what this commit wrote, not by the time: on a clock that did not move since
        # the last write (a coarse or a fake one), "written_at == now" would take a row
        # changed since for one written, and its latest metrics would never reach the file.
        written = {dev.id for dev in due}
        for dev in p.touched.values():
            if dev.id in written:
                self._dirty.pop(dev.id, None)
            else:
                self._dirty[dev.id] = dev
        # Committed: now, and only now, the broker may forget these messages.
        last = self._last_digest
        for mid, key in p.seen_now.items():
            last[mid] = key
        self._ack([m.mid for m in p.batch if m.qos > 0])
        st.stored += len(p.event_rows)
        st.dead_letters += len(p.dead_rows)
        st.batches += 1
        if due or p.changes:
            st.generation += 1
        st.last_progress = self.clock.monotonic()
        self._publish(p.stored, p.changes)

    def _dead(
        self, m: InboundMessage, reason: str, d: bytes, keep: int, cls: str | None = None
    ) -> repo.DeadRow:
        # ``cls`` names the reason for the counters when the reason itself names a device
        # (a label per device would make /metrics as unbounded as what it counts).
        cls = cls or reason.split(":")[0]
        self.stats.dead_by_reason[cls] = self.stats.dead_by_reason.get(cls, 0) + 1
        return (m.received_at, m.topic, m.payload[:keep], len(m.payload), reason, m.mid, d)

    def _event_row(
        self,
        ev: Devicelike,
        m: InboundMessage,
        d: bytes,
        touched: dict[str, DeviceRow],
        changes: list[Change],
    ) -> repo.EventRow:
        etype, data = repo.event_data(ev)
        ts = _epoch(ev.ts, m.received_at)
        if isinstance(ev, AnnounceCommand):
            # A command, not a device: it is logged as an event, but makes no device row
            # (there was a phantom device `cmd`, with a health and alerts of its own).
            return (ts, m.received_at, ev.device_id, etype, m.topic, data, m.mid, d)
        dev = self._touch(ev, m.received_at, touched)
        if isinstance(ev, Reading):
            dev.metrics.update(ev.metrics)
            dev.info.update(ev.info)
        if isinstance(ev, Reading | Availability):
            changes.extend(self.monitor.observe(ev, m.received_at))
        return (ts, m.received_at, ev.device_id, etype, m.topic, data, m.mid, d)

    def _touch(self, ev: Devicelike, at: float, touched: dict[str, DeviceRow]) -> DeviceRow:
        device_id = ev.device_id
        dev = self._devices.get(device_id)
        if dev is None:
            override = self.settings.health.devices.get(device_id)
            name = override.name if override else None
            dev = self._devices[device_id] = DeviceRow(device_id, ev.kind, ev.source, name, at)
        dev.last_seen = at
        touched[device_id] = dev
        return dev

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
        """Silence and tolerance timers: queued by the hub's timer, run here."""
        now = self.clock.now().timestamp()
        changes = self.monitor.tick(now)
        dirty = list(self._dirty.values())
        if not changes and not dirty:
            return
        with immediate(self.conn) as conn:
            repo.upsert_devices(conn, dirty)
            repo.write_changes(conn, changes)
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
