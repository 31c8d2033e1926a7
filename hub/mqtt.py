"""MQTT link: the only module that knows paho-mqtt; messages leave it as InboundMessage.

Threads: paho's network loop runs in its own thread (``loop_start``); every
``_on_*`` callback below runs there. They must never raise into paho and never
block: a message is handed to ``on_message`` (ingest's queue) and acknowledged
later, by the ingest writer thread, once the batch holding it is committed.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hub.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One PUBLISH as received; ``mid`` and ``qos`` are what the acknowledgement needs."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    dup: bool
    mid: int
    received_at: float  # UTC epoch seconds, from the hub's clock


class MqttLink:
    """A persistent-session client with manual acknowledgement and reconnect back-off."""

    def __init__(
        self,
        settings: Settings,
        *,
        filters: Sequence[str],
        on_message: Callable[[InboundMessage], None],
        now: Callable[[], float] = time.time,
        filters_known: Callable[[str], bool] | None = None,
        on_state: Callable[[bool], None] | None = None,
    ) -> None:
        self.settings = settings
        self.filters = tuple(filters)
        self._on_message_cb = on_message
        self._now = now
        # Asked on a resumed session: did the broker already hold these subscriptions?
        # Subscribing again would make it resend every retained message.
        self._filters_known = filters_known or (lambda _digest: False)
        self._on_state = on_state
        self.connected = False
        self.errors = 0  # exceptions caught in callbacks (they never reach paho)
        self.last_error: str | None = None
        self._closing = threading.Event()
        m = settings.mqtt
        self.status_topic = f"village/{settings.site}/hub/status"
        v5 = m.protocol == "5"
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        # Unacknowledged messages we may hold: enough for a full batch in flight.
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        if m.username:
            self.client.username_pw_set(m.username, m.password)
        if m.tls:
            self.client.tls_set(
                ca_certs=str(m.ca_file) if m.ca_file else None,
                certfile=str(m.cert_file) if m.cert_file else None,
                keyfile=str(m.key_file) if m.key_file else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        self.client.will_set(self.status_topic, b"offline", qos=1, retain=True)
        self.client.reconnect_delay_set(
            min_delay=max(1, round(m.reconnect_min_s)), max_delay=max(1, round(m.reconnect_max_s))
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    @property
    def filters_digest(self) -> str:
        return hashlib.sha256("\n".join(sorted(self.filters)).encode()).hexdigest()[:16]

    # -- lifecycle (called from the main thread) ---------------------------------
    def start(self) -> None:
        m = self.settings.mqtt
        props = None
        if m.protocol == "5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            # Keep the session (and its queued QoS 1 messages) for a day while away.
            props.SessionExpiryInterval = 86_400
        self.client.connect_async(
            m.host,
            m.port,
            keepalive=m.keepalive_s,
            clean_start=False if m.protocol == "5" else paho.MQTT_CLEAN_START_FIRST_ONLY,
            properties=props,
        )
        self.client.loop_start()

    def stop(self) -> None:
        """Say ``offline`` ourselves (a clean disconnect does not fire the will), then leave."""
        self._closing.set()
        if self.connected:
            info = self.client.publish(self.status_topic, b"offline", qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=2.0)
        self.client.disconnect()
        self.client.loop_stop()

    @property
    def thread_alive(self) -> bool:
        thread = getattr(self.client, "_thread", None)
        return bool(thread is not None and thread.is_alive())

    # -- used by other threads ------------------------------------------------------
    def ack(self, mid: int, qos: int) -> None:
        """Acknowledge after commit (ingest writer thread). A stale mid after a
        reconnect is harmless: the broker re-sends under the same mid and we ack again."""
        if qos > 0:
            self.client.ack(mid, qos)

    def publish(
        self, topic: str, payload: bytes | str, *, qos: int = 1, retain: bool = False
    ) -> bool:
        """Queue a publish (thread-safe). False when it could not be queued (offline)."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        return info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    # -- paho callbacks: paho network thread ------------------------------------------
    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        try:
            if reason.is_failure:
                # A refused connection is not a connection: stay disconnected and let
                # paho retry with back-off; say why (bad password, not authorised…).
                self._set_state(False)
                self.last_error = f"broker refused the connection: {reason}"
                log.error("MQTT %s", self.last_error)
                return
            session_present = bool(getattr(flags, "session_present", False))
            if not (session_present and self._filters_known(self.filters_digest)):
                client.subscribe([(f, 1) for f in self.filters])
            client.publish(self.status_topic, b"online", qos=1, retain=True)
            self._set_state(True)
            log.info(
                "MQTT connected to %s:%s (session %s)",
                self.settings.mqtt.host,
                self.settings.mqtt.port,
                "resumed" if session_present else "new",
            )
        except Exception as e:  # never into paho: it would kill the network thread
            self._callback_failed("on_connect", e)

    def _on_subscribe(
        self, client: paho.Client, userdata: Any, mid: int, reasons: Any, props: Any
    ) -> None:
        try:
            refused = [r for r in reasons if r.is_failure]
            if refused:
                self.last_error = f"broker refused {len(refused)} subscription(s) (ACL?)"
                log.error("MQTT %s", self.last_error)
        except Exception as e:
            self._callback_failed("on_subscribe", e)

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        try:
            self._set_state(False)
            if not self._closing.is_set():
                log.warning("MQTT disconnected (%s); reconnecting with back-off", reason)
        except Exception as e:
            self._callback_failed("on_disconnect", e)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        try:
            self._on_message_cb(
                InboundMessage(
                    topic=msg._topic.decode("utf-8", "replace"),
                    payload=bytes(msg.payload),
                    qos=msg.qos,
                    retain=bool(msg.retain),
                    dup=bool(msg.dup),
                    mid=msg.mid,
                    received_at=self._now(),
                )
            )
        except Exception as e:
            # The message stays unacknowledged: the broker re-sends it after a reconnect.
            self._callback_failed("on_message", e)

    def _set_state(self, connected: bool) -> None:
        if connected != self.connected:
            self.connected = connected
            if self._on_state:
                self._on_state(connected)

    def _callback_failed(self, where: str, e: Exception) -> None:
        self.errors += 1
        self.last_error = f"{where}: {type(e).__name__}: {e}"
        log.exception("MQTT callback %s failed", where)
