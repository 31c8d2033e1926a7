"""Clock repository: what the store knows about the clock, for :mod:`hub.services.clock`.

The phone mark (``meta.clock_phone_set``: the boot id, the time set, who set it) and the
newest event received, a floor a right clock is never behind. Reads go through the
calling thread's connection (the scheduler's, an API worker's, the writer's).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from hub.store import readings as raw

PHONE_KEY = "clock_phone_set"


def phone_mark(conn: sqlite3.Connection) -> dict[str, Any] | None:
    """The last setting from a phone, or None (never, or unreadable)."""
    row = conn.execute("SELECT value FROM meta WHERE key=?", (PHONE_KEY,)).fetchone()
    if row is None:
        return None
    try:
        mark = json.loads(row[0])
    except ValueError:
        return None
    return mark if isinstance(mark, dict) else None


def save_phone_mark(conn: sqlite3.Connection, mark: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES(?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
        (PHONE_KEY, json.dumps(mark, ensure_ascii=False)),
    )


def newest_event(conn: sqlite3.Connection) -> float | None:
    """When the newest event or reading was received (the newest event by id, the last
    slot of the readings: no scan)."""
    row = conn.execute("SELECT received_at FROM events ORDER BY id DESC LIMIT 1").fetchone()
    times = [float(row[0])] if row is not None else []
    reading = raw.newest_received(conn)
    if reading is not None:
        times.append(reading)
    return max(times, default=None)
