"""Alerts for the API and the pages: lists, and a technician's acknowledgement. Runs in
the request threads; an acknowledgement is published as :class:`AlertAcknowledged`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hub.clock import Clock
from hub.errors import NotFound
from hub.events import Dispatcher
from hub.store import Store
from hub.store import alerts as repo
from hub.store.alerts import Alert

#: ``open`` and ``raised`` are the same alerts (the API takes both words).
StateFilter = Literal["open", "raised", "cleared", "all"]
_STATE: dict[StateFilter, Literal["raised", "cleared"] | None] = {
    "open": "raised",
    "raised": "raised",
    "cleared": "cleared",
    "all": None,
}
#: A page lists at most this many open alerts.
OPEN_SHOWN = 500


@dataclass(frozen=True, slots=True)
class AlertAcknowledged:
    """A technician acknowledged an alert, for the first time (a request thread, after the
    commit); the live stream tells the staff, who see the name appear."""

    alert: Alert


class Alerts:
    def __init__(self, store: Store, clock: Clock, events: Dispatcher) -> None:
        self._store = store
        self._clock = clock
        self._events = events

    def query(
        self, state: StateFilter = "all", device_id: str | None = None, limit: int | None = 200
    ) -> list[Alert]:
        """Alerts in ``state``, of one device or all, the newest raised first."""
        return repo.alerts(
            self._store.connection(), state=_STATE[state], device_id=device_id, limit=limit
        )

    def open(self, device_id: str | None = None) -> list[Alert]:
        """Open alerts as a technician should read them: critical first, then the newest."""
        return repo.alerts(
            self._store.connection(),
            state="raised",
            device_id=device_id,
            order="urgent",
            limit=OPEN_SHOWN,
        )

    def cleared(self, device_id: str | None = None, limit: int = 30) -> list[Alert]:
        """Cleared alerts, the most recently cleared first."""
        return repo.alerts(
            self._store.connection(),
            state="cleared",
            device_id=device_id,
            order="last_cleared",
            limit=limit,
        )

    def open_count(self) -> int:
        return repo.open_count(self._store.connection())

    def ack(self, alert_id: str, user: str) -> Alert:
        """Record who acknowledged the alert and when, audited; the alert as it is now.

        Acknowledging again changes nothing: the first technician's name stays.
        """
        now = self._clock.now().timestamp()
        with self._store.transaction() as conn:
            fresh = repo.ack(conn, alert_id, user, now)
            if fresh is None:
                raise NotFound(f"no alert {alert_id!r}")
            if fresh:
                self._store.audit(conn, ts=now, actor=user, action="alert.ack", target=alert_id)
            acked = repo.alert(conn, alert_id)
        assert acked is not None  # read in the transaction that found it
        if fresh:
            self._events.publish(AlertAcknowledged(acked))
        return acked
