"""Village simulator: the start of the flow, simulated APs, sensors and button boxes on MQTT.

What ``langso simulate`` runs, and what the integration tests and demos publish
through. :class:`Simulator` runs a :class:`~devices.simulation.VillageModel` (the pure
village, devices/simulation/) against a broker. It gives every simulated device its
own paho-mqtt connection, so each has its own Last Will (``offline``, retained) and
birth (``online``, retained) on ``village/{site}/{kind}/{id}/status``, drops a
connection uncleanly when the model says an AP went silent (the broker then publishes
the will), and reconnects it afterwards. :func:`run_simulator` is the command's entry.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from devices.simulation import ButtonAction, SimDevice, VillageModel

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Link:
    """One device's MQTT connection. ``client`` is replaced by a fresh one on reconnect."""

    device: SimDevice
    client: mqtt.Client | None = None
    online: threading.Event = field(default_factory=threading.Event)  # birth queued
    lost: bool = False  # the connection ended unasked (set in the network thread)
    dropped: bool = False  # we cut it on purpose (a dropout)


class Simulator:
    """Runs a :class:`VillageModel` against a broker, one paho client per device.

    ``clock`` gives the ``now`` passed to the model (epoch seconds); ``sleep`` waits
    between ticks (default: an interruptible wait on the ``stop_event`` of
    :meth:`run`). Network waits when stopping are bounded in real time.

    Threads: :meth:`run` runs in the caller's thread and does all publishing and
    connection changes; each client's callbacks run in that client's paho network
    thread (``loop_start``) and only set flags. :meth:`force_dropout` and
    :meth:`press` may be called from any thread.
    """

    def __init__(
        self,
        host: str,
        port: int,
        model: VillageModel,
        *,
        interval: float = 10.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] | None = None,
        username: str | None = None,
        password: str | None = None,
        keepalive: int = 30,
        client_id_prefix: str = "langso-sim",
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be > 0 seconds")
        self.host = host
        self.port = port
        self.model = model
        self.interval = float(interval)
        self._clock = clock
        self._sleep = sleep
        self._username = username
        self._password = password
        self._keepalive = keepalive
        self._prefix = client_id_prefix
        self._lock = threading.Lock()  # the model and the links' transitions
        self._links = {d.id: _Link(d) for d in model.devices}
        self._stopping = False

    @property
    def site(self) -> str:
        return self.model.site

    def online_ids(self) -> frozenset[str]:
        """Devices whose connection is up and whose birth message was sent."""
        return frozenset(i for i, link in self._links.items() if link.online.is_set())

    def force_dropout(self, device_id: str, seconds: float) -> None:
        """Cut a device's connection uncleanly at the next tick, for ``seconds``."""
        with self._lock:
            self.model.force_dropout(device_id, self._clock(), seconds)

    def restore(self, device_id: str) -> None:
        """End a dropout: the device reconnects at the next tick."""
        self.force_dropout(device_id, 0.0)

    def press(self, button_id: str, action: ButtonAction, template: str | None = None) -> bool:
        """Publish a button box's event now; ``False`` if the box is not connected."""
        message = self.model.button_event(button_id, action, template)
        link = self._links[button_id]
        client = link.client
        if client is None or not link.online.is_set():
            return False
        client.publish(message.topic, message.payload, qos=1, retain=message.retain)
        return True

    # Running ---------------------------------------------------------------------------

    def run(self, stop_event: threading.Event, duration: float | None = None) -> None:
        """Connect every device, publish every ``interval`` until stopped, then disconnect.

        Returns when ``stop_event`` is set or after ``duration`` seconds (by the clock).
        On the way out each connected device publishes ``offline`` (retained) and
        disconnects cleanly.
        """
        start = self._clock()
        deadline = None if duration is None else start + duration
        self._stopping = False
        log.info(
            "simulating %d devices of %s on %s:%d",
            len(self._links),
            self.site,
            self.host,
            self.port,
        )
        try:
            for link in self._links.values():
                self._connect(link)
            self._await_online(stop_event, min(self.interval, 5.0))
            next_tick = self._clock()
            while not stop_event.is_set():
                now = self._clock()
                if deadline is not None and now >= deadline:
                    break
                if now >= next_tick:
                    self._tick(now)
                    next_tick += self.interval
                    if next_tick <= now:  # fell behind (a slow broker): skip, don't burst
                        next_tick = now + self.interval
                wake = next_tick if deadline is None else min(next_tick, deadline)
                self._wait(stop_event, max(0.0, wake - self._clock()))
        finally:
            self._shutdown()

    def _wait(self, stop_event: threading.Event, seconds: float) -> None:
        if self._sleep is None:
            stop_event.wait(seconds)
        else:
            self._sleep(seconds)

    def _await_online(self, stop_event: threading.Event, timeout: float) -> None:
        # Let the first tick find the devices connected; a slow or absent broker only
        # delays them (paho keeps retrying), it does not stop the run.
        deadline = time.monotonic() + timeout
        for link in self._links.values():
            if stop_event.is_set() or not link.online.wait(max(0.0, deadline - time.monotonic())):
                break

    def _tick(self, now: float) -> None:
        with self._lock:
            messages = self.model.step(now)
            silent = self.model.silent
            for link in self._links.values():
                if link.device.id in silent:
                    if not link.dropped:
                        self._drop(link)
                elif link.dropped or link.lost:
                    self._reconnect(link)
        for message in messages:
            link = self._links[message.topic.split("/")[3]]
            client = link.client
            if client is not None and link.online.is_set():
                client.publish(message.topic, message.payload, qos=1, retain=message.retain)

    def _new_client(self, link: _Link) -> mqtt.Client:
        device = link.device
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"{self._prefix}-{self.site}-{device.id}",
            clean_session=True,
            userdata=link,
            protocol=mqtt.MQTTv311,
            # The runner decides when a device comes back (after its dropout), so paho
            # must not reconnect on its own; it still retries the first connection.
            reconnect_on_failure=False,
        )
        if self._username is not None:
            client.username_pw_set(self._username, self._password)
        will = self.model.status_message(device, online=False)
        client.will_set(will.topic, will.payload, qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        return client

    def _connect(self, link: _Link) -> None:
        # A fresh client per connection: paho's loop_start() on a reused client leaks
        # the previous socket pair, and a new one starts from a clean state.
        client = self._new_client(link)
        link.client, link.lost, link.dropped = client, False, False
        link.online.clear()
        client.connect_async(self.host, self.port, keepalive=self._keepalive)
        client.loop_start()

    def _drop(self, link: _Link) -> None:
        """Cut the connection without DISCONNECT, as a power cut would: the will fires."""
        client, link.client = link.client, None
        link.dropped, link.lost = True, False
        link.online.clear()
        if client is None:
            return
        sock = client.socket()
        if isinstance(sock, socket.socket):
            # FIN without an MQTT DISCONNECT: Mosquitto sees an unexpected close and
            # publishes the will. The network thread reads EOF and (no auto-reconnect)
            # ends; closing the socket itself is left to paho.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        client.loop_stop()
        log.info("%s dropped out (connection cut)", link.device.id)

    def _reconnect(self, link: _Link) -> None:
        old = link.client
        if old is not None:
            old.loop_stop()  # its thread has ended or is ending
        self._connect(link)

    def _on_connect(
        self,
        client: mqtt.Client,
        link: _Link,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        # Paho network thread of this client. A refusal is not a connection.
        if link.client is not client:
            return
        if reason_code.is_failure:
            log.warning("%s: the broker refused the connection: %s", link.device.id, reason_code)
            return
        birth = self.model.status_message(link.device, online=True)
        client.publish(birth.topic, birth.payload, qos=1, retain=True)
        link.online.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        link: _Link,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        # Paho network thread of this client; the run loop reconnects at its next tick.
        if link.client is not client or self._stopping:
            return
        link.online.clear()
        link.lost = True
        log.info("%s lost its connection: %s", link.device.id, reason_code)

    def _shutdown(self, timeout: float = 1.0) -> None:
        """Publish ``offline`` for each connected device, disconnect all, join threads."""
        self._stopping = True
        with self._lock:
            links = list(self._links.values())
        pending: list[mqtt.MQTTMessageInfo] = []
        for link in links:
            if link.client is not None and link.online.is_set():
                status = self.model.status_message(link.device, online=False)
                pending.append(
                    link.client.publish(status.topic, status.payload, qos=1, retain=True)
                )
        deadline = time.monotonic() + timeout  # real time: it bounds a network wait
        for info in pending:
            # Not sent in time (or not queued): the retained status stays as it was.
            with contextlib.suppress(ValueError, RuntimeError):
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
        for link in links:
            if link.client is not None:
                link.client.disconnect()
        for link in links:
            client, link.client = link.client, None
            link.online.clear()
            if client is not None:
                client.loop_stop()
        log.info("simulator stopped")


def run_simulator(
    host: str,
    port: int,
    site: str,
    aps: int,
    sensors: int,
    interval: float,
    seed: int | None,
    stop_event: threading.Event,
    *,
    buttons: int = 0,
    time_scale: float = 1.0,
    username: str | None = None,
    password: str | None = None,
    duration: float | None = None,
) -> None:
    """What ``langso simulate`` calls: build the village and run it until ``stop_event``."""
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    log.info("simulator seed %d (pass it again to replay the same village)", seed)
    model = VillageModel(
        seed, aps, sensors, time.time(), site=site, n_buttons=buttons, time_scale=time_scale
    )
    simulator = Simulator(
        host, port, model, interval=interval, username=username, password=password
    )
    simulator.run(stop_event, duration)
