"""Bus: live updates for the web page, from any thread onto the asyncio loop.

Publishers are the ingest writer thread (device status, alerts), the playout
thread and request handlers; subscribers are the Server-Sent Events streams on
the loop. ``publish`` never blocks and never raises: it hands the event to the
loop with ``call_soon_threadsafe`` and each subscriber has a bounded queue that
drops its oldest event when a slow phone falls behind. The app's lifespan binds
the loop before the hub's services start, so nothing they publish is lost.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import threading
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from hub.events import (
    AlertChanged,
    AnnouncementChanged,
    BroadcastLogged,
    DeviceStatusChanged,
    Dispatcher,
    PlayoutStateChanged,
)
from hub.services.alerts import AlertAcknowledged
from hub.wire import alert_json, broadcast_json, playout_json, status_json

log = logging.getLogger(__name__)

Audience = Literal["public", "staff"]
#: Residents see only public events; technicians and admins see everything.
PUBLIC: frozenset[Audience] = frozenset({"public"})
STAFF: frozenset[Audience] = frozenset({"public", "staff"})


@dataclass(frozen=True, slots=True)
class BusEvent:
    id: int
    kind: str
    data: dict[str, Any]
    audience: Audience


@dataclass(eq=False)
class Subscription:
    """One listener's bounded queue; an async iterator of :class:`BusEvent`.

    Use it as a context manager (``with bus.subscribe(...) as sub``) so that it is
    removed from the bus when the stream ends, however it ends.
    """

    bus: Bus
    audiences: frozenset[Audience]
    queue: asyncio.Queue[BusEvent]
    #: What it missed since the mark it gave; None if that cannot be told (reload).
    backlog: list[BusEvent] | None = field(default_factory=list)
    dropped: int = 0
    _closed: bool = field(default=False, repr=False)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> BusEvent:
        if self._closed:
            raise StopAsyncIteration
        return await self.queue.get()

    def close(self) -> None:
        self._closed = True
        self.bus._unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- loop thread ---------------------------------------------------------------------
    def _offer(self, event: BusEvent) -> None:
        if event.audience not in self.audiences:
            return
        if self.queue.full():
            # A phone on a weak link is behind: the newest state matters more than history.
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)


class Bus:
    """Events numbered ``<epoch>-<n>``: ``n`` counts up, ``epoch`` is new at each start, so
    a browser that reconnects (``Last-Event-ID``) gets what it missed from a short
    history, or is told to reload when the hub restarted in between."""

    def __init__(self, *, queue_size: int = 256, history: int = 512) -> None:
        self.queue_size = queue_size
        self.epoch = secrets.token_hex(4)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subs: set[Subscription] = set()  # touched on the loop thread only
        self._history: deque[BusEvent] = deque(maxlen=history)  # loop thread only
        self._ids = itertools.count(1)
        # Guards _loop and _ids across publisher threads; an id is taken and its delivery
        # scheduled under it, so events reach the loop in the order of their ids.
        self._lock = threading.Lock()
        self.dropped = 0  # events published while no loop was known or it was closed
        self.last_id = 0  # of the last event delivered on the loop

    @property
    def mark(self) -> str:
        """Where the stream stands now: what a page rendered now has seen."""
        return f"{self.epoch}-{self.last_id}"

    # -- any thread ----------------------------------------------------------------------
    def publish(self, kind: str, data: dict[str, Any], *, audience: Audience) -> None:
        with self._lock:
            loop = self._loop
            if loop is None or loop.is_closed():
                self.dropped += 1
                return
            event = BusEvent(next(self._ids), kind, data, audience)
            try:
                loop.call_soon_threadsafe(self._deliver, event)
            except RuntimeError:  # the loop closed between the check and the call
                self.dropped += 1

    # -- loop thread ---------------------------------------------------------------------
    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver onto this loop (the server's); done in the app's lifespan."""
        with self._lock:
            if self._loop is not loop:
                self._loop = loop
                self._subs.clear()  # subscriptions of an old loop can never be served

    def subscribe(
        self, audiences: Collection[Audience], *, since: str | None = None
    ) -> Subscription:
        """A new subscription; its ``backlog`` holds the events after ``since`` (a mark or
        an event id) that it may see, or is None when they cannot be told (another epoch,
        or too long ago)."""
        self.bind(asyncio.get_running_loop())
        sub = Subscription(self, frozenset(audiences), asyncio.Queue(self.queue_size))
        # No await between the backlog and the registration: nothing slips between them.
        sub.backlog = self._since(since, sub.audiences)
        self._subs.add(sub)
        return sub

    def _since(self, mark: str | None, audiences: frozenset[Audience]) -> list[BusEvent] | None:
        if not mark:
            return []
        epoch, _, n = mark.partition("-")
        if epoch != self.epoch or not n.isdigit():
            return None
        after = int(n)
        if after >= self.last_id:
            return []
        oldest = self._history[0].id if self._history else self.last_id + 1
        if after < oldest - 1:
            return None  # some of what was missed has left the history
        return [e for e in self._history if e.id > after and e.audience in audiences]

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def _unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def _deliver(self, event: BusEvent) -> None:
        self._history.append(event)
        self.last_id = event.id
        for sub in list(self._subs):
            sub._offer(event)


def attach(bus: Bus, events: Dispatcher) -> None:
    """Feed the bus from the hub's events: announcements, playout state and the as-run log
    are public; device status changes and alerts (the hub's own too) are for staff.

    Handlers run in the publisher's thread; ``publish`` only schedules work on the loop.
    """

    def announcement(ev: AnnouncementChanged) -> None:
        if ev.public is not None:
            bus.publish("announcement", dict(ev.public), audience="public")

    events.subscribe(AnnouncementChanged, announcement)
    events.subscribe(
        PlayoutStateChanged,
        lambda ev: bus.publish("playout", playout_json(ev.state), audience="public"),
    )
    events.subscribe(
        BroadcastLogged,
        lambda ev: bus.publish("broadcast", broadcast_json(ev.broadcast), audience="public"),
    )
    events.subscribe(
        DeviceStatusChanged,
        lambda ev: bus.publish("device", status_json(ev.change), audience="staff"),
    )
    events.subscribe(
        AlertChanged, lambda ev: bus.publish("alert", alert_json(ev.alert), audience="staff")
    )
    events.subscribe(
        AlertAcknowledged,
        lambda ev: bus.publish("alert", alert_json(ev.alert), audience="staff"),
    )
