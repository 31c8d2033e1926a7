"""Alerts repository: the ``alerts`` table, and the one JSON shape an alert has.

Device alerts are written by the ingest writer (in its batch transaction), the
hub's own alerts (clock not synchronised, a failed broadcast) by the broadcast
stage, acknowledgements by a request thread (hub.services.alerts); the API, the
pages, the live stream and the MQTT mirror read them here.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any, Literal

from hub.clock import iso
from hub.events import AlertChange

#: The orders alerts are listed in: the newest raised first; critical ones first, then
#: the newest (what a technician should look at); the most recently cleared first.
Order = Literal["newest", "urgent", "last_cleared"]
_ORDER_BY: dict[Order, str] = {
    "newest": "raised_at DESC",
    "urgent": "severity='critical' DESC, raised_at DESC",
    "last_cleared": "cleared_at DESC",
}


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert as stored: the incident, and who acknowledged it (once) and when."""

    id: str
    device_id: str
    rule: str
    severity: str
    state: Literal["raised", "cleared"]
    message: str
    raised_at: float
    cleared_at: float | None
    acked_by: str | None
    acked_at: float | None


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


def alerts(
    conn: sqlite3.Connection,
    *,
    state: Literal["raised", "cleared"] | None = None,
    device_id: str | None = None,
    order: Order = "newest",
    limit: int | None = None,
) -> list[Alert]:
    """Alerts in ``state`` (None: any), of one device (None: any), in ``order``."""
    sql, args = "SELECT * FROM alerts WHERE 1=1", list[object]()
    if state is not None:
        sql += " AND state=?"
        args.append(state)
    if device_id:
        sql += " AND device_id=?"
        args.append(device_id)
    sql += " ORDER BY " + _ORDER_BY[order]
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    return [_alert(r) for r in conn.execute(sql, args)]


def alert(conn: sqlite3.Connection, alert_id: str) -> Alert | None:
    row = conn.execute("SELECT * FROM alerts WHERE id=?", (alert_id,)).fetchone()
    return None if row is None else _alert(row)


def open_count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM alerts WHERE state='raised'").fetchone()[0])


def ack(conn: sqlite3.Connection, alert_id: str, user: str, at: float) -> bool | None:
    """Record that ``user`` acknowledged the alert at ``at``, unless someone already did
    (the first technician's name stays); inside the caller's transaction. True when
    recorded now, False when acknowledged before, None when there is no such alert."""
    row = conn.execute("SELECT acked_by FROM alerts WHERE id=?", (alert_id,)).fetchone()
    if row is None:
        return None
    if row[0] is not None:
        return False
    conn.execute("UPDATE alerts SET acked_by=?, acked_at=? WHERE id=?", (user, at, alert_id))
    return True


def _alert(r: sqlite3.Row) -> Alert:
    return Alert(
        r["id"],
        r["device_id"],
        r["rule"],
        r["severity"],
        r["state"],
        r["message"],
        r["raised_at"],
        r["cleared_at"],
        r["acked_by"],
        r["acked_at"],
    )


def alert_json(c: AlertChange | Alert) -> dict[str, Any]:
    """The alert as the API, the live stream and ``village/<site>/alerts/<id>`` carry it;
    a stored alert (the API's, an acknowledgement's) also says who acknowledged it."""
    out: dict[str, Any] = {
        "id": c.id,
        "device_id": c.device_id,
        "rule": c.rule,
        "severity": c.severity,
        "state": c.state,
        "message": c.message,
        "raised_at": iso(c.raised_at),
        "cleared_at": iso(c.cleared_at) if c.cleared_at else None,
    }
    if isinstance(c, Alert):
        out["acked_by"] = c.acked_by
        out["acked_at"] = iso(c.acked_at)
    return out
