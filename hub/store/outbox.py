"""Outbox repository: the ``notify_outbox`` table, notifications not yet delivered.

A message is written when the notifier queues it (in the caller's thread, under the
notifier's lock) and deleted once sent, given up or dropped; a restart sends the rest.
It is stored as its webhook JSON: one encoding, not two. Each thread writes through its
own connection (``Store.transaction``).
"""

from __future__ import annotations

import json

from hub.automation.notification import (
    Notification,
    from_webhook_json,
    json_default,
    webhook_json,
)
from hub.store import Store


class Outbox:
    """The undelivered messages on disk, one row per (message, channel)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, n: Notification, channel: str, at: float) -> int:
        # The webhook's JSON holds all of a message (the channel is the row's own).
        body = json.dumps(webhook_json(n), ensure_ascii=False, default=json_default)
        with self.store.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO notify_outbox(channel, notification, queued_at) VALUES (?,?,?)",
                (channel, body, at),
            )
            return int(cur.lastrowid or 0)

    def attempted(self, row: int, attempts: int) -> None:
        with self.store.transaction() as conn:
            conn.execute("UPDATE notify_outbox SET attempts=? WHERE id=?", (attempts, row))

    def remove(self, row: int) -> None:
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM notify_outbox WHERE id=?", (row,))

    def load(self) -> list[tuple[int, str, Notification, int]]:
        """(row, channel, message, attempts so far), oldest first."""
        return [
            (
                int(r["id"]),
                str(r["channel"]),
                from_webhook_json(json.loads(r["notification"]), (r["channel"],)),
                int(r["attempts"]),
            )
            for r in self.store.query(
                "SELECT id, channel, notification, attempts FROM notify_outbox ORDER BY id"
            )
        ]
