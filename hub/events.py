"""Outbound events: what happened in the hub, as frozen types on one dispatcher.

The stages publish; the MQTT mirror, the live stream (SSE bus), Home Assistant
discovery, the rules and the notifier subscribe. ``build_hub`` wires every
subscription once, before any thread starts; nothing is swapped in later.

Threads: ``publish`` runs the handlers in the publisher's thread (the ingest
writer, the scheduler, the playout, a request handler), in the order they
subscribed. A handler must only hand work over (queue, ``call_soon_threadsafe``,
an MQTT publish): never render, sleep or wait. A handler that raises is logged
and the others still run: one broken subscriber never silences the rest.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

from devices.events import Event

log = logging.getLogger(__name__)

# -- values the events carry ------------------------------------------------------------------

DeviceStatus = Literal["online", "degraded", "offline", "unknown"]
Priority = Literal["normal", "high", "emergency"]
BroadcastStatus = Literal[
    "played", "missed", "preempted", "failed", "cancelled", "interrupted", "playing"
]


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A device's health went from ``previous`` to ``status`` (monitor, writer thread)."""

    device_id: str
    kind: str
    status: DeviceStatus
    previous: DeviceStatus
    at: float
    reason: str


@dataclass(frozen=True, slots=True)
class AlertChange:
    """An alert raised or cleared; ``id`` names one incident from raise to clear."""

    id: str
    device_id: str
    rule: str
    severity: str
    state: Literal["raised", "cleared"]
    message: str
    raised_at: float
    cleared_at: float | None = None


Change = StatusChange | AlertChange


@dataclass(frozen=True, slots=True)
class Stored:
    """A decoded event as committed, handed to listeners (rules, the live stream)."""

    event: Event
    received_at: float
    topic: str


@dataclass(frozen=True, slots=True)
class Broadcast:
    """A line of the playout log (the as-run report)."""

    announcement_id: str
    scheduled_for: datetime
    status: BroadcastStatus
    zones: tuple[str, ...]
    priority: Priority
    started_at: datetime | None = None
    ended_at: datetime | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class PlayoutState:
    state: Literal["idle", "playing"] = "idle"
    announcement_id: str | None = None
    title: str | None = None
    priority: str | None = None
    started_at: datetime | None = None
    zones: tuple[str, ...] = ()
    queue: tuple[str, ...] = ()


# -- the events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessagesStored:
    """A batch committed by the ingest writer (writer thread, after the commit)."""

    stored: tuple[Stored, ...]
    changes: tuple[Change, ...]


@dataclass(frozen=True, slots=True)
class BrokerLinkChanged:
    """The hub's MQTT link connected (and subscribed) or went down (paho's thread)."""

    connected: bool


@dataclass(frozen=True, slots=True)
class DeviceStatusChanged:
    change: StatusChange


@dataclass(frozen=True, slots=True)
class AlertChanged:
    """A device alert (monitor) or one of the hub's own (clock, a failed broadcast)."""

    alert: AlertChange


@dataclass(frozen=True, slots=True)
class AnnouncementChanged:
    """Created, edited, approved, cancelled, played or expired.

    ``public`` is the announcement as residents may read it (the API's JSON), None
    when it is not (yet) public; ``live`` is True while it is scheduled (the MQTT
    mirror keeps it retained only then)."""

    id: str
    public: Mapping[str, Any] | None
    live: bool


@dataclass(frozen=True, slots=True)
class BroadcastLogged:
    broadcast: Broadcast


@dataclass(frozen=True, slots=True)
class PlayoutStateChanged:
    state: PlayoutState


E = TypeVar("E")


@dataclass
class Dispatcher:
    """Handlers by event type; subscribe while wiring, publish from any thread."""

    _handlers: dict[type, list[Callable[[Any], None]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    failures: int = 0

    def subscribe(self, event_type: type[E], handler: Callable[[E], None]) -> None:
        with self._lock:
            # Copy on write: publishers iterate a list nobody mutates.
            self._handlers[event_type] = [*self._handlers.get(event_type, []), handler]

    def publish(self, event: object) -> None:
        for handler in self._handlers.get(type(event), ()):
            try:
                handler(event)
            except Exception:
                self.failures += 1
                log.exception("%s handler %r failed", type(event).__name__, handler)
