"""MQTT mirror: what the hub publishes back to the broker, from the typed events.

``village/<site>/announcements/<id>`` (retained while scheduled, emptied when it
ends), ``playout/state`` (retained) and ``alerts/<id>``. Handlers run in the
publisher's thread (scheduler, playout, ingest writer, a request) and only queue
the message in paho; they never wait for the broker.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hub.events import AlertChanged, AnnouncementChanged, Dispatcher, PlayoutStateChanged
from hub.wire import alert_json, playout_json

#: (topic, payload, retain): the MQTT link's publish at QoS 1.
Publish = Callable[[str, bytes, bool], None]


class MqttMirror:
    def __init__(self, site: str, publish: Publish) -> None:
        self.prefix = f"village/{site}"
        self.publish = publish

    def subscribe(self, events: Dispatcher) -> None:
        events.subscribe(AnnouncementChanged, self.announcement)
        events.subscribe(PlayoutStateChanged, self.playout)
        events.subscribe(AlertChanged, self.alert)

    def announcement(self, ev: AnnouncementChanged) -> None:
        # Retained while scheduled; an empty retained payload clears it when it ends.
        payload = _json(dict(ev.public)) if ev.live and ev.public is not None else b""
        self.publish(f"{self.prefix}/announcements/{ev.id}", payload, True)

    def playout(self, ev: PlayoutStateChanged) -> None:
        self.publish(f"{self.prefix}/playout/state", _json(playout_json(ev.state)), True)

    def alert(self, ev: AlertChanged) -> None:
        self.publish(f"{self.prefix}/alerts/{ev.alert.id}", _json(alert_json(ev.alert)), False)


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()
