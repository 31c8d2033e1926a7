"""The burst reader: bytes from the broker cut into packets, split anywhere; and the paho
releases it agrees to drive."""

from __future__ import annotations

import logging
import struct
import tomllib
from importlib import metadata
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from hub.ingest import mqtt
from hub.ingest.mqtt import InboundMessage, MqttLink, ProtocolError, split_packets
from hub.settings import load_settings

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def varlen(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def publish(
    topic: str | bytes,
    payload: bytes,
    *,
    qos: int = 1,
    mid: int = 7,
    retain: bool = False,
    dup: bool = False,
) -> bytes:
    t = topic.encode() if isinstance(topic, str) else topic
    body = struct.pack("!H", len(t)) + t + (struct.pack("!H", mid) if qos else b"") + payload
    first = 0x30 | qos << 1 | (0x08 if dup else 0) | (0x01 if retain else 0)
    return bytes([first]) + varlen(len(body)) + body


PUBACK = b"\x40\x02\x00\x05"
PINGRESP = b"\xd0\x00"


def test_publishes_become_messages_with_their_flags() -> None:
    buf = bytearray(
        publish("a/b", b'{"x": 1}', mid=1)
        + publish("a/c", b"", qos=0)
        + publish("a/d", b"on", mid=65535, retain=True, dup=True)
    )
    out, used = split_packets(buf, 12.5)
    assert used == len(buf)
    assert out == [
        InboundMessage("a/b", b'{"x": 1}', 1, False, False, 1, 12.5),
        InboundMessage("a/c", b"", 0, False, False, 0, 12.5),
        InboundMessage("a/d", b"on", 1, True, True, 65535, 12.5),
    ]


def test_other_packets_keep_their_place_for_paho() -> None:
    buf = bytearray(publish("a", b"1") + PUBACK + PINGRESP + publish("b", b"2", qos=2))
    out, used = split_packets(buf, 0.0)
    assert used == len(buf)
    assert isinstance(out[0], InboundMessage)
    # QoS 2 is paho's (the hub subscribes at QoS 1 and never gets it, but paho can handle it).
    assert out[1:] == [(0x40, b"\x00\x05"), (0xD0, b""), (0x34, publish("b", b"2", qos=2)[2:])]


def test_without_publishes_everything_goes_to_paho() -> None:
    pkt = publish("a", b"1")
    out, used = split_packets(bytearray(pkt), 0.0, publishes=False)
    assert out == [(pkt[0], pkt[2:])] and used == len(pkt)


def test_a_stream_split_at_every_byte_gives_the_same_messages() -> None:
    big = bytes(range(256)) * 80  # 20 KiB: a three-byte remaining length
    stream = (
        publish("village/x/ap/ap-1/state", b'{"clients": 3}', mid=10)
        + PUBACK
        + publish("village/x/sensor/s/state", big, mid=11)
        + publish("v/ệ", b"t", qos=0)
    )
    for cut in range(len(stream) + 1):
        buf = bytearray(stream[:cut])
        first, used = split_packets(buf, 1.0)
        del buf[:used]
        buf += stream[cut:]
        rest, used2 = split_packets(buf, 1.0)
        assert used2 == len(buf), cut
        got = first + rest
        assert [m.mid for m in got if isinstance(m, InboundMessage)] == [10, 11, 0], cut
        assert got[1] == (0x40, b"\x00\x05")
        assert got[2].payload == big  # type: ignore[union-attr]
        assert got[3].topic == "v/ệ"  # type: ignore[union-attr]


def test_a_partial_packet_is_left_for_the_next_read() -> None:
    pkt = publish("a/b", b"hello")
    for cut in range(len(pkt)):
        out, used = split_packets(bytearray(pkt[:cut]), 0.0)
        assert out == [] and used == 0


def test_a_topic_that_is_not_utf8_is_kept_readable() -> None:
    out, _ = split_packets(bytearray(publish(b"a/\xff", b"x")), 0.0)
    assert out[0].topic == "a/\ufffd"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"\x30\xff\xff\xff\xff\x01", "longer than 4 bytes"),
        (b"\x32\x01\x00", "without a topic"),
        (b"\x32\x04\x00\x09ab", "shorter than its topic"),
        (b"\x32\x03\x00\x01a", "shorter than its topic"),  # QoS 1 without its packet id
        (b"\x00\x00", "reserved"),
    ],
)
def test_bytes_that_are_not_mqtt_are_refused(raw: bytes, why: str) -> None:
    with pytest.raises(ProtocolError, match=why):
        split_packets(bytearray(raw), 0.0)


@pytest.mark.parametrize(
    ("version", "tested"),
    [
        ("2.2.0", True),
        ("2.2.1", True),
        ("2.1.0", False),
        ("2.3.0", False),
        ("2.20.0", False),
        ("3.0.0", False),
        ("2", False),
        ("unknown", False),
    ],
)
def test_paho_tested_knows_the_tested_series(version: str, tested: bool) -> None:
    assert mqtt.paho_tested(version) is tested


def test_the_pin_is_the_tested_series() -> None:
    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    pins = [d for d in deps if d.startswith("paho-mqtt")]
    ((major, minor),) = mqtt.BURST_TESTED
    assert pins == [f"paho-mqtt>={major}.{minor},<{major}.{minor + 1}"]


def _link(tmp_path: Path) -> MqttLink:
    settings = load_settings(None, env={"LANGSO_DATA_DIR": str(tmp_path)})
    return MqttLink(settings, filters=["village/t/#"], on_messages=lambda batch: None)


def test_the_installed_paho_gets_the_burst_reader(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert mqtt.paho_tested(metadata.version("paho-mqtt"))
    link = _link(tmp_path)
    assert link.burst is True
    assert type(link.client) is mqtt.BurstClient
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_an_untested_paho_gets_the_stock_reader_and_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = metadata.version
    monkeypatch.setattr(
        metadata, "version", lambda name: "2.3.0" if name == "paho-mqtt" else real(name)
    )
    with caplog.at_level(logging.WARNING, logger="hub.ingest.mqtt"):
        link = _link(tmp_path)
    assert link.burst is False
    assert type(link.client) is paho.Client
    assert [r.getMessage() for r in caplog.records] == [
        "paho-mqtt 2.3.0 is not a release the burst reader is tested on (2.2.x):"
        " using paho's stock reader (more CPU)"
    ]
