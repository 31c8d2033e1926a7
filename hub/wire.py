"""The JSON shapes of the outbound events, shared by the MQTT mirror and the live stream.

One shape per event, so a phone on the live stream, Home Assistant and a script
on MQTT read the same fields.
"""

from __future__ import annotations

from typing import Any

from hub.clock import iso
from hub.events import Broadcast, PlayoutState, StatusChange
from hub.store.alerts import alert_json

__all__ = ["alert_json", "broadcast_json", "playout_json", "status_json"]


def playout_json(state: PlayoutState) -> dict[str, Any]:
    """``village/<site>/playout/state`` and the stream's ``playout`` event."""
    return {
        "state": state.state,
        "announcement_id": state.announcement_id,
        "title": state.title,
        "priority": state.priority,
        "started_at": iso(state.started_at),
        "zones": list(state.zones),
        "queue": list(state.queue),
    }


def broadcast_json(b: Broadcast) -> dict[str, Any]:
    """A line of the playout log as it is logged (the stream's ``broadcast`` event)."""
    return {
        "announcement_id": b.announcement_id,
        "scheduled_for": iso(b.scheduled_for),
        "started_at": iso(b.started_at),
        "ended_at": iso(b.ended_at),
        "status": b.status,
        "zones": list(b.zones),
        "priority": b.priority,
        "detail": b.detail,
    }


def status_json(c: StatusChange) -> dict[str, Any]:
    """A device's health change (the stream's ``device`` event)."""
    return {
        "id": c.device_id,
        "kind": c.kind,
        "status": c.status,
        "previous": c.previous,
        "at": iso(c.at),
        "reason": c.reason,
    }
