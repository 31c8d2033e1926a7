"""`langso gpio off` (hub/cli_gpio.py), the safe state while the hub is dead: every output
to its off level (gpiozero's MockFactory, the whole pin history), the retained
playout/state said idle on a real broker, refused while the hub answers."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from gpiozero import DigitalOutputDevice
from gpiozero.pins.mock import MockFactory
from paho.mqtt.enums import CallbackAPIVersion

from hub.cli_gpio import gpio_off
from tests.broker import Broker, free_port
from tests.hubtest import hub_settings

pytestmark = pytest.mark.broker


def retained(broker: Broker, topic: str) -> bytes | None:
    """The retained message on ``topic`` as a new subscriber gets it (None: none)."""
    got: list[bytes] = []
    done = threading.Event()
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{free_port()}")
    c.on_connect = lambda cl, *_: cl.subscribe(topic, 1)
    c.on_subscribe = lambda *_: threading.Timer(0.5, done.set).start()

    def on_message(_c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        if msg.retain:
            got.append(bytes(msg.payload))
            done.set()

    c.on_message = on_message
    c.connect(broker.host, broker.port)
    c.loop_start()
    try:
        assert done.wait(10), "no answer from the broker"
    finally:
        c.disconnect()
        c.loop_stop()
    return got[-1] if got else None


def publish_retained(broker: Broker, topic: str, payload: bytes) -> None:
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{free_port()}")
    c.connect(broker.host, broker.port)
    c.loop_start()
    c.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)
    c.disconnect()
    c.loop_stop()


def test_every_output_goes_to_its_off_level_and_playout_state_says_idle(
    broker: Broker, tmp_path: Path
) -> None:
    settings = hub_settings(
        broker,
        tmp_path / "hub",
        LANGSO_GPIO__AMPLIFIER_ACTIVE_HIGH="false",  # a relay board that switches on low
        LANGSO_GPIO__ZONES='{"xom-dong": 27, "xom-tay": 22}',
        LANGSO_GPIO__OUTPUTS='{"siren": 5}',
    )
    site = settings.site
    # What a hub killed on air left behind.
    playing = {"state": "playing", "announcement_id": "a1", "zones": ["all"]}
    publish_retained(broker, f"village/{site}/playout/state", json.dumps(playing).encode())
    pins = MockFactory()
    said: list[str] = []
    rc = gpio_off(settings, hub_failed=True, pin_factory=pins, say=said.append)
    assert rc == 0, said
    assert said == [
        "amplifier: GPIO17 off (high, active low)",
        "zone xom-dong: GPIO27 off (low, active high)",
        "zone xom-tay: GPIO22 off (low, active high)",
        "on-air lamp: GPIO23 off (low, active high)",
        "output siren: GPIO5 off (low, active high)",
        "broker: playout/state = idle, hub/status = failed",
    ]
    # The whole history of each pin: the active-low amplifier was driven high (off) and
    # nothing ever went on.
    assert [s.state for s in pins.pin(17).states] == [False, True]
    for pin in (27, 22, 23, 5):
        assert all(not s.state for s in pins.pin(pin).states), pin
    state = retained(broker, f"village/{site}/playout/state")
    assert state is not None and json.loads(state)["state"] == "idle"
    assert retained(broker, f"village/{site}/hub/status") == b"failed"


def test_harmless_without_gpio_and_refused_while_the_hub_answers(
    broker: Broker, tmp_path: Path
) -> None:
    settings = hub_settings(broker, tmp_path / "hub", LANGSO_GPIO__ENABLED="false")
    said: list[str] = []
    assert gpio_off(settings, say=said.append) == 0
    assert said == [
        "gpio.enabled = false: no outputs to switch off",
        "broker: playout/state = idle",
    ]

    # Something listens on the hub's port: the hub owns the pins and the topics.
    with socket.create_server(("127.0.0.1", settings.http.port)):
        said.clear()
        assert gpio_off(settings, pin_factory=MockFactory(), say=said.append) == 1
    assert "the hub is running" in said[0] and len(said) == 1


def test_a_pin_that_cannot_be_opened_does_not_keep_the_others_on(
    broker: Broker, tmp_path: Path
) -> None:
    # No broker where the settings point: the GPIO part never waits for one.
    dead_port = free_port()
    settings = hub_settings(broker, tmp_path / "hub", LANGSO_MQTT__PORT=str(dead_port))
    pins = MockFactory()
    # Someone else holds GPIO27 (zone xom-dong in the default wiring).
    holder = DigitalOutputDevice(27, pin_factory=pins)
    try:
        said: list[str] = []
        assert gpio_off(settings, pin_factory=pins, say=said.append) == 1
    finally:
        holder.close()
    assert said[0] == "amplifier: GPIO17 off (low, active high)"
    assert said[1].startswith("zone xom-dong: GPIO27 NOT switched off: GPIOPinInUse")
    assert said[2] == "zone xom-tay: GPIO22 off (low, active high)"
    assert said[-1].startswith(f"broker 127.0.0.1:{dead_port}: not reached")
