"""Alerts repository: the ``alerts`` table, and the one JSON shape an alert has.

Device alerts are written by the ingest writer (in its batch transaction), the
hub's own alerts (clock not synchronised, a failed broadcast) by the broadcast
stage; the API, the pages, the live stream and the MQTT mirror read them here.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from hub.clock import iso
from hub.events import AlertChange


def write(conn: sqlite3.Connection, c: AlertChange) -> None:
    """Record a raise or a clear, inside the caller's transaction."""
    if c.state == "raised":
        conn.execute(
            "INSERT INTO alerts(id, device_id, rule, severity, state, message, raised_at)"
            " VALUES (?,?,?,?,?,?,?)",
            (c.id, c.device_id, c.rule, c.severity, c.state, c.message, c.raised_at),
        )
    else:
        conn.execute(
            "UPDATE alerts SET state='cleared', cleared_at=?, message=? WHERE id=?",
            (c.cleared_at, c.message, c.id),
        )


def get(conn: sqlite3.Connection, alert_id: str) -> AlertChange | None:
    row = conn.execute(
        "SELECT id, device_id, rule, severity, state, message, raised_at, cleared_at"
        " FROM alerts WHERE id=?",
        (alert_id,),
    ).fetchone()
    return None if row is None else AlertChange(*row)


def alert_json(c: AlertChange) -> dict[str, Any]:
    """The alert as the API, the live stream and ``village/<site>/alerts/<id>`` carry it."""
    return {
        "id": c.id,
        "device_id": c.device_id,
        "rule": c.rule,
        "severity": c.severity,
        "state": c.state,
        "message": c.message,
        "raised_at": iso(c.raised_at),
        "cleared_at": iso(c.cleared_at) if c.cleared_at else None,
    }
