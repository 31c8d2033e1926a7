"""The node agent: one speaker cluster's amplifier relay and its side of the MQTT contract.

The audio comes by Snapcast (snapclient, run by systemd); the agent learns that a broadcast
is coming from the hub's ``village/{site}/speaker/{id}/cmd`` and not from the stream's
activity: the hub sends ``{"amp": "on", "for_s": ..., "volume": ...}`` a lead-in before the
audio (which reaches the cluster snapserver's buffer later still), and ``{"amp": "off",
"tail_s": ...}`` when the audio has left the speakers. A command is explicit where guessing
from the stream would switch on at any stray sample and could not switch on *before* the
first word. The agent holds the relay on at most ``for_s`` of that command and never longer
than ``max_on_s`` (the :class:`~devices.amplifier.Amplifier`'s own watchdog): a lost "off"
never leaves a hissing amplifier on all night.

MQTT (paho-mqtt 2.x): a will ``offline`` on ``.../status`` (retained), ``online`` there on
each connect, the state (retained) on ``.../state`` every ``state_s`` and on each change;
commands at QoS 1 on a clean session, so a command sent while the node was away is never
played late; a retained command is ignored (one must never switch the relay on at boot).
paho reconnects on its own (1 to 30 s back-off): the node keeps working through a hub or
broker restart. Who may publish the commands is the broker's ACL (deploy/node/README.md).

Threads: paho's network thread runs ``_on_*`` (quick pin writes and a timer, no blocking
work); the relay's timers run in their own daemon threads; ``run()`` publishes the state
in the caller's thread until ``stop()``.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from devices.amplifier import Amplifier
from devices.node.probe import Probe
from devices.parts import TimerFactory, TimerLike, daemon_timer

log = logging.getLogger(__name__)

#: The longest tail a command may ask for.
MAX_TAIL_S = 30.0


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """One node, as deploy/node/install-node.sh writes it to /etc/langso-node/node.toml."""

    id: str
    site: str
    amp_pin: int
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    amp_active_high: bool = True
    #: The hard cap on one switch-on, whatever the commands say.
    max_on_s: float = 1800.0
    #: Tail when a command names none.
    tail_s: float = 2.0
    #: How often the state is published without a change.
    state_s: float = 30.0
    #: snapserver's stream port, to tell snapclient's connection among the host's.
    stream_port: int = 1704
    #: snapclient's --hostID (default: the node's id).
    host_id: str | None = None
    #: ALSA mixer control the hub's volume sets (``amixer sset``); None: Snapcast's only.
    mixer: str | None = None

    def topic(self, leaf: str) -> str:
        return f"village/{self.site}/speaker/{self.id}/{leaf}"


class AmpRelay:
    """The relay as the commands drive it: on at once, off ``tail`` after an "off", off at
    the command's ``for_s`` deadline if no "off" came. A new "on" cancels a pending off."""

    def __init__(
        self,
        amp: Amplifier,
        *,
        timer_factory: TimerFactory = daemon_timer,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.amp = amp
        self._timer_factory, self._on_change = timer_factory, on_change
        self._lock = threading.Lock()
        self._pending: TimerLike | None = None
        self._session = 0

    def on(self, for_s: float) -> None:
        with self._lock:
            self._cancel()
            was = self.amp.is_on
            self.amp.on()
            self._session += 1
            # The command's own deadline; the Amplifier's watchdog (max_on_s) stays the cap.
            self._arm(min(for_s, self.amp.max_on_s), self._session)
        if not was:
            self._on_change()

    def off(self, tail_s: float) -> None:
        with self._lock:
            self._cancel()
            if not self.amp.is_on:
                return
            self._arm(tail_s, self._session)

    def _arm(self, delay: float, session: int) -> None:
        timer = self._timer_factory(delay, lambda: self._fire(session))
        self._pending = timer
        timer.start()

    def _cancel(self) -> None:
        timer, self._pending = self._pending, None
        if timer is not None:
            timer.cancel()

    def _fire(self, session: int) -> None:
        # A timer's thread; a stale timer (an "on" came after it was armed) does nothing.
        with self._lock:
            if session != self._session:
                return
            self._pending = None
            self.amp.off()
        self._on_change()

    def close(self) -> None:
        with self._lock:
            self._cancel()
            self._session += 1
        self.amp.close()


class NodeAgent:
    """See the module's docstring. ``pin_factory`` and ``probe`` for tests and odd boards."""

    def __init__(
        self,
        config: NodeConfig,
        *,
        pin_factory: Any = None,
        probe: Probe | None = None,
        timer_factory: TimerFactory = daemon_timer,
    ) -> None:
        self.config = c = config
        self.probe = probe or Probe(host_id=c.host_id or c.id, stream_port=c.stream_port)
        amp = Amplifier(
            c.amp_pin,
            active_high=c.amp_active_high,
            lead_in_s=0.0,
            tail_s=c.tail_s,
            max_on_s=c.max_on_s,
            pin_factory=pin_factory,
        )
        amp.when_capped = self._changed
        self.relay = AmpRelay(amp, timer_factory=timer_factory, on_change=self._changed)
        self.volume: int | None = None
        #: Retained commands ignored (a broker replaying one at boot).
        self.ignored_retained = 0
        self._stop = threading.Event()
        self._dirty = threading.Event()
        # The client id is the device id: the broker account (deploy/add-device.sh) may
        # connect with that one only.
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=c.id, clean_session=True)
        if c.username:
            self.client.username_pw_set(c.username, c.password)
        if c.ca_file:
            self.client.tls_set(ca_certs=c.ca_file)
        self.client.will_set(c.topic("status"), b"offline", qos=1, retain=True)
        self.client.reconnect_delay_set(1, 30)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message

    # -- the caller's thread ----------------------------------------------------------------
    def start(self) -> None:
        """Connect (in the background: a broker not yet up is retried by paho)."""
        self.client.connect_async(self.config.mqtt_host, self.config.mqtt_port, keepalive=30)
        self.client.loop_start()

    def run(self) -> None:
        """Publish the state until :meth:`stop`: every ``state_s``, and at once on a change."""
        while not self._stop.is_set():
            self._dirty.wait(self.config.state_s)
            self._dirty.clear()
            if not self._stop.is_set():
                self.publish_state()

    def stop(self) -> None:
        """Amplifier off first, then say offline and disconnect. Idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._dirty.set()
        self.relay.close()
        if self.client.is_connected():
            info = self.client.publish(self.config.topic("status"), b"offline", 1, retain=True)
            info.wait_for_publish(2)
        self.client.disconnect()
        self.client.loop_stop()

    def state(self) -> dict[str, Any]:
        p = self.probe
        body: dict[str, Any] = {
            "amp": "on" if self.relay.amp.is_on else "off",
            "snapclient": p.snapclient(),
        }
        for key, value in (
            ("volume_pct", self.volume),
            ("signal_dbm", p.signal_dbm()),
            ("temp_c", p.temp_c()),
            ("uptime_s", p.uptime_s()),
        ):
            if value is not None:
                body[key] = value
        body["ts"] = round(time.time(), 3)
        return body

    def publish_state(self) -> None:
        payload = json.dumps(self.state(), separators=(",", ":")).encode()
        self.client.publish(self.config.topic("state"), payload, qos=1, retain=True)

    # -- paho's network thread --------------------------------------------------------------
    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            log.warning("broker refused the node: %s", reason)
            return
        client.publish(self.config.topic("status"), b"online", qos=1, retain=True)
        client.subscribe(self.config.topic("cmd"), qos=1)
        self._dirty.set()
        log.info("connected to the broker at %s", self.config.mqtt_host)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        if msg.retain:
            self.ignored_retained += 1
            log.warning("ignored a retained command on %s", msg.topic)
            return
        try:
            self.command(json.loads(msg.payload))
        except (ValueError, TypeError) as e:
            log.warning("ignored a command: %s", e)

    def command(self, body: Any) -> None:
        """One command from the hub; ValueError when it is not one."""
        if not isinstance(body, dict):
            raise ValueError("a command is a JSON object")
        volume = body.get("volume")
        if volume is not None:
            if isinstance(volume, bool) or not isinstance(volume, int) or not 0 <= volume <= 100:
                raise ValueError("volume: a whole number 0..100")
            self._set_volume(volume)
        amp = body.get("amp")
        if amp == "on":
            self.relay.on(_seconds(body.get("for_s", self.config.max_on_s), self.config.max_on_s))
        elif amp == "off":
            self.relay.off(_seconds(body.get("tail_s", self.config.tail_s), MAX_TAIL_S))
        elif amp is not None:
            raise ValueError("amp: on or off")
        self._dirty.set()

    def _set_volume(self, volume: int) -> None:
        self.volume = volume
        if self.config.mixer is None:
            return
        try:
            subprocess.run(
                ["amixer", "-q", "sset", self.config.mixer, f"{volume}%"],
                check=True,
                timeout=5,
                capture_output=True,
            )
        except (OSError, subprocess.SubprocessError) as e:
            log.warning("cannot set the mixer %s to %d%%: %s", self.config.mixer, volume, e)

    def _changed(self) -> None:
        self._dirty.set()


def _seconds(value: Any, most: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError("seconds: a number ≥ 0")
    return min(float(value), most)
