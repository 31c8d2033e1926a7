"""Speaker cluster nodes in the native contract: ``village/{site}/speaker/{id}/state``.

A cluster's node agent (``devices/node``) publishes its state as JSON: ``amp`` (``"on"`` /
``"off"``), ``snapclient`` (``"connected"``, ``"disconnected"``, ``"stopped"``),
``volume_pct``, ``signal_dbm`` (its wifi), ``temp_c``, ``uptime_s``, optional ``ts``. The
words become readings a chart and a threshold can use (``amp_on``, ``snapclient_connected``:
1 or 0) and stay as text in ``info``. Every other native topic (its status and will
included) is the native adapter's: this one only adds the state.
"""

from __future__ import annotations

from datetime import datetime

from devices.adapters import _util as u
from devices.adapters.native import NativeAdapter
from devices.events import DecodeError, Event, Reading

#: The node's numeric fields; any subset may come.
NUMBERS = frozenset({"volume_pct", "signal_dbm", "temp_c", "uptime_s", "link_pct"})
#: The node's words and the reading each becomes.
WORDS: dict[str, tuple[str, dict[str, float]]] = {
    "amp": ("amp_on", {"on": 1.0, "off": 0.0}),
    "snapclient": (
        "snapclient_connected",
        {"connected": 1.0, "disconnected": 0.0, "stopped": 0.0},
    ),
}


def parse_state(device: str, payload: bytes) -> Reading:
    """A speaker node's state as a reading (pure)."""
    obj = u.json_object(payload)
    metrics: dict[str, float] = {}
    info: dict[str, object] = {}
    ts: datetime | None = None
    for key, value in obj.items():
        if key in NUMBERS:
            metrics[key] = u.number(value, key)
        elif key in WORDS:
            metric, known = WORDS[key]
            if not isinstance(value, str) or value not in known:
                raise DecodeError(f"field '{key}' must be one of {', '.join(known)}")
            metrics[metric] = known[value]
            info[key] = value
        elif key == "ts":
            ts = None if value is None else u.timestamp(value)
        else:
            raise DecodeError(f"unknown field {key[:40]!r} in a speaker's state")
    return Reading("native", device, "speaker", metrics, ts, info)


class NativeWithSpeakers(NativeAdapter):
    """The native contract, with the speaker nodes' state (see the module's docstring)."""

    def parse(self, topic: str, payload: bytes) -> list[Event]:
        if topic.startswith(self._prefix):
            parts = topic[self._cut :].split("/")
            if len(parts) == 3 and parts[0] == "speaker" and parts[2] == "state":
                return [parse_state(u.device_id(parts[1], self._rename), payload)]
        return super().parse(topic, payload)
