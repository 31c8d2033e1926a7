"""Broadcast stage, its alarms: the hub's own alerts (clock not synchronised, a failed
broadcast), written like a device's and published as :class:`AlertChanged`.

Threads: raised and cleared in the scheduler thread or the playout thread.
"""

from __future__ import annotations

import secrets
from dataclasses import replace

from hub.clock import Clock
from hub.events import AlertChange, AlertChanged, Dispatcher
from hub.store import Store
from hub.store import alerts as alert_rows

#: The device id the hub's own alerts carry.
HUB = "hub"


class HubAlerts:
    def __init__(self, store: Store, clock: Clock, events: Dispatcher) -> None:
        self.store, self.clock, self.events = store, clock, events

    def raise_(self, rule: str, severity: str, message: str) -> AlertChange:
        change = AlertChange(
            secrets.token_hex(6),
            HUB,
            rule,
            severity,
            "raised",
            message,
            self.clock.now().timestamp(),
        )
        self._write(change)
        return change

    def clear(self, raised: AlertChange) -> None:
        self._write(replace(raised, state="cleared", cleared_at=self.clock.now().timestamp()))

    def _write(self, change: AlertChange) -> None:
        with self.store.transaction() as conn:
            alert_rows.write(conn, change)
        self.events.publish(AlertChanged(change))
