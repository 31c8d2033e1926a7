"""MQTT mirror: what the hub publishes back to the broker, from the typed events.

``village/<site>/announcements/<id>`` (retained while scheduled, emptied when it
ends), ``playout/state`` (retained) and ``alerts/<id>``. Handlers run in the
publisher's thread (scheduler, playout, ingest writer, a request) and only queue
the message in paho; they never wait for the broker.

``playout/state`` is published again each time the link comes up (paho's thread): after
a start (a dead hub's last word may have been "playing"; ``langso gpio off`` in the
unit's ExecStopPost also says "idle") and after the broker lost its retained messages.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from hub.events import (
    AlertChanged,
    AnnouncementChanged,
    BrokerLinkChanged,
    Dispatcher,
    PlayoutState,
    PlayoutStateChanged,
)
from hub.wire import alert_json, playout_json

#: (topic, payload, retain): the MQTT link's publish at QoS 1.
Publish = Callable[[str, bytes, bool], None]


class MqttMirror:
    def __init__(self, site: str, publish: Publish) -> None:
        self.prefix = f"village/{site}"
        self.publish = publish
        # The last playout state, and the lock that keeps a republish from overtaking a
        # newer state on its way to paho's queue.
        self._playout = PlayoutState()
        self._playout_lock = threading.Lock()

    def subscribe(self, events: Dispatcher) -> None:
        events.subscribe(AnnouncementChanged, self.announcement)
        events.subscribe(PlayoutStateChanged, self.playout)
        events.subscribe(AlertChanged, self.alert)
        events.subscribe(BrokerLinkChanged, self.link)

    def announcement(self, ev: AnnouncementChanged) -> None:
        # Retained while scheduled; an empty retained payload clears it when it ends.
        payload = _json(dict(ev.public)) if ev.live and ev.public is not None else b""
        self.publish(f"{self.prefix}/announcements/{ev.id}", payload, True)

    def playout(self, ev: PlayoutStateChanged) -> None:
        with self._playout_lock:
            self._playout = ev.state
            self._publish_playout()

    def link(self, ev: BrokerLinkChanged) -> None:
        if ev.connected:
            with self._playout_lock:
                self._publish_playout()

    def _publish_playout(self) -> None:
        self.publish(f"{self.prefix}/playout/state", _json(playout_json(self._playout)), True)

    def alert(self, ev: AlertChanged) -> None:
        self.publish(f"{self.prefix}/alerts/{ev.alert.id}", _json(alert_json(ev.alert)), False)


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()
