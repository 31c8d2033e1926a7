"""Typed events: what an adapter makes of one MQTT message, before ingest stores it.

Every adapter in ``devices/adapters`` turns ``(topic, payload)`` into a list of
these frozen dataclasses, or raises :class:`DecodeError`; nothing else crosses
from the wire into the hub.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Literal

#: The kinds of device the hub knows; foreign sources are mapped to one of these.
DeviceKind = Literal["ap", "sensor", "button", "speaker", "gateway"]
DEVICE_KINDS: tuple[str, ...] = ("ap", "sensor", "button", "speaker", "gateway")


class DecodeError(ValueError):
    """The message cannot be decoded; the reason goes to the dead letters as it is."""


def _frozen(mapping: Mapping[str, object] | None) -> Mapping[str, object]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class Reading:
    """Numeric readings of one device at one instant (AP counters, water level, battery…).

    ``ts`` is the device's own timestamp when it sent one (UTC), else ``None``
    and ingest stamps the arrival time. ``info`` carries non-numeric facts
    (ssid, firmware) that are shown but not charted.
    """

    source: str
    device_id: str
    kind: str
    metrics: Mapping[str, float]
    ts: datetime | None = None
    info: Mapping[str, object] = field(default_factory=lambda: _frozen(None))

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", MappingProxyType(dict(self.metrics)))
        object.__setattr__(self, "info", _frozen(self.info))


@dataclass(frozen=True, slots=True)
class Availability:
    """A device said it is online or offline (status topic, LWT, birth message).

    ``expected`` marks an offline that the device announced on purpose (a
    Tasmota node going to deep sleep): not a fault, no alert.
    """

    source: str
    device_id: str
    kind: str
    online: bool
    ts: datetime | None = None
    expected: bool = False


@dataclass(frozen=True, slots=True)
class ButtonPress:
    """A button box was pressed: ``emergency``, ``stop`` or ``announce`` (with a template)."""

    source: str
    device_id: str
    action: Literal["emergency", "stop", "announce"]
    template: str | None = None
    ts: datetime | None = None
    kind: str = "button"


@dataclass(frozen=True, slots=True)
class AnnounceCommand:
    """An authorised device asked for an announcement (``cmd/announce``); body as the API's."""

    source: str
    body: Mapping[str, object]
    device_id: str = "cmd"
    kind: str = "gateway"
    ts: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "body", _frozen(self.body))


@dataclass(frozen=True, slots=True)
class Ignored:
    """A well-formed message the hub deliberately does not act on (with why).

    Examples: Tasmota's empty ``cmnd/<t>/POWER`` query to itself, the hub's own
    mirrored topics, Home Assistant's birth message. Not a dead letter.
    """

    source: str
    reason: str


Event = Reading | Availability | ButtonPress | AnnounceCommand | Ignored
