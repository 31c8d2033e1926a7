"""MqttLink against a real Mosquitto: the burst reader, the stock one, MQTT 5, batched acks."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hub.ingest.mqtt import InboundMessage, MqttLink
from tests.broker import Broker, free_port, wait_port
from tests.hubtest import hub_settings, wait_for

READERS = [
    pytest.param(True, "3.1.1", id="burst"),
    pytest.param(False, "3.1.1", id="stock"),
    pytest.param(True, "5", id="burst-mqtt5"),
]


class Inbox:
    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, batch: list[InboundMessage]) -> None:
        with self._lock:
            self.calls += 1
            self.messages.extend(batch)

    def has(self, topic: str) -> bool:
        with self._lock:
            return any(m.topic == topic for m in self.messages)


def link(
    broker: Broker, tmp_path: Path, root: str, inbox: Inbox, burst: bool, proto: str
) -> MqttLink:
    settings = hub_settings(
        broker,
        tmp_path,
        LANGSO_SITE="link-test",
        LANGSO_MQTT__PROTOCOL=proto,
        LANGSO_MQTT__CLIENT_ID=f"link-{root}",
    )
    lk = MqttLink(settings, filters=[f"{root}/#"], on_messages=inbox, burst=burst)
    lk.start()
    wait_for(lambda: lk.connected, 5, "the link connected")
    return lk


def publisher(broker: Broker) -> paho.Client:
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id="")
    c.max_inflight_messages_set(0)
    c.connect(broker.host, broker.port)
    c.loop_start()
    return c


@pytest.mark.parametrize(("burst", "proto"), READERS)
def test_every_message_arrives_whole_and_in_order(
    broker: Broker, tmp_path: Path, burst: bool, proto: str
) -> None:
    root = f"order-{burst}-{proto}-{tmp_path.name}"
    inbox = Inbox()
    lk = link(broker, tmp_path, root, inbox, burst, proto)
    assert lk.burst is burst
    pub = publisher(broker)
    try:
        sent = []
        for i in range(600):
            # Every 50th is 100 KiB: packets that span many reads.
            payload = (b"%d:" % i) + (b"x" * 100_000 if i % 50 == 0 else b"y" * (i % 300))
            sent.append((f"{root}/d{i % 7}/state", payload))
            pub.publish(sent[-1][0], payload, qos=1)
        wait_for(lambda: len(inbox.messages) >= 600, 15, "600 messages")
        got = [(m.topic, m.payload) for m in inbox.messages]
        assert got == sent
        assert all(m.qos == 1 and not m.dup and 0 < m.mid < 65536 for m in inbox.messages)
        if burst and proto == "3.1.1":
            assert inbox.calls < 600  # handed over in runs, not one by one
        lk.ack_many([m.mid for m in inbox.messages])
    finally:
        pub.loop_stop()
        pub.disconnect()
        lk.stop()


@pytest.mark.parametrize(("burst", "proto"), READERS)
def test_only_acknowledged_messages_are_forgotten_by_the_broker(
    broker: Broker, tmp_path: Path, burst: bool, proto: str
) -> None:
    root = f"ack-{burst}-{proto}-{tmp_path.name}"
    first = Inbox()
    lk = link(broker, tmp_path, root, first, burst, proto)
    pub = publisher(broker)
    try:
        for i in range(40):
            pub.publish(f"{root}/m", b"%d" % i, qos=1)
        wait_for(lambda: len(first.messages) == 40, 5, "40 messages")
        lk.ack_many([m.mid for m in first.messages[:25]])  # one batch: 25 PUBACKs at once
        lk.ack_many([])
        # The PUBACKs are queued, then written by the network thread: a clean disconnect
        # after a round trip (a message we get back) proves they went out first.
        pub.publish(f"{root}/marker", b"1", qos=1)
        wait_for(lambda: first.has(f"{root}/marker"), 5, "the marker")
        lk.ack_many([m.mid for m in first.messages if m.topic.endswith("marker")])
        lk.stop()

        again = Inbox()
        lk = link(broker, tmp_path, root, again, burst, proto)
        pub.publish(f"{root}/marker2", b"2", qos=1)
        wait_for(lambda: again.has(f"{root}/marker2"), 5, "the second marker")
        redelivered = [m for m in again.messages if m.topic == f"{root}/m"]
        assert [m.payload for m in redelivered] == [b"%d" % i for i in range(25, 40)]
        assert all(m.dup for m in redelivered)
        assert [m.mid for m in redelivered] == [m.mid for m in first.messages[25:40]]
        lk.ack_many([m.mid for m in again.messages])
    finally:
        pub.loop_stop()
        pub.disconnect()
        lk.stop()


def test_the_burst_reader_survives_a_broker_restart(own_broker: Broker, tmp_path: Path) -> None:
    root = f"restart-{tmp_path.name}"
    inbox = Inbox()
    lk = link(own_broker, tmp_path, root, inbox, True, "3.1.1")
    try:
        own_broker.stop()
        wait_for(lambda: not lk.connected, 5, "the link to notice")
        for i in range(5):
            lk.publish(f"{root}/out", b"%d" % i)  # held by paho until the broker has them
        assert lk.unacknowledged() == 5
        own_broker.start()
        wait_for(lambda: lk.connected, 10, "the link back")
        wait_for(lambda: lk.unacknowledged() == 0, 5, "the held publishes acknowledged")
        pub = publisher(own_broker)
        pub.publish(f"{root}/after", b"ok", qos=1)
        wait_for(lambda: inbox.has(f"{root}/after"), 5, "a message after the restart")
        pub.loop_stop()
        pub.disconnect()
        assert lk.thread_alive and lk.errors == 0
    finally:
        lk.stop()


def make_certs(d: Path) -> None:
    """A throw-away CA and a server certificate for 127.0.0.1 (real openssl)."""
    d.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=30)

    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=t")
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "1", "-extfile", "san.ext",
    )  # fmt: skip


def test_the_burst_reader_reads_through_tls(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    make_certs(certs)
    tls_port = free_port()
    broker = Broker(
        tmp_path / "mosquitto",
        extra=f"listener {tls_port} 127.0.0.1\ncafile {certs}/ca.crt\n"
        f"certfile {certs}/server.crt\nkeyfile {certs}/server.key\n",
    )
    try:
        wait_port(broker.host, tls_port)
        settings = hub_settings(
            broker,
            tmp_path,
            LANGSO_SITE="link-test",
            LANGSO_MQTT__PORT=str(tls_port),
            LANGSO_MQTT__TLS="true",
            LANGSO_MQTT__CA_FILE=str(certs / "ca.crt"),
        )
        inbox = Inbox()
        lk = MqttLink(settings, filters=["tls/#"], on_messages=inbox)
        lk.start()
        try:
            wait_for(lambda: lk.connected, 10, "a TLS connection")
            pub = publisher(broker)  # plain listener: the broker relays to the TLS one
            try:
                sent = [(f"tls/{i}", b"%d:" % i + b"z" * (i * 997 % 70_000)) for i in range(300)]
                for topic, payload in sent:
                    pub.publish(topic, payload, qos=1)
                wait_for(lambda: len(inbox.messages) >= 300, 15, "300 messages over TLS")
                assert [(m.topic, m.payload) for m in inbox.messages] == sent
                lk.ack_many([m.mid for m in inbox.messages])
            finally:
                pub.loop_stop()
                pub.disconnect()
            assert lk.burst and lk.errors == 0
        finally:
            lk.stop()
    finally:
        broker.stop()
