"""Discovery configs through a real Mosquitto: retained for Home Assistant to find when it
starts, and gone once removed."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hub.ingest.discovery import (
    DeviceInfo,
    Message,
    config_topic,
    device_configs,
    device_removals,
    hub_configs,
    node_id,
)
from tests.broker import Broker
from tests.hubtest import InProcessHub, hub_settings, wait_for

pytestmark = pytest.mark.broker


class Snapshot:
    """Everything retained under ``homeassistant/#`` for one node, as a fresh client sees it.

    After its SUBACK the subscriber publishes a marker to a topic it is subscribed to;
    Mosquitto sends a subscription's retained messages before anything published
    after it, so when the marker arrives the snapshot is complete.
    """

    def __init__(self, broker: Broker, node: str) -> None:
        self.node = node
        self.marker = f"homeassistant/langso-test/{uuid.uuid4().hex}"
        self.retained: dict[str, str] = {}
        self.live: list[tuple[str, str]] = []
        self.done = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"ha-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    # paho network thread
    def _on_connect(self, client: paho.Client, *_: Any) -> None:
        client.subscribe("homeassistant/#", qos=1)

    # paho network thread
    def _on_subscribe(self, client: paho.Client, *_: Any) -> None:
        client.publish(self.marker, b"", qos=1)

    # paho network thread
    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        if msg.topic == self.marker:
            self.done.set()
        elif f"/{self.node}/" in msg.topic:
            body = msg.payload.decode("utf-8")
            if msg.retain and not self.done.is_set():
                self.retained[msg.topic] = body
            else:
                self.live.append((msg.topic, body))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def snapshot(broker: Broker, node: str) -> Iterator[Snapshot]:
    s = Snapshot(broker, node)
    try:
        assert s.done.wait(10), "no marker: the subscription never completed"
        yield s
    finally:
        s.close()


def publish_all(broker: Broker, msgs: list[Message]) -> None:
    pub = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"hub-{uuid.uuid4().hex[:8]}")
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    try:
        infos = [pub.publish(m.topic, m.payload, qos=1, retain=m.retain) for m in msgs]
        for info in infos:
            info.wait_for_publish(10)
    finally:
        pub.disconnect()
        pub.loop_stop()


def test_configs_are_retained_and_removals_clear_them(broker: Broker) -> None:
    site = f"t{uuid.uuid4().hex[:8]}"
    node = f"langso_{site}"
    devices = [
        DeviceInfo("ap-nvh", "ap", metrics=("clients", "signal_dbm"), info={"fw": "1.0"}),
        DeviceInfo("ap-xom", "ap", source="collectd", metrics=("cpu_pct",)),
    ]
    configs = hub_configs(site, version="0.1.0")
    for d in devices:
        configs += device_configs(site, d, version="0.1.0")
    publish_all(broker, configs)

    with snapshot(broker, node) as ha:  # Home Assistant starting after the hub
        assert ha.retained == {m.topic: m.payload for m in configs}

    with snapshot(broker, node) as watcher:
        removals = [r for d in devices for r in device_removals(site, d)]
        publish_all(broker, removals)
        wait_for(lambda: len(watcher.live) == len(removals), what="the removals")
        assert sorted(watcher.live) == sorted((m.topic, "") for m in removals)

    with snapshot(broker, node) as later:
        # Only the hub's own entities remain.
        assert later.retained == {m.topic: m.payload for m in hub_configs(site, version="0.1.0")}
    publish_all(broker, [Message(m.topic, "") for m in hub_configs(site)])


def test_the_hub_announces_every_device_it_hears(broker: Broker, tmp_path: Path) -> None:
    # The timer drains what the batches left queued: every 0.1 s here, not 5 s.
    settings = hub_settings(
        broker, tmp_path / "hub", LANGSO_SITE="ha-announce", LANGSO_HEALTH__CHECK_INTERVAL_S="0.1"
    )
    h = InProcessHub(settings)
    pub = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"dev-{uuid.uuid4().hex[:8]}")
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    try:
        site = h.settings.site
        n = 100  # 100 x 3 configs: more than one burst
        for i in range(n):
            body = json.dumps({"clients": i, "signal_dbm": -60})
            pub.publish(f"village/{site}/ap/ap-{i:02d}/state", body, qos=1)
        expected = {
            config_topic(component, site, f"ap-{i:02d}_{entity}"): i
            for i in range(n)
            for component, entity in (
                ("sensor", "clients"),
                ("sensor", "signal_dbm"),
                ("binary_sensor", "connectivity"),
            )
        }

        def complete() -> dict[str, str] | None:
            with snapshot(broker, node_id(site)) as ha:
                return ha.retained if expected.keys() <= ha.retained.keys() else None

        retained = wait_for(complete, 10, "every device's configs retained")
        for topic, i in expected.items():
            if "/sensor/" in topic:
                state = json.loads(retained[topic])["state_topic"]
                assert state == f"village/{site}/ap/ap-{i:02d}/state"
        # A reconnect queues every device again; with no traffic, the hub's timer drains it.
        mirror = h.hub.discovery
        again = [DeviceInfo(f"ap-{i:02d}", "ap", metrics=("clients",)) for i in range(n)]
        h.hub.ingest.call_wait(lambda: mirror.connected(again))
        wait_for(lambda: mirror.pending == 0, 10, "the timer to drain the queue")
    finally:
        pub.loop_stop()
        pub.disconnect()
        h.stop()
