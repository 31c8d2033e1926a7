"""MQTT link: the only module that knows paho-mqtt; messages leave it as InboundMessage.

Threads: paho's network loop runs in its own thread (``loop_start``); every
``_on_*`` callback below runs there. They must never raise into paho and never
block: messages are handed to ``on_messages`` (ingest's queue) and acknowledged
later, by the ingest writer thread, once the batch holding them is committed.

Speed. Stock paho reads one packet per ``select`` with three ``recv`` calls and
builds an ``MQTTMessage`` for each; acknowledging costs a queued packet, a wake-up
and a ``send`` per message. At a few thousand messages per second that was most
of the hub's CPU. :class:`BurstClient` reads up to 64 KiB per ``recv``, cuts the
bytes into packets itself (:func:`split_packets`), hands MQTT 3.1.1 PUBLISH
packets over a list at a time and gives every other packet to paho's own
handlers; :meth:`MqttLink.ack_many` writes a batch's PUBACKs as one packet. It
relies on paho's internals (``_sock_recv``, ``_in_packet``, ``_packet_read``,
``_packet_queue``…), so pyproject pins paho-mqtt to the releases it is tested on
(:data:`BURST_TESTED`); :func:`burst_supported` checks the release and the
internals, and outside them the link falls back to stock paho with a warning.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import ssl
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hub.settings import Settings

log = logging.getLogger(__name__)

#: Bytes asked of the socket per ``recv`` (about 300 messages of 200 bytes).
RECV_BYTES = 65_536
#: ``recv`` calls per network-loop turn, so that writes and pings still get their turn.
RECVS_PER_TURN = 16
_PUBLISH = 0x30
_PUBACK = 0x40

#: paho-mqtt release series (major, minor) the burst reader is tested on; pyproject's pin
#: ("paho-mqtt>=2.2,<2.3") says the same. Widen both together, after running
#: tests/integration/test_mqtt_link.py on the new release.
BURST_TESTED = frozenset({(2, 2)})
#: The private members of paho's client that :class:`BurstClient` uses.
_PAHO_INTERNALS = (
    "_sock",
    "_sock_recv",
    "_in_packet",
    "_packet_read",
    "_packet_queue",
    "_loop_rc_handle",
    "_msgtime_mutex",
    "_last_bytes_received",
    "_protocol",
)


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


class ProtocolError(ValueError):
    """Bytes from the broker that are no MQTT: the connection is dropped and re-made."""


#: A packet that is not fast-tracked: its first byte and its body, for paho's handlers.
OtherPacket = tuple[int, bytes]


def split_packets(
    buf: bytearray, received_at: float, *, publishes: bool = True
) -> tuple[list[InboundMessage | OtherPacket], int]:
    """The complete packets at the start of ``buf``, in order, and how many bytes they
    took (a partial packet at the end waits for more bytes).

    With ``publishes``, QoS 0/1 PUBLISH packets (MQTT 3.1 or 3.1.1 layout) become
    :class:`InboundMessage`; every other packet, and every packet without it, comes back
    as ``(first byte, body)``. Raises :class:`ProtocolError` on bytes that are not MQTT.
    """
    out: list[InboundMessage | OtherPacket] = []
    n = len(buf)
    pos = 0
    while pos + 1 < n:
        b0 = buf[pos]
        # Remaining length: 1 to 4 bytes, 7 bits each, least significant first.
        i = pos + 1
        length = 0
        shift = 0
        while True:
            if i >= n:
                return out, pos
            b = buf[i]
            i += 1
            length |= (b & 0x7F) << shift
            if not b & 0x80:
                break
            shift += 7
            if shift > 21:
                raise ProtocolError("remaining length longer than 4 bytes")
        end = i + length
        if end > n:
            break
        if publishes and b0 & 0xF0 == _PUBLISH and not b0 & 0x04:  # QoS 0 or 1
            qos = (b0 >> 1) & 0x03
            if length < 2:
                raise ProtocolError("PUBLISH without a topic")
            t_end = i + 2 + (buf[i] << 8 | buf[i + 1])
            p = t_end + 2 if qos else t_end
            if p > end:
                raise ProtocolError("PUBLISH shorter than its topic and packet id")
            out.append(
                InboundMessage(
                    buf[i + 2 : t_end].decode("utf-8", "replace"),
                    bytes(buf[p:end]),
                    qos,
                    bool(b0 & 0x01),
                    bool(b0 & 0x08),
                    buf[t_end] << 8 | buf[t_end + 1] if qos else 0,
                    received_at,
                )
            )
        else:
            if b0 >> 4 == 0:
                raise ProtocolError("packet type 0 is reserved")
            out.append((b0, bytes(buf[i:end])))
        pos = end
    return out, pos


def paho_tested(version: str) -> bool:
    """Whether a paho-mqtt version string is of a series in :data:`BURST_TESTED`."""
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:  # "3", "2.x", a local build
        return False
    return (major, minor) in BURST_TESTED


def burst_supported(client: paho.Client) -> bool:
    """Whether :class:`BurstClient` may drive this paho: a tested release that has the
    internals it uses. Says why in the log when not."""
    try:
        version = metadata.version("paho-mqtt")
    except metadata.PackageNotFoundError:
        version = "unknown"
    if not paho_tested(version):
        tested = ", ".join(f"{a}.{b}.x" for a, b in sorted(BURST_TESTED))
        why = f"is not a release the burst reader is tested on ({tested})"
    elif missing := [name for name in _PAHO_INTERNALS if not hasattr(client, name)]:
        why = f"lacks what the burst reader needs ({', '.join(missing)})"
    else:
        return True
    log.warning("paho-mqtt %s %s: using paho's stock reader (more CPU)", version, why)
    return False


class BurstClient(paho.Client):
    """paho's client with a burst reader (see the module's note on speed).

    Runs in paho's network thread like the stock reader it replaces. Connection
    handling, keep-alive, subscriptions and outgoing messages stay paho's.
    """

    def __init__(
        self,
        *args: Any,
        on_publishes: Callable[[list[InboundMessage]], None],
        now: Callable[[], float],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = bytearray()
        self._on_publishes = on_publishes
        self._burst_now = now

    def reconnect(self) -> MQTTErrorCode:
        self._rbuf.clear()  # bytes of the old connection mean nothing on the new one
        return super().reconnect()

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        for _ in range(RECVS_PER_TURN):
            if self._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            try:
                data = self._sock_recv(RECV_BYTES)
            except BlockingIOError:
                return MQTTErrorCode.MQTT_ERR_SUCCESS
            except OSError as e:  # timeouts included
                log.warning("MQTT receive failed: %s", e)
                return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
            if not data:
                return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
            with self._msgtime_mutex:
                self._last_bytes_received = time.monotonic()
            buf = self._rbuf
            buf += data
            try:
                packets, used = split_packets(
                    buf, self._burst_now(), publishes=self._protocol != paho.MQTTv5
                )
            except ProtocolError as e:
                log.error("MQTT: bad packet from the broker (%s); reconnecting", e)
                return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_PROTOCOL)
            del buf[:used]
            rc = self._dispatch(packets)
            if rc > 0:  # as paho's loop_read: an error closes; MQTT_ERR_AGAIN (-1) does not
                return self._loop_rc_handle(rc)
            if len(data) < RECV_BYTES and not getattr(self._sock, "pending", lambda: 0)():
                return MQTTErrorCode.MQTT_ERR_SUCCESS  # drained: back to select
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _dispatch(self, packets: list[InboundMessage | OtherPacket]) -> MQTTErrorCode:
        run: list[InboundMessage] = []
        for p in packets:
            if type(p) is InboundMessage:
                run.append(p)
                continue
            if run:
                self._on_publishes(run)
                run = []
            first, body = p  # type: ignore[misc]
            # A whole packet, as paho's own reader leaves it before handling it.
            self._in_packet = {
                "command": first,
                "have_remaining": 1,
                "remaining_count": [],
                "remaining_mult": 1,
                "remaining_length": len(body),
                "packet": bytearray(body),
                "to_process": 0,
                "pos": 0,
            }
            rc = self._packet_read()
            if rc > 0 or self._sock is None:
                return rc
        if run:
            self._on_publishes(run)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def ack_many(self, mids: Sequence[int]) -> None:
        """One queued packet holding a PUBACK per id (thread-safe like paho's ``ack``)."""
        if mids:
            packet = struct.pack(f"!{len(mids)}I", *[0x4002_0000 | m for m in mids])
            self._packet_queue(_PUBACK, packet, 0, 0)


class MqttLink:
    """A persistent-session client with manual acknowledgement and reconnect back-off."""

    def __init__(
        self,
        settings: Settings,
        *,
        filters: Sequence[str],
        on_messages: Callable[[list[InboundMessage]], None],
        now: Callable[[], float] = time.time,
        filters_known: Callable[[str], bool] | None = None,
        on_state: Callable[[bool], None] | None = None,
        burst: bool = True,
    ) -> None:
        self.settings = settings
        self.filters = tuple(filters)
        self._on_messages_cb = on_messages
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
        options: dict[str, Any] = dict(
            client_id=settings.client_id,
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        self.client: paho.Client
        if burst:
            self.client = BurstClient(
                CallbackAPIVersion.VERSION2, on_publishes=self._on_publishes, now=now, **options
            )
            burst = burst_supported(self.client)
        if not burst:
            self.client = paho.Client(CallbackAPIVersion.VERSION2, **options)
        self.burst = burst
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
    def ack_many(self, mids: Sequence[int]) -> None:
        """Acknowledge QoS 1 messages after commit (ingest writer thread). A stale mid
        after a reconnect is harmless: the broker re-sends under the same mid and we ack
        again."""
        if self.burst:
            self.client.ack_many(mids)  # type: ignore[attr-defined]
        else:
            for mid in mids:
                self.client.ack(mid, 1)

    def unacknowledged(self) -> int:
        """Our QoS 1 publishes the broker has not acknowledged yet (each holds about 2 KB
        in paho until it does); 0 when this paho does not say."""
        return len(getattr(self.client, "_out_messages", ()))

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
            m, how = self.settings.mqtt, "resumed" if session_present else "new"
            log.info("MQTT connected to %s:%s (session %s)", m.host, m.port, how)
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
        # Stock paho's reader: MQTT 5, ``burst=False``, or a paho the burst reader is not for.
        topic = msg._topic.decode("utf-8", "replace")
        retain, dup = bool(msg.retain), bool(msg.dup)
        m = InboundMessage(topic, bytes(msg.payload), msg.qos, retain, dup, msg.mid, self._now())
        self._on_publishes([m])

    def _on_publishes(self, messages: list[InboundMessage]) -> None:
        try:
            self._on_messages_cb(messages)
        except Exception as e:
            # The messages stay unacknowledged: the broker re-sends them after a reconnect.
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
