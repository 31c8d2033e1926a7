"""Ingest: each message decoded once, as it arrives, into the group the writer commits next.

Runs in the ingest writer thread (:mod:`hub.ingest.writer`), between paho's queue and
the commit: recognises re-deliveries (DUP, same packet id and content), decodes with the
adapters (bad input becomes a dead letter, never an exception), applies
:mod:`hub.ingest.limits`, keeps each device's live state in memory (:class:`DeviceRow`),
asks the monitor for health changes, and says whether the group must commit at once
(:attr:`Group.urgent`): status, button and command events, a new device or metric, a
health change, a reading a rule watches. A reading becomes its raw row(s), one per raw
retention class of its metrics (``retention.raw_days_by_metric``), and its info an
``info`` event only when it changed.
"""

from __future__ import annotations

import logging
from array import array
from collections.abc import Callable, Mapping

from devices.adapters import Router
from devices.events import AnnounceCommand, Availability, DecodeError, Ignored, Reading
from hub.events import Stored
from hub.ingest.batch import (
    Devicelike,
    DeviceRow,
    Group,
    IngestStats,
    PendingReading,
    digest,
    epoch,
)
from hub.ingest.limits import RETAINED_COMMAND_REASON, TOO_MANY_NAMES, cap_names, replayed_command
from hub.ingest.monitor import Monitor
from hub.ingest.mqtt import InboundMessage
from hub.settings import Settings
from hub.store import ingest as repo
from hub.store import readings as raw

log = logging.getLogger(__name__)

#: Could this reading change a rule's state? (device id, its metrics, the device's previous
#: values) -> bool; cheap, per reading.
Watched = Callable[[str, Mapping[str, float], Mapping[str, float]], bool]


def nothing_watched(
    device_id: str, metrics: Mapping[str, float], before: Mapping[str, float]
) -> bool:
    return False


class Decoder:
    """Decodes into groups (writer thread). ``devices`` and ``last_digest`` are the
    writer's: what was committed, and what this group adds to it in memory."""

    def __init__(
        self,
        settings: Settings,
        router: Router,
        monitor: Monitor,
        stats: IngestStats,
        devices: dict[str, DeviceRow],
        last_digest: array[int],
    ) -> None:
        self.settings = settings
        self.router = router
        self.monitor = monitor
        self.stats = stats
        self.devices = devices
        self.last_digest = last_digest
        self.watched: Watched = nothing_watched
        self._max_names = settings.ingest.max_metrics_per_device
        self._info_seen: dict[str, tuple[str, float]] = {}  # device -> (info JSON, ts)
        days = settings.retention.raw_days_by_metric
        self._keep = {m: max(1, round(d * 24)) for m, d in days.items()}

    def prepare(self, batch: list[InboundMessage], p: Group) -> None:
        st = self.stats
        cap = self.settings.ingest.max_payload_bytes
        keep = self.settings.ingest.dead_letter_bytes
        p.batch.extend(batch)
        dead_rows, stored, seen_now = p.dead_rows, p.stored, p.seen_now
        last = self.last_digest
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
                    dev = self.devices.get(ev.device_id)
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
                    self._event_row(ev, m, d, p)
                except Exception as e:
                    st.internal_errors += 1
                    st.last_error = f"handling {m.topic}: {type(e).__name__}: {e}"
                    log.exception("handling an event from %s failed", m.topic)
                    dead_rows.append(
                        self._dead(m, f"internal error: {type(e).__name__}: {e}", d, keep)
                    )
                    break
                stored.append(Stored(ev, m.received_at, m.topic))

    def _dead(
        self, m: InboundMessage, reason: str, d: bytes, keep: int, cls: str | None = None
    ) -> repo.DeadRow:
        # ``cls`` names the reason for the counters when the reason itself names a device
        # (a label per device would make /metrics as unbounded as what it counts).
        cls = cls or reason.split(":")[0]
        self.stats.dead_by_reason[cls] = self.stats.dead_by_reason.get(cls, 0) + 1
        return (m.received_at, m.topic, m.payload[:keep], len(m.payload), reason, m.mid, d)

    def _event_row(self, ev: Devicelike, m: InboundMessage, d: bytes, p: Group) -> None:
        ts = epoch(ev.ts, m.received_at)
        if isinstance(ev, AnnounceCommand):
            # A command, not a device: it is logged as an event, but makes no device row
            # (there was a phantom device `cmd`, with a health and alerts of its own).
            etype, data = repo.event_data(ev)
            p.event_rows.append((ts, m.received_at, ev.device_id, etype, m.topic, data, m.mid, d))
            p.urgent = True
            return
        known = self.devices.get(ev.device_id)
        if known is None:
            p.urgent = True  # a new device: its row, discovery, the pages at once
        dev = self._touch(ev, m.received_at, p.touched)
        if isinstance(ev, Reading):
            if known is not None and not p.urgent:
                names = ev.metrics.keys()
                if not names <= dev.metrics.keys() or self.watched(
                    ev.device_id, ev.metrics, dev.metrics
                ):
                    p.urgent = True
            dev.metrics.update(ev.metrics)
            dev.info.update(ev.info)
            self._reading(ev, ts, m, p)
        else:
            etype, data = repo.event_data(ev)
            p.event_rows.append((ts, m.received_at, ev.device_id, etype, m.topic, data, m.mid, d))
            p.urgent = True
        if isinstance(ev, Reading | Availability):
            changes = self.monitor.observe(ev, m.received_at)
            if changes:
                p.changes.extend(changes)
                p.urgent = True

    def _reading(self, ev: Reading, ts: float, m: InboundMessage, p: Group) -> None:
        """The raw row(s) of a reading (one per retention class of its metrics) and its
        info as an event when it changed (or was last written long ago)."""
        info = bool(ev.info)
        if info:
            text = repo.compact_json(dict(ev.info))
            seen = self._info_seen.get(ev.device_id)
            if seen is None or seen[0] != text or ts - seen[1] >= raw.INFO_REFRESH_S:
                self._info_seen[ev.device_id] = (text, ts)
                p.event_rows.append(
                    (ts, m.received_at, ev.device_id, "info", m.topic, text, None, None)
                )
        classes: dict[int, list[tuple[str, float]]] = {}
        keep = self._keep
        for name, v in ev.metrics.items():
            classes.setdefault(keep.get(name, 0), []).append((name, v))
        if not classes:
            classes[0] = []  # a reading of info only is still a reading of the device
        for k, values in classes.items():
            p.readings.append(
                PendingReading(k, ts, m.received_at, ev.device_id, m.topic, info, values)
            )

    def _touch(self, ev: Devicelike, at: float, touched: dict[str, DeviceRow]) -> DeviceRow:
        device_id = ev.device_id
        dev = self.devices.get(device_id)
        if dev is None:
            override = self.settings.health.devices.get(device_id)
            name = override.name if override else None
            dev = self.devices[device_id] = DeviceRow(device_id, ev.kind, ev.source, name, at)
        dev.last_seen = at
        touched[device_id] = dev
        return dev
