"""Adapters: the second step of the flow, an MQTT message (topic, payload bytes) -> typed events.

``hub/ingest/mqtt.py`` subscribes to :attr:`Router.filters` and hands every message to
:meth:`Router.parse`; ``hub/ingest/writer.py`` stores what comes out, and a
:class:`~devices.events.DecodeError` becomes a dead letter with its reason.
One module per wire format; each ``parse`` is pure (no clock, no I/O).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from devices.adapters._util import ID_PATTERN, ID_RULE, shown
from devices.adapters.collectd import CollectdAdapter
from devices.adapters.esphome import EsphomeAdapter
from devices.adapters.native import NativeAdapter
from devices.adapters.speaker import NativeWithSpeakers
from devices.adapters.tasmota import TasmotaAdapter
from devices.adapters.zigbee2mqtt import Zigbee2mqttAdapter
from devices.events import DEVICE_KINDS, DecodeError, Event

__all__ = [
    "ADAPTER_NAMES",
    "Adapter",
    "CollectdAdapter",
    "EsphomeAdapter",
    "NativeAdapter",
    "Router",
    "TasmotaAdapter",
    "Zigbee2mqttAdapter",
    "make_adapter",
    "topic_matches",
]

ADAPTER_NAMES = ("native", "collectd", "tasmota", "esphome", "zigbee2mqtt")


class Adapter(Protocol):
    """One wire format: which topics it needs and owns, and how it decodes them."""

    name: str
    filters: tuple[str, ...]

    def claims(self, topic: str) -> bool:
        """Does this topic belong to this adapter (cheap: prefix and shape only)."""
        ...

    def parse(self, topic: str, payload: bytes) -> list[Event]:
        """Decode one message; pure; raises :class:`~devices.events.DecodeError`."""
        ...


def _check_root(root: str) -> str:
    if not root or "+" in root or "#" in root or "\0" in root or "" in root.split("/"):
        raise ValueError(f"adapter root {root!r} must be topic levels without wildcards")
    return root


def make_adapter(
    name: str,
    *,
    site: str,
    root: str | None = None,
    kind: str | None = None,
    rename: Mapping[str, str] | None = None,
) -> Adapter:
    """Build the adapter called ``name`` from its config; bad config -> ValueError.

    ``root`` overrides the topic root (native ``village/{site}``, collectd
    ``collectd``, Tasmota ``tele``, ESPHome any node, Zigbee2MQTT
    ``zigbee2mqtt``); ``kind`` is the device kind of a foreign source
    (collectd ``ap``, others ``sensor``); ``rename`` maps a source's name to a
    hub device id.
    """
    if name not in ADAPTER_NAMES:
        raise ValueError(f"unknown adapter {name!r}: use one of {', '.join(ADAPTER_NAMES)}")
    if not site or any(c in site for c in "/+#\0"):
        raise ValueError(f"site {site!r} must be one topic level without wildcards")
    if root is not None:
        _check_root(root)
    if kind is not None and kind not in DEVICE_KINDS:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(DEVICE_KINDS)}")
    names = dict(rename or {})
    for source, dev in names.items():
        if ID_PATTERN.fullmatch(dev) is None:
            raise ValueError(f"rename {source!r} -> {dev!r}: a device id has {ID_RULE}")
    if name == "native":
        if kind is not None:
            raise ValueError("native devices carry their kind in the topic: drop 'kind'")
        return NativeWithSpeakers(root=root or f"village/{site}", rename=names)
    if name == "collectd":
        return CollectdAdapter(root=root or "collectd", kind=kind or "ap", rename=names)
    if name == "tasmota":
        return TasmotaAdapter(root=root or "tele", kind=kind or "sensor", rename=names)
    if name == "esphome":
        return EsphomeAdapter(root=root, kind=kind or "sensor", rename=names)
    return Zigbee2mqttAdapter(root=root or "zigbee2mqtt", kind=kind or "sensor", rename=names)


class Router:
    """The configured adapters in order; the first that claims a topic decodes it."""

    def __init__(self, adapters: Sequence[Adapter]) -> None:
        self._adapters = tuple(adapters)
        self._filters = tuple(dict.fromkeys(f for a in self._adapters for f in a.filters))

    @property
    def adapters(self) -> tuple[Adapter, ...]:
        return self._adapters

    @property
    def filters(self) -> tuple[str, ...]:
        """Every adapter's subscription filters, deduplicated, in adapter order."""
        return self._filters

    def parse(self, topic: str, payload: bytes) -> list[Event]:
        for adapter in self._adapters:
            if adapter.claims(topic):
                return adapter.parse(topic, payload)
        raise DecodeError(f"unknown topic shape: {shown(topic)}")


def topic_matches(filter: str, topic: str) -> bool:
    """Does the subscription ``filter`` match ``topic`` (MQTT 3.1.1 §4.7, MQTT 5 §4.7)?

    ``+`` is one level, ``#`` (last) the parent and any levels below, and a
    topic starting with ``$`` is not matched by a filter starting with a
    wildcard (§4.7.2). An invalid filter raises ValueError.
    """
    levels = filter.split("/")
    for i, level in enumerate(levels):
        if ("#" in level and (level != "#" or i != len(levels) - 1)) or (
            "+" in level and level != "+"
        ):
            raise ValueError(f"invalid MQTT topic filter {filter!r}")
    if topic.startswith("$") and levels[0] in ("+", "#"):
        return False
    parts = topic.split("/")
    for i, level in enumerate(levels):
        if level == "#":
            return True
        if i >= len(parts) or (level != "+" and level != parts[i]):
            return False
    return len(parts) == len(levels)
