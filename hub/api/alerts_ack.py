"""POST /api/alerts/{id}/ack: a technician says "I have seen this alert and I am on it"."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request

from hub.api.deps import HubDep, Technician
from hub.api.devices import _alert
from hub.app import Hub
from hub.bus import Bus

router = APIRouter(tags=["devices"])


def ack_alert(hub: Hub, alert_id: str, actor: str, bus: Bus | None = None) -> dict[str, Any]:
    """Record who acknowledged the alert and when (once), audited; the alert as JSON.

    Acknowledging again changes nothing: the first technician's name stays.
    """
    now = hub.clock.now().timestamp()
    with hub.store.transaction() as conn:
        row = conn.execute("SELECT acked_by FROM alerts WHERE id=?", (alert_id,)).fetchone()
        if row is None:
            raise KeyError(alert_id)
        fresh = row["acked_by"] is None
        if fresh:
            conn.execute(
                "UPDATE alerts SET acked_by=?, acked_at=? WHERE id=?", (actor, now, alert_id)
            )
            hub.store.audit(conn, ts=now, actor=actor, action="alert.ack", target=alert_id)
    out = hub.store.one("SELECT * FROM alerts WHERE id=?", (alert_id,))
    assert out is not None
    body = _alert(out)
    if fresh and bus is not None:
        bus.publish("alert", body, audience="staff")
    return body


@router.post("/api/alerts/{alert_id}/ack")
def ack(request: Request, hub: HubDep, user: Technician, alert_id: str) -> dict[str, Any]:
    """Acknowledge an alert (``acked_by``, ``acked_at``); idempotent."""
    try:
        return ack_alert(hub, alert_id, user.username, getattr(request.app.state, "bus", None))
    except KeyError:
        raise HTTPException(404, f"no alert {alert_id!r}") from None
