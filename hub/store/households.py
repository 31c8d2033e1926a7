"""Households repository: the ``households`` table, the opt-in list of phones that get an
emergency announcement by SMS, for :mod:`hub.services.households` (and the SMS gateway,
which reads the phones of a broadcast's zones)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from hub.clock import iso


def insert(
    conn: sqlite3.Connection, *, name: str, phone: str, zone: str, now: float, actor: str
) -> int:
    cur = conn.execute(
        "INSERT INTO households(name, phone, zone, opted_in_at, added_by) VALUES (?,?,?,?,?)",
        (name, phone, zone, now, actor),
    )
    return int(cur.lastrowid or 0)


def get(conn: sqlite3.Connection, hid: int) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute("SELECT * FROM households WHERE id=?", (hid,)).fetchone()
    return row


def by_phone(conn: sqlite3.Connection, phone: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM households WHERE phone=?", (phone,)
    ).fetchone()
    return row


def delete(conn: sqlite3.Connection, hid: int) -> None:
    conn.execute("DELETE FROM households WHERE id=?", (hid,))


def count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM households").fetchone()[0])


def listed(conn: sqlite3.Connection, *, zone: str | None, limit: int) -> list[sqlite3.Row]:
    """By zone, then name."""
    sql, args = "SELECT * FROM households", list[Any]()
    if zone:
        sql += " WHERE zone=?"
        args.append(zone)
    return conn.execute(sql + " ORDER BY zone, name, id LIMIT ?", [*args, limit]).fetchall()


def per_zone(conn: sqlite3.Connection) -> dict[str, int]:
    rows = conn.execute("SELECT zone, count(*) FROM households GROUP BY zone").fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def phones_in(conn: sqlite3.Connection, zones: Iterable[str] | None) -> list[str]:
    """The phones of ``zones`` (None: every zone), in the order they opted in."""
    if zones is None:
        rows = conn.execute("SELECT phone FROM households ORDER BY opted_in_at, id").fetchall()
    else:
        wanted = sorted(set(zones))
        marks = ",".join("?" * len(wanted))
        rows = conn.execute(
            f"SELECT phone FROM households WHERE zone IN ({marks}) ORDER BY opted_in_at, id",
            wanted,
        ).fetchall()
    return [str(r[0]) for r in rows]


def household_json(row: sqlite3.Row) -> dict[str, Any]:
    """A household as the API returns it and the page lists it."""
    return {
        "id": row["id"],
        "name": row["name"],
        "phone": row["phone"],
        "zone": row["zone"],
        "opted_in_at": iso(round(row["opted_in_at"])),
        "added_by": row["added_by"],
    }
