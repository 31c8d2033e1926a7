"""`langso gpio off`: the safe state while the hub is not running (systemd's ExecStopPost).

On a Pi a GPIO output keeps its level when the process that drove it dies: after a
crash or a kill on air the amplifier and the zone relays would stay on, hissing all night.
This drives the amplifier, the zone relays, the on-air lamp and the switched outputs
(siren) to their off level (``*_active_high`` respected), through the pin factory the hub
uses (gpiozero's default, ``GPIOZERO_PIN_FACTORY``), and prints what it did. Then, over a
short MQTT connection with the hub's own broker account, it says ``idle`` on the retained
``playout/state`` (a dead hub's last word may be "playing"), and with ``--hub-failed``
(the unit systemd starts when the hub's restarts gave up) ``failed`` on ``hub/status``.

The GPIO part never waits for the broker: it runs first, and the MQTT part gives up
after ``MQTT_TIMEOUT_S``. Refused while the hub answers on its HTTP port: the hub owns
the pins and the topics then (stopping it switches everything off itself).

The broker keeps the hub's session under its account (``use_username_as_clientid``):
this connection resumes it without a clean start (a clean one would drop the QoS 1
messages queued for the hub) and acknowledges nothing it is sent, so the broker hands
them to the hub when it is back.
"""

from __future__ import annotations

import argparse
import json
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

from hub.settings import Settings

#: The whole MQTT part (connect, publish, acknowledgement) gives up after this.
MQTT_TIMEOUT_S = 2.0

Say = Callable[[str], None]


def add_gpio_parser(
    sub: Any,
    with_config: Callable[[argparse.ArgumentParser], argparse.ArgumentParser],
    func: Callable[[argparse.Namespace], int],
) -> None:
    """``langso gpio off [--hub-failed]`` on the command line's subparsers."""
    gpio = sub.add_parser("gpio", help="the PA box's outputs while the hub is stopped")
    off = with_config(
        gpio.add_subparsers(dest="gpio_cmd", required=True).add_parser(
            "off", help="amplifier, zones, lamp and outputs off; playout/state idle"
        )
    )
    off.add_argument(
        "--hub-failed", action="store_true", help="also say failed on the retained hub/status"
    )
    off.set_defaults(func=func)


def wiring(settings: Settings) -> dict[str, tuple[int, bool]]:
    """Every output of the PA box and the rules: what → (BCM pin, active_high)."""
    g = settings.gpio
    out = {"amplifier": (g.amplifier_pin, g.amplifier_active_high)}
    out.update({f"zone {z}": (pin, g.zones_active_high) for z, pin in g.zones.items()})
    if g.on_air_led_pin is not None:
        out["on-air lamp"] = (g.on_air_led_pin, True)
    out.update({f"output {o}": (pin, True) for o, pin in g.outputs.items()})
    return out


def hub_answers(settings: Settings, timeout: float = 0.5) -> bool:
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(
        settings.http.host, settings.http.host
    )
    try:
        with socket.create_connection((host, settings.http.port), timeout=timeout):
            return True
    except OSError:
        return False


def gpio_off(
    settings: Settings, *, hub_failed: bool = False, pin_factory: Any = None, say: Say = print
) -> int:
    """Outputs off, then the retained topics; 0 when every output is off, 1 otherwise."""
    if hub_answers(settings):
        say(
            f"the hub is running (port {settings.http.port}): it owns the pins; stop it "
            "(sudo systemctl stop langso-hub), which switches everything off"
        )
        return 1
    failed = 0
    if not settings.gpio.enabled:
        say("gpio.enabled = false: no outputs to switch off")
    else:
        from devices.outputs import switch_off

        for r in switch_off(wiring(settings), pin_factory=pin_factory):
            if r.error is not None:
                failed += 1
                say(f"{r.what}: GPIO{r.pin} NOT switched off: {r.error}")
            else:
                level = "high" if r.level else "low"
                how = "active high" if r.active_high else "active low"
                say(f"{r.what}: GPIO{r.pin} off ({level}, {how})")
    say(publish_safe_state(settings, hub_failed=hub_failed))
    return 1 if failed else 0


def publish_safe_state(settings: Settings, *, hub_failed: bool) -> str:
    """Retained ``playout/state`` idle (and ``hub/status`` failed); what happened, in words."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    from hub.events import PlayoutState
    from hub.wire import playout_json

    m = settings.mqtt
    prefix = f"village/{settings.site}"
    messages = [(f"{prefix}/playout/state", json.dumps(playout_json(PlayoutState())).encode())]
    if hub_failed:
        messages.append((f"{prefix}/hub/status", b"failed"))
    # The hub's client id and a resumed session (see the module's docstring); 3.1.1 so
    # that the session outlives this connection whatever protocol the hub speaks.
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=settings.client_id,
        protocol=paho.MQTTv311,
        clean_session=False,
        manual_ack=True,
    )
    client.connect_timeout = MQTT_TIMEOUT_S
    if m.username:
        client.username_pw_set(m.username, m.password)
    if m.tls:
        client.tls_set(
            ca_certs=str(m.ca_file) if m.ca_file else None,
            certfile=str(m.cert_file) if m.cert_file else None,
            keyfile=str(m.key_file) if m.key_file else None,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    deadline = time.monotonic() + MQTT_TIMEOUT_S
    where = f"{m.host}:{m.port}"
    try:
        client.connect(m.host, m.port, keepalive=10)
    except (OSError, ValueError) as e:
        return f"broker {where}: not reached ({e}); retained playout/state not updated"
    client.loop_start()
    try:
        infos = [client.publish(t, p, qos=1, retain=True) for t, p in messages]
        for info in infos:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            info.wait_for_publish(left)
        sent = [t for (t, _), info in zip(messages, infos, strict=True) if info.is_published()]
    except (RuntimeError, ValueError) as e:
        sent, why = [], f" ({e})"
    else:
        why = ""
    finally:
        client.disconnect()
        client.loop_stop()
    if len(sent) < len(messages):
        return f"broker {where}: no acknowledgement in {MQTT_TIMEOUT_S:.0f} s{why}"
    return "broker: " + ", ".join(
        f"{t.removeprefix(prefix + '/')} = {'failed' if t.endswith('status') else 'idle'}"
        for t in sent
    )
