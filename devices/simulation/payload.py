"""Simulation output: the MQTT messages of the native contract (topics, JSON bodies, retain)."""

from __future__ import annotations

import json
from typing import NamedTuple

from devices.simulation.village import ButtonAction, SimDevice


class Message(NamedTuple):
    """One MQTT publication: full topic, payload bytes, retain flag."""

    topic: str
    payload: bytes
    retain: bool = False


def _topic(site: str, device: SimDevice, leaf: str) -> str:
    return f"village/{site}/{device.kind}/{device.id}/{leaf}"


def _json(data: dict[str, object]) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def state_message(site: str, device: SimDevice, body: dict[str, object]) -> Message:
    """A device's periodic state (``…/state``, not retained)."""
    return Message(_topic(site, device, "state"), _json(body), False)


def status_message(site: str, device: SimDevice, online: bool) -> Message:
    """The retained status a device publishes (birth) or leaves as its will."""
    return Message(_topic(site, device, "status"), b"online" if online else b"offline", True)


def button_message(
    site: str, device: SimDevice, action: ButtonAction, template: str | None
) -> Message:
    """A button box's press (``…/event``, not retained)."""
    body: dict[str, object] = {"action": action}
    if template is not None:
        body["template"] = template
    return Message(_topic(site, device, "event"), _json(body), False)
