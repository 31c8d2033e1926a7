"""Outbox repository: the ``notify_outbox`` table, notifications not yet delivered, and the
``sms_log`` table, every text message handed to the modem and what became of it.

A message is written when the notifier queues it (in the caller's thread, under the
notifier's lock) and deleted once sent, given up or dropped; a restart sends the rest.
It is stored as its webhook JSON: one encoding, not two. Each thread writes through its
own connection (``Store.transaction``).
"""

from __future__ import annotations

import json
from typing import Any

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


class SmsLog:
    """The ``sms_log`` table: every SMS handed to gammu-smsd (or held back), one row per
    phone and message, with what became of it: ``queued`` (in the modem's outbox), ``sent``,
    ``delivered`` / ``undelivered`` (the network's report), ``failed``, or ``limited`` /
    ``duplicate`` (held back by the hub). Written by the notifier's threads."""

    #: What still counts against the limits and the dedupe: everything handed to the modem.
    HANDED = ("queued", "sent", "delivered", "undelivered")

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(
        self,
        *,
        at: float,
        channel: str,
        phone: str,
        incident: str,
        digest: str,
        text: str,
        parts: int,
        files: list[str],
        status: str,
        detail: str | None = None,
    ) -> int:
        with self.store.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO sms_log(at, channel, phone, incident, digest, text, parts, files,"
                " status, detail, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    at,
                    channel,
                    phone,
                    incident,
                    digest,
                    text,
                    parts,
                    json.dumps(files),
                    status,
                    detail,
                    at,
                ),
            )
            return int(cur.lastrowid or 0)

    def set_status(self, row: int, status: str, *, at: float, detail: str | None = None) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE sms_log SET status=?, detail=coalesce(?, detail), updated_at=? WHERE id=?",
                (status, detail, at, row),
            )

    def sent_since(self, since: float, phone: str | None = None) -> int:
        """Messages handed to the modem since ``since`` (to ``phone``, or all)."""
        marks = ",".join("?" * len(self.HANDED))
        sql = f"SELECT count(*) FROM sms_log WHERE at >= ? AND status IN ({marks})"
        args: list[object] = [since, *self.HANDED]
        if phone is not None:
            sql += " AND phone = ?"
            args.append(phone)
        row = self.store.one(sql, args)
        return 0 if row is None else int(row[0])

    def has(self, incident: str, phone: str) -> bool:
        """``phone`` has a row for ``incident`` that is not a failure (a retry skips it)."""
        row = self.store.one(
            "SELECT 1 FROM sms_log WHERE incident=? AND phone=? AND status != 'failed' LIMIT 1",
            (incident, phone),
        )
        return row is not None

    def duplicate(self, phone: str, digest: str, since: float) -> bool:
        """The same text went to ``phone`` since ``since``."""
        marks = ",".join("?" * len(self.HANDED))
        return (
            self.store.one(
                f"SELECT 1 FROM sms_log WHERE phone=? AND digest=? AND at >= ?"
                f" AND status IN ({marks}) LIMIT 1",
                (phone, digest, since, *self.HANDED),
            )
            is not None
        )

    def in_state(self, status: str, limit: int = 500) -> list[dict[str, Any]]:
        """Rows of one status, oldest first (the gateway follows ``queued`` and ``sent``)."""
        rows = self.store.query(
            "SELECT * FROM sms_log WHERE status=? ORDER BY at, id LIMIT ?", (status, limit)
        )
        return [self._json(r) for r in rows]

    def awaiting_report(self, phone: str, before: float) -> dict[str, Any] | None:
        """The oldest message to ``phone`` sent up to ``before`` with no report yet."""
        row = self.store.one(
            "SELECT * FROM sms_log WHERE phone=? AND status='sent' AND at <= ?"
            " ORDER BY at, id LIMIT 1",
            (phone, before),
        )
        return None if row is None else self._json(row)

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first: the log the households page and ``/api/households/sms`` show."""
        rows = self.store.query("SELECT * FROM sms_log ORDER BY at DESC, id DESC LIMIT ?", (limit,))
        return [self._json(r) for r in rows]

    @staticmethod
    def _json(r: Any) -> dict[str, Any]:
        return {
            "id": int(r["id"]),
            "at": float(r["at"]),
            "channel": str(r["channel"]),
            "phone": str(r["phone"]),
            "incident": str(r["incident"]),
            "text": str(r["text"]),
            "parts": int(r["parts"]),
            "files": list(json.loads(r["files"])),
            "status": str(r["status"]),
            "detail": r["detail"],
            "updated_at": float(r["updated_at"]),
        }
