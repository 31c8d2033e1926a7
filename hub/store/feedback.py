"""Feedback repository: the ``feedback`` table, its salt in ``meta``, and the one JSON shape a
resident's report has, for :mod:`hub.services.feedback`."""

from __future__ import annotations

import secrets
import sqlite3
from typing import Any

from hub.clock import iso

SALT_KEY = "feedback_salt"


def salt(conn: sqlite3.Connection) -> str:
    """The installation's salt for senders' addresses, made at the first call ever."""
    # Two first reports at once: the first insert wins, both read the same salt.
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING",
        (SALT_KEY, secrets.token_hex(16)),
    )
    row = conn.execute("SELECT value FROM meta WHERE key=?", (SALT_KEY,)).fetchone()
    return str(row[0])


def insert(
    conn: sqlite3.Connection,
    *,
    now: float,
    name: str | None,
    contact: str | None,
    category: str | None,
    message: str,
    sender: str,
    lang: str | None,
) -> int:
    cur = conn.execute(
        "INSERT INTO feedback(received_at, name, contact, category, message, status,"
        " ip_hash, lang) VALUES (?,?,?,?,?,?,?,?)",
        (now, name, contact, category, message, "new", sender, lang),
    )
    return int(cur.lastrowid or 0)


def get(conn: sqlite3.Connection, fid: int) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute("SELECT * FROM feedback WHERE id=?", (fid,)).fetchone()
    return row


def recent(conn: sqlite3.Connection, *, status: str | None, limit: int) -> list[sqlite3.Row]:
    """Newest first; only those with ``status`` when given."""
    sql, args = "SELECT * FROM feedback", list[Any]()
    if status:
        sql += " WHERE status=?"
        args.append(status)
    return conn.execute(
        sql + " ORDER BY received_at DESC, id DESC LIMIT ?", [*args, limit]
    ).fetchall()


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    rows = conn.execute("SELECT status, count(*) AS n FROM feedback GROUP BY status").fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def set_status(conn: sqlite3.Connection, fid: int, status: str, *, actor: str, now: float) -> None:
    conn.execute(
        "UPDATE feedback SET status=?, updated_at=?, updated_by=? WHERE id=?",
        (status, now, actor, fid),
    )


def feedback_json(row: sqlite3.Row) -> dict[str, Any]:
    """A report as the API returns it and the head's inbox shows it."""
    return {
        "id": row["id"],
        # Whole seconds: a resident's report needs no microseconds.
        "received_at": iso(round(row["received_at"])),
        "name": row["name"],
        "contact": row["contact"],
        "category": row["category"],
        "message": row["message"],
        "status": row["status"],
        # Tells reports of one sender apart without telling who (or where) they are.
        "sender": row["ip_hash"][:12],
        "updated_at": None if row["updated_at"] is None else iso(round(row["updated_at"])),
        "updated_by": row["updated_by"],
    }
