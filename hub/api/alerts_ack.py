"""POST /api/alerts/{id}/ack: a technician says "I have seen this alert and I am on it"."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from hub.api.deps import HubDep, Technician
from hub.api.errors import documented
from hub.api.schemas import AlertOut, json_of
from hub.store.alerts import alert_json

router = APIRouter(tags=["devices"])


@router.post(
    "/api/alerts/{alert_id}/ack",
    response_model=None,
    responses={200: json_of(AlertOut, "Acknowledged"), **documented(401, 403, 404, 422)},
)
def ack(hub: HubDep, user: Technician, alert_id: str) -> dict[str, Any]:
    """Acknowledge an alert (``acked_by``, ``acked_at``); idempotent. The live stream hears
    of it through :class:`hub.services.alerts.AlertAcknowledged`."""
    return alert_json(hub.alerts.ack(alert_id, user.username))
