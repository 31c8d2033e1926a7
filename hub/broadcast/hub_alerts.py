"""Broadcast stage, its alarms: the hub's own alerts (clock not synchronised, a failed
broadcast), written like a device's and published as :class:`AlertChanged`.

An alert the database refuses (a full disk: the alert that says so cannot be written
either) is still published, so the MQTT mirror and the live stream carry it, and is
written with the next alert that can be.

Threads: raised and cleared in the scheduler thread or the playout thread.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import threading
from dataclasses import replace

from hub.clock import Clock
from hub.events import AlertChange, AlertChanged, Dispatcher
from hub.store import Store
from hub.store import alerts as alert_rows

log = logging.getLogger(__name__)

#: The device id the hub's own alerts carry.
HUB = "hub"


class HubAlerts:
    def __init__(self, store: Store, clock: Clock, events: Dispatcher) -> None:
        self.store, self.clock, self.events = store, clock, events
        self._lock = threading.Lock()  # two threads raise and clear
        self._unwritten: list[AlertChange] = []

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

    def open_alert(self, rule: str) -> AlertChange | None:
        """The hub's alert of ``rule`` a previous run left open (its owner adopts it at
        start instead of raising a second one), or None."""
        conn = self.store.connection()
        for a in alert_rows.alerts(conn, state="raised", device_id=HUB, order="newest"):
            if a.rule == rule:
                return alert_rows.get(conn, a.id)
        return None

    def clear(self, raised: AlertChange) -> None:
        self._write(replace(raised, state="cleared", cleared_at=self.clock.now().timestamp()))

    def _write(self, change: AlertChange) -> None:
        with self._lock:
            batch = [*self._unwritten, change]
            try:
                with self.store.transaction() as conn:
                    for c in batch:
                        alert_rows.write(conn, c)
                self._unwritten.clear()
            except (sqlite3.Error, OSError) as e:
                log.error(
                    "alert %s not written (%s): kept until the database takes it", change.rule, e
                )
                self._unwritten = batch[-100:]  # bounded: the newest are what matter
        self.events.publish(AlertChanged(change))
