"""ESPHome adapter: ``<node>/status`` and ``<node>/[<sub>/]sensor|binary_sensor/<name>/state``.

ESPHome's MQTT component (esphome.io components/mqtt) publishes under
``topic_prefix`` (default: the node name) a retained birth/will on ``status``
and plain-text states: sensors as a number formatted with accuracy_decimals
(``nan`` when the sensor has no value), binary sensors as ``ON``/``OFF``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

from devices.adapters import _util as u
from devices.events import Availability, DecodeError, Event, Ignored, Reading

# Roots of the other adapters and of Home Assistant: ESPHome's wildcard filters
# (``+/status``, ``+/sensor/+/state``) also match topics there, never claim them.
FOREIGN_ROOTS = frozenset(
    {"homeassistant", "village", "collectd", "tele", "stat", "cmnd", "zigbee2mqtt"}
)
_COMPONENTS = ("sensor", "binary_sensor")


class _Topic(NamedTuple):
    node: str
    component: str | None  # None: the node's status topic
    metric: str


class EsphomeAdapter:
    """Device = the ESPHome node; a sub-device's entities are named ``<sub>.<name>``.

    Without ``root`` any node is recognised and ``a/b/sensor/c/state`` is read
    as node ``a``, sub-device ``b`` (ESPHome's sub-device layout); a
    ``topic_prefix`` containing ``/`` must be given as ``root``.
    """

    name = "esphome"

    def __init__(self, *, root: str | None, kind: str, rename: Mapping[str, str]) -> None:
        node = "+" if root is None else root
        self.filters: tuple[str, ...] = (
            f"{node}/status",
            f"{node}/sensor/+/state",
            f"{node}/binary_sensor/+/state",
            f"{node}/+/sensor/+/state",
            f"{node}/+/binary_sensor/+/state",
        )
        self._root = root
        self._prefix = "" if root is None else root + "/"
        self._kind = kind
        self._rename = dict(rename)

    def _split(self, topic: str) -> _Topic | None:
        if self._root is None:
            node, _, rest = topic.partition("/")
            if not node or node in FOREIGN_ROOTS or node[0] == "$":
                return None
        elif topic.startswith(self._prefix):
            node, rest = self._root, topic[len(self._prefix) :]
        else:
            return None
        parts = rest.split("/")
        n = len(parts)
        if n == 1 and parts[0] == "status":
            return _Topic(node, None, "")
        if n == 3 and parts[2] == "state" and parts[0] in _COMPONENTS and parts[1]:
            return _Topic(node, parts[0], parts[1])
        if n == 4 and parts[3] == "state" and parts[1] in _COMPONENTS and parts[0] and parts[2]:
            return _Topic(node, parts[1], f"{parts[0]}.{parts[2]}")
        return None

    def claims(self, topic: str) -> bool:
        return self._split(topic) is not None

    def parse(self, topic: str, payload: bytes) -> list[Event]:
        t = self._split(topic)
        if t is None:
            raise DecodeError(f"unknown topic shape: {u.shown(topic)}")
        if t.component is None:
            if not payload:
                return [Ignored(self.name, "empty status: a retained message being cleared")]
            device = u.foreign_id(t.node, self._rename)
            return [Availability(self.name, device, self._kind, u.online(payload))]
        device = u.foreign_id(t.node, self._rename)
        s = u.text(payload)
        if not s:
            raise DecodeError("empty payload")
        if t.component == "binary_sensor":
            if s == "ON" or s == "OFF":
                return [Reading(self.name, device, self._kind, {t.metric: 1 if s == "ON" else 0})]
            raise DecodeError(f"binary_sensor state must be ON or OFF, not {s[:40]!r}")
        try:
            v = float(s)
        except ValueError:
            if s != "unknown":
                raise DecodeError(f"sensor state {s[:40]!r} is not a number") from None
            v = math.nan
        if math.isnan(v):
            # The sensor has no value now (ESPHome publishes "nan"): the node is alive,
            # the reading is unknown, so a Reading without metrics (not Ignored).
            return [Reading(self.name, device, self._kind, {})]
        if math.isinf(v):
            raise DecodeError("sensor state is infinite")
        return [Reading(self.name, device, self._kind, {t.metric: v})]
