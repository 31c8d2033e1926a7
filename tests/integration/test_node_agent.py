"""The speaker cluster's node agent on a real broker, its relay on gpiozero's MockFactory:
the relay's whole pin history for an on/off with a tail, the command's own deadline, the
hard cap, a retained command ignored; its status, will and state on MQTT."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator

import paho.mqtt.client as paho
import pytest
from gpiozero.pins.mock import MockFactory
from paho.mqtt.enums import CallbackAPIVersion

from devices.node.agent import NodeAgent, NodeConfig
from tests.broker import Broker
from tests.hubtest import wait_for

PIN = 17


class Hub:
    """What the hub does on the wire: commands out, the node's topics in."""

    def __init__(self, broker: Broker, site: str) -> None:
        self.seen: dict[str, list[bytes]] = {}
        self._lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"hub-{site}")
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(f"village/{site}/speaker/#", qos=1)
        self.client.loop_start()

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self.seen.setdefault(msg.topic.rsplit("/", 1)[1], []).append(bytes(msg.payload))

    def last(self, leaf: str) -> bytes | None:
        with self._lock:
            got = self.seen.get(leaf)
            return got[-1] if got else None

    def send(self, topic: str, body: dict[str, object], *, retain: bool = False) -> None:
        self.client.publish(topic, json.dumps(body), qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def node(broker: Broker, request: pytest.FixtureRequest) -> Iterator[tuple[NodeAgent, Hub]]:
    site = f"node-{request.node.name[-12:].strip('_').lower()}-{os.getpid()}"
    hub = Hub(broker, site)
    pins = MockFactory()
    agent = NodeAgent(
        NodeConfig(
            id="cum-tay",
            site=site,
            amp_pin=PIN,
            mqtt_host=broker.host,
            mqtt_port=broker.port,
            max_on_s=1.0,
            state_s=0.2,
        ),
        pin_factory=pins,
    )
    agent.start()
    runner = threading.Thread(target=agent.run, daemon=True)
    runner.start()
    wait_for(lambda: hub.last("status") == b"online", 5, "the node's status online")
    yield agent, hub
    agent.stop()
    runner.join(5)
    hub.close()


def history(agent: NodeAgent) -> list[bool]:
    pin = agent.relay.amp._device.pin  # gpiozero's MockPin
    return [s.state for s in pin.states]


def test_on_then_off_after_the_tail(node: tuple[NodeAgent, Hub]) -> None:
    agent, hub = node
    cmd = agent.config.topic("cmd")
    hub.send(cmd, {"amp": "on", "for_s": 30, "volume": 80})
    wait_for(lambda: agent.relay.amp.is_on, 5, "the relay on")
    wait_for(lambda: json.loads(hub.last("state") or b"{}").get("amp") == "on", 5, "state on")
    state = json.loads(hub.last("state") or b"{}")
    assert state["volume_pct"] == 80 and state["snapclient"] == "stopped"
    hub.send(cmd, {"amp": "off", "tail_s": 0.3})
    # The tail: still on just after the "off", then off.
    assert agent.relay.amp.is_on
    wait_for(lambda: not agent.relay.amp.is_on, 5, "the relay off after the tail")
    assert history(agent) == [False, True, False]


def test_the_commands_deadline_and_the_hard_cap(node: tuple[NodeAgent, Hub]) -> None:
    agent, hub = node
    cmd = agent.config.topic("cmd")
    # No "off" ever comes: the command's own deadline switches it off.
    hub.send(cmd, {"amp": "on", "for_s": 0.2})
    wait_for(lambda: history(agent) == [False, True, False], 5, "off at the deadline")
    # A deadline beyond the node's cap (max_on_s = 1 s): the cap wins.
    hub.send(cmd, {"amp": "on", "for_s": 600})
    wait_for(lambda: agent.relay.amp.is_on, 5, "on again")
    wait_for(lambda: history(agent) == [False, True, False, True, False], 5, "capped")


def test_boot_ignores_a_retained_command_and_the_will_says_offline(broker: Broker) -> None:
    site = f"node-will-{os.getpid()}"
    hub = Hub(broker, site)
    config = NodeConfig(id="cum-dong", site=site, amp_pin=PIN, mqtt_port=broker.port)
    # A retained "on" (someone's mistake) waits on the broker: the node boots into it.
    hub.send(config.topic("cmd"), {"amp": "on", "for_s": 30}, retain=True)
    agent = NodeAgent(config, pin_factory=MockFactory())
    agent.start()
    try:
        wait_for(lambda: hub.last("status") == b"online", 5, "online")
        wait_for(lambda: agent.ignored_retained == 1, 5, "the retained command, ignored")
        assert history(agent) == [False]
        hub.client.publish(config.topic("cmd"), b"", qos=1, retain=True).wait_for_publish(5)
        # The network goes away without a goodbye: the broker publishes the will.
        sock = agent.client.socket()
        assert sock is not None
        agent.client.loop_stop()
        sock.close()
        wait_for(lambda: hub.last("status") == b"offline", 60, "the will")
    finally:
        agent.relay.close()
        hub.close()
