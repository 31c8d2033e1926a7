"""collectd adapter against the real thing: Debian's collectd publishing via a real Mosquitto."""

from __future__ import annotations

import os
import subprocess
import threading
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from devices.adapters import Router, make_adapter
from devices.events import DecodeError, Event, Reading
from tests.broker import Broker

COLLECTD = Path("/usr/sbin/collectd")
MQTT_PLUGIN = Path("/usr/lib/collectd/mqtt.so")
TYPES_DB = Path("/usr/share/collectd/types.db")
HOST = "village-ap-01"
# cpu percentages need two reads (rates), so at Interval 1 the first comes after ~2 s.
TIMEOUT_S = 30.0

pytestmark = pytest.mark.broker


def _need_collectd() -> None:
    missing = [str(p) for p in (COLLECTD, MQTT_PLUGIN, TYPES_DB) if not p.exists()]
    if not missing:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"collectd is missing on CI ({', '.join(missing)}): install collectd-core")
    pytest.skip(f"collectd is not installed ({', '.join(missing)}): apt install collectd-core")


def _conf(tmp: Path, broker: Broker) -> Path:
    conf = tmp / "collectd.conf"
    conf.write_text(
        f'Hostname "{HOST}"\n'
        "FQDNLookup false\n"
        "Interval 1\n"
        f'BaseDir "{tmp}"\n'
        f'PIDFile "{tmp}/collectd.pid"\n'
        f'TypesDB "{TYPES_DB}"\n'
        "LoadPlugin load\n"
        "LoadPlugin cpu\n"
        "LoadPlugin interface\n"
        "LoadPlugin mqtt\n"
        "<Plugin cpu>\n"
        "  ReportByCpu false\n"
        "  ValuesPercentage true\n"
        "</Plugin>\n"
        "<Plugin mqtt>\n"
        '  <Publish "hub">\n'
        f'    Host "{broker.host}"\n'
        f"    Port {broker.port}\n"
        f'    ClientId "collectd-test-{uuid.uuid4().hex[:8]}"\n'
        "    QoS 1\n"
        '    Prefix "collectd"\n'
        "  </Publish>\n"
        "</Plugin>\n"
    )
    return conf


def test_real_collectd_messages_decode(broker: Broker, tmp_path: Path) -> None:
    _need_collectd()
    router = Router([make_adapter("collectd", site="t")])
    lock = threading.Lock()
    events: list[Event] = []
    failures: list[tuple[str, bytes, str]] = []
    subscribed = threading.Event()
    done = threading.Event()

    def have(suffix: str) -> bool:
        return any(
            isinstance(e, Reading) and any(name.endswith(suffix) for name in e.metrics)
            for e in events
        )

    # Both callbacks run in paho's network thread (loop_start).
    def on_subscribe(
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        subscribed.set()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with lock:
            try:
                events.extend(router.parse(msg.topic, bytes(msg.payload)))
            except DecodeError as e:
                failures.append((msg.topic, bytes(msg.payload), str(e)))
            # if_octets is a rate: nan first, a value one interval later.
            if have("load.load.shortterm") and have("cpu_pct") and have(".if_octets.rx"):
                done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}")
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect(broker.host, broker.port)
    client.subscribe("collectd/#", qos=1)
    client.loop_start()
    log = (tmp_path / "collectd.log").open("wb")
    proc: subprocess.Popen[bytes] | None = None
    try:
        assert subscribed.wait(10), "no SUBACK from mosquitto"
        proc = subprocess.Popen(
            [str(COLLECTD), "-f", "-C", str(_conf(tmp_path, broker))],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        finished = done.wait(TIMEOUT_S)
        output = (tmp_path / "collectd.log").read_text(errors="replace")
        assert finished, f"no load, cpu, interface within {TIMEOUT_S} s; collectd said:\n{output}"
    finally:
        if proc is not None:
            proc.kill()
            proc.wait(10)
        client.loop_stop()
        client.disconnect()
        log.close()

    with lock:
        assert failures == [], "real collectd messages must all decode"
        readings = [e for e in events if isinstance(e, Reading)]
    assert readings and all(r.device_id == HOST and r.kind == "ap" for r in readings)
    assert all(r.ts is not None for r in readings)  # collectd's epoch is the ts
    load = next(r for r in readings if "load.load.shortterm" in r.metrics)
    assert set(load.metrics) == {"load.load.shortterm", "load.load.midterm", "load.load.longterm"}
    assert all(v >= 0 for v in load.metrics.values())
    cpu = next(r for r in readings if "cpu_pct" in r.metrics)
    assert 0 <= cpu.metrics["cpu_pct"] <= 100
    assert cpu.metrics["cpu_pct"] == pytest.approx(100 - cpu.metrics["cpu.percent-idle"])
    # the interface plugin's two-valued types are split into rx/tx, per interface
    octets = next(r for r in readings if any(n.endswith(".if_octets.rx") for n in r.metrics))
    ((name, rx),) = [(n, v) for n, v in octets.metrics.items() if n.endswith(".rx")]
    assert name.startswith("interface-") and rx >= 0
    assert set(octets.metrics) == {name, name[: -len("rx")] + "tx"}
