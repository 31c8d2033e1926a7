"""Ingest: what the writer holds between receiving messages and committing them.

:class:`Group` is the messages decoded since the last commit (:mod:`hub.ingest.writer`
fills it, commits it, acknowledges it): the rows one transaction writes, the events to
publish after it, and whether anything in it is urgent (it then commits at once instead
of waiting for the commit interval). :class:`DeviceRow` is what the writer knows of a
device in memory; :class:`IngestStats` the counters health and ``/metrics`` read.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from devices.events import AnnounceCommand, Availability, ButtonPress, Reading
from hub.events import Change, Stored
from hub.ingest.mqtt import InboundMessage
from hub.store import ingest as repo


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
    #: Commits made at once for something urgent (not at the commit interval).
    urgent_commits: int = 0
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


def epoch(ts: datetime | None, fallback: float) -> float:
    return ts.timestamp() if ts is not None else fallback


@dataclass(slots=True)
class PendingReading:
    """A reading's raw row(s) before the dictionary numbers its names (at the commit)."""

    keep: int  # retention class (hub.store.readings)
    ts: float
    received_at: float
    device_id: str
    topic: str
    info: bool
    values: list[tuple[str, float]]


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


@dataclass(slots=True)
class Group:
    """Messages decoded since the last commit: what one transaction writes. Each message is
    decoded once, so a retried commit writes the same rows and loses no health change."""

    opened: float  # real monotonic time of its first message
    batch: list[InboundMessage] = field(default_factory=list)
    readings: list[PendingReading] = field(default_factory=list)
    event_rows: list[repo.EventRow] = field(default_factory=list)
    dead_rows: list[repo.DeadRow] = field(default_factory=list)
    stored: list[Stored] = field(default_factory=list)
    touched: dict[str, DeviceRow] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    seen_now: dict[int, int] = field(default_factory=dict)  # packet id -> digest
    #: Commit at once: a status, button or command event, a new device or metric, a
    #: health change, a reading a rule watches.
    urgent: bool = False
