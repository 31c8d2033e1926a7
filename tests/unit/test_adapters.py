"""Adapters (devices/adapters): every shared wire-format vector and the native contract."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from devices.adapters import ADAPTER_NAMES, Router, make_adapter, topic_matches
from devices.events import (
    AnnounceCommand,
    Availability,
    ButtonPress,
    DecodeError,
    Event,
    Ignored,
    Reading,
)

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "payloads.jsonl"
SITE = "thon-dong"
V = f"village/{SITE}"
# The order hub/ingest uses: the strict prefixes first, ESPHome's wildcards last.
ORDER = ("native", "collectd", "tasmota", "zigbee2mqtt", "esphome")


@dataclass(frozen=True)
class Fails:
    """Expect DecodeError whose reason starts with this text."""

    reason: str


Expected = list[Event] | Fails


def router() -> Router:
    return Router([make_adapter(name, site=SITE) for name in ORDER])


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def check(r: Router, topic: str, payload: bytes, expected: Expected) -> None:
    if isinstance(expected, Fails):
        with pytest.raises(DecodeError) as err:
            r.parse(topic, payload)
        assert str(err.value).startswith(expected.reason), str(err.value)
    else:
        assert r.parse(topic, payload) == expected


# ---------------------------------------------------------------------------
# Shared vectors: one explicit expectation per (topic, payload) of payloads.jsonl.
# ---------------------------------------------------------------------------

UNKNOWN = Fails("unknown topic shape: ")
HA: list[Event] = [Ignored("native", "Home Assistant discovery or birth message")]

VECTOR_EXPECTED: dict[tuple[str, str | None], Expected] = {
    # --- tasmota
    ("tele/tasmota/LWT", "Online"): [Availability("tasmota", "tasmota", "sensor", online=True)],
    ("cmnd/tasmota/POWER", ""): [
        Ignored("tasmota", "a command to a Tasmota device (cmnd/), not a report")
    ],
    (
        "tele/sound1/STATE",
        '{"Time":"2018-11-26T17:41:27","Uptime":"0T05:05:17","Vcc":3.504,"SleepMode":"Dynamic",'
        '"Sleep":50,"LoadAvg":19,"POWER":"OFF","Wifi":{"AP":1,"SSId":"Wireless",'
        '"BSSId":"DE:AD:00:00:BE:EF","Channel":3,"RSSI":100}}',
    ): [
        Reading(
            "tasmota",
            "sound1",
            "sensor",
            {
                "Vcc": 3.504,
                "Sleep": 50,
                "LoadAvg": 19,
                "Wifi.AP": 1,
                "Wifi.Channel": 3,
                "Wifi.RSSI": 100,
                "rssi_pct": 100,
            },
            None,  # Time is device-local without offset: not a UTC ts
            {
                "Uptime": "0T05:05:17",
                "SleepMode": "Dynamic",
                "POWER": "OFF",
                "Wifi.SSId": "Wireless",
                "Wifi.BSSId": "DE:AD:00:00:BE:EF",
            },
        )
    ],
    # Custom FullTopic: not under the default root "tele" (see test_tasmota_custom_root).
    ("state/sonoff/LWT", "Offline"): UNKNOWN,
    (
        "tele/tasmota/SENSOR",
        '{"Time":"2019-11-03T19:34:28","BME280":{"Temperature":21.7,"Humidity":66.6,'
        '"Pressure":988.6},"PressureUnit":"hPa","TempUnit":"C"}',
    ): [
        Reading(
            "tasmota",
            "tasmota",
            "sensor",
            {"BME280.Temperature": 21.7, "BME280.Humidity": 66.6, "BME280.Pressure": 988.6},
            None,
            {"PressureUnit": "hPa", "TempUnit": "C"},
        )
    ],
    (
        "tele/tasmota/SENSOR",
        '{"Time":"2019-09-04T13:08:48","Epoch":1567595328,"ANALOG":{"A0":8}}',
    ): [
        # Epoch is UTC; Time (13:08:48) is the device's local time, two hours ahead.
        Reading("tasmota", "tasmota", "sensor", {"ANALOG.A0": 8}, utc(2019, 9, 4, 11, 8, 48))
    ],
    ("stat/tasmota_switch/RESULT", '{"POWER":"OFF"}'): [
        Ignored("tasmota", "a Tasmota command reply (stat/)")
    ],
    ("tele/tasmota/POWER_LOW", "ON"): [Reading("tasmota", "tasmota", "sensor", {"POWER_LOW": 1})],
    (
        "tele/badkamer/INFO1",
        '{"Info1":{"Module":"Generic","Version":"9.5.0(tasmota)",'
        '"FallbackTopic":"cmnd/DVES_4AA248_fb/","GroupTopic":"cmnd/tasmotas/"}}',
    ): [
        Reading(
            "tasmota",
            "badkamer",
            "sensor",
            {},
            None,
            {"module": "Generic", "version": "9.5.0(tasmota)"},
        )
    ],
    # --- esphome
    ("livingroom/status", "online"): [Availability("esphome", "livingroom", "sensor", online=True)],
    ("livingroom/living_room/sensor/temperature/state", "22.5"): [
        Reading("esphome", "livingroom", "sensor", {"living_room.temperature": 22.5})
    ],
    ("livingroom/binary_sensor/float_switch/state", "ON"): [
        Reading("esphome", "livingroom", "sensor", {"float_switch": 1})
    ],
    # --- zigbee2mqtt
    ("zigbee2mqtt/bridge/state", "online"): [
        Availability("zigbee2mqtt", "zigbee2mqtt-bridge", "gateway", online=True)
    ],
    ("zigbee2mqtt/bridge/state", '{"state":"online"}'): [
        Availability("zigbee2mqtt", "zigbee2mqtt-bridge", "gateway", online=True)
    ],
    ("zigbee2mqtt/kitchen/floor_light/availability", '{"state":"online"}'): [
        Availability("zigbee2mqtt", "kitchen-floor_light", "sensor", online=True)
    ],
    ("zigbee2mqtt/Kitchen Motion/availability", "offline"): [
        Availability("zigbee2mqtt", "kitchen-motion", "sensor", online=False)
    ],
    (
        "zigbee2mqtt/0x00158d000288e3c5",
        '{"contact":true,"linkquality":78,"last_seen":"2019-03-08T19:50:47+03:00",'
        '"battery":100,"voltage":3015}',
    ): [
        Reading(
            "zigbee2mqtt",
            "0x00158d000288e3c5",
            "sensor",
            {"contact": 1, "linkquality": 78, "battery": 100, "voltage": 3015},
            utc(2019, 3, 8, 16, 50, 47),
        )
    ],
    ("zigbee2mqtt/0x00158d0001234567", '{"temperature":27.34,"humidity":44.72}'): [
        Reading(
            "zigbee2mqtt", "0x00158d0001234567", "sensor", {"temperature": 27.34, "humidity": 44.72}
        )
    ],
    (
        "zigbee2mqtt/bridge/event",
        '{"type":"device_leave","data":{"ieee_address":"0x90fd9ffffe6494fc",'
        '"friendly_name":"my_bulb"}}',
    ): [Ignored("zigbee2mqtt", "Zigbee2MQTT bridge/event: not a device report")],
    # --- collectd (real capture: Debian 12 collectd 5.12 -> mosquitto 2.0)
    (
        "collectd/village-ap-01/load/load",
        "1796001076.906:0.84130859375:0.29150390625:0.10498046875\x00",
    ): [
        Reading(
            "collectd",
            "village-ap-01",
            "ap",
            {
                "load.load.shortterm": 0.84130859375,
                "load.load.midterm": 0.29150390625,
                "load.load.longterm": 0.10498046875,
            },
            datetime(2026, 11, 30, 1, 11, 16, 906000, tzinfo=UTC),
        )
    ],
    ("collectd/village-ap-01/cpu/percent-user", "1796001077.903:12.9353233830846\x00"): [
        Reading(
            "collectd",
            "village-ap-01",
            "ap",
            {"cpu.percent-user": 12.9353233830846},
            datetime(2026, 11, 30, 1, 11, 17, 903000, tzinfo=UTC),
        )
    ],
    ("collectd/village-ap-01/interface-eth0/if_octets", "1796001076.906:nan:nan\x00"): [
        Reading(
            "collectd",
            "village-ap-01",
            "ap",
            {},  # first sample of a DERIVE: no rate yet
            datetime(2026, 11, 30, 1, 11, 16, 906000, tzinfo=UTC),
        )
    ],
    # --- collectd-openwrt
    ("collectd/ap-xom-1/iwinfo-wlan0/stations", "1714962432.123:7\x00"): [
        Reading(
            "collectd",
            "ap-xom-1",
            "ap",
            {"iwinfo-wlan0.stations": 7.0, "clients": 7.0},
            datetime(2024, 5, 6, 2, 27, 12, 123000, tzinfo=UTC),
        )
    ],
    ("collectd/ap-xom-1/iwinfo-wlan0/signal_power", "1714962432.123:-61\x00"): [
        Reading(
            "collectd",
            "ap-xom-1",
            "ap",
            {"iwinfo-wlan0.signal_power": -61.0, "signal_dbm": -61.0},
            datetime(2024, 5, 6, 2, 27, 12, 123000, tzinfo=UTC),
        )
    ],
    ("collectd/ap-xom-1/dhcpleases/count", "1714962432.123:23\x00"): [
        Reading(
            "collectd",
            "ap-xom-1",
            "ap",
            {"dhcpleases.count": 23.0},
            datetime(2024, 5, 6, 2, 27, 12, 123000, tzinfo=UTC),
        )
    ],
    # --- not decoded by the hub. Shelly Gen2: no adapter, so a dead letter that says so.
    ("shellypro4pm-f008d1d8b8b8/events/rpc", None): UNKNOWN,  # payload: see _vector_key
    ("shellyplus2pm-Einfahrt/online", "true"): UNKNOWN,
    ("shellyht-livingroom/status/temperature:0", '{"id": 0,"tC":20.1, "tF":68.3}'): UNKNOWN,
    ("shellyht-livingroom/status/devicepower:0", None): UNKNOWN,
    # Home Assistant: its birth message and discovery are nobody's input, not faults.
    ("homeassistant/status", "online"): HA,
    ("homeassistant/binary_sensor/garden/config", None): HA,
    ("homeassistant/binary_sensor/garden/config", ""): HA,
    ("homeassistant/sensor/sensorBedroom/state", '{ "temperature": 23.20, "humidity": 43.70 }'): HA,
    ("homeassistant/device_automation/0x90fd9ffffedf1266/action_arrow_left_click/config", None): HA,
    # HTTP sources (not MQTT): whatever reaches the router with such a "topic" is unknown.
    ("HTTP GET :9100/metrics (not MQTT)", 'wifi_stations{ifname="wlan0"} 7'): UNKNOWN,
    (
        "HTTP POST /api/v1/monitoring/device/<device-uuid>/?key=<device-key> (not MQTT)",
        None,
    ): UNKNOWN,
}

# Long payloads of sources the hub does not decode are keyed by topic alone (None):
# the expectation does not depend on them, and spelling them out adds nothing.
_ANY_PAYLOAD = {topic for (topic, payload) in VECTOR_EXPECTED if payload is None}
SUPPORTED = {"tasmota", "esphome", "zigbee2mqtt", "collectd", "collectd-openwrt"}


def _vector_key(v: Mapping[str, object]) -> tuple[str, str | None]:
    topic, payload = str(v["topic"]), str(v["payload"])
    if topic in _ANY_PAYLOAD and (topic, payload) not in VECTOR_EXPECTED:
        assert v["source"] not in SUPPORTED
        return topic, None
    return topic, payload


def _vectors() -> list[dict[str, object]]:
    if not VECTORS.exists():
        where = f"shared vectors not found at {VECTORS} (the shared/ folder beside the repo)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{where}: CI must check out shared/ next to the repository")
        pytest.skip(where)
    return [json.loads(line) for line in VECTORS.read_text().splitlines() if line.strip()]


def test_every_vector_has_an_explicit_expectation() -> None:
    vectors = _vectors()
    keys = [_vector_key(v) for v in vectors]
    assert set(keys) == set(VECTOR_EXPECTED), "table and payloads.jsonl disagree"
    supported = {_vector_key(v) for v in vectors if v["source"] in SUPPORTED}
    assert len(supported) == 25  # 9 tasmota, 3 esphome, 7 zigbee2mqtt, 3+3 collectd
    assert all(payload is not None for _, payload in supported)


@pytest.mark.parametrize(
    ("topic", "payload"), list(VECTOR_EXPECTED), ids=[f"{t}|{p}"[:70] for t, p in VECTOR_EXPECTED]
)
def test_vector(topic: str, payload: str | None) -> None:
    matching = [v for v in _vectors() if v["topic"] == topic and payload in (None, v["payload"])]
    assert matching, f"vector {topic!r} is gone from payloads.jsonl"
    expected = VECTOR_EXPECTED[(topic, payload)]
    for v in matching:
        check(router(), topic, str(v["payload"]).encode(), expected)


def test_decoded_vectors_are_subscribed() -> None:
    # A vector decoded into facts is useless if the hub never subscribes to its topic.
    filters = router().filters
    for (topic, _), expected in VECTOR_EXPECTED.items():
        if isinstance(expected, list) and not all(isinstance(e, Ignored) for e in expected):
            assert any(topic_matches(f, topic) for f in filters), topic


def test_tasmota_custom_root_decodes_deep_sleep_lwt() -> None:
    # DeepSleep.md's FullTopic puts the LWT on state/<t>/LWT; its Offline is on purpose,
    # but the topic cannot say so: expected=False, monitor decides per device.
    r = Router([make_adapter("tasmota", site=SITE, root="state")])
    assert r.parse("state/sonoff/LWT", b"Offline") == [
        Availability("tasmota", "sonoff", "sensor", online=False, expected=False)
    ]
    assert r.filters == ("state/#",)
    with pytest.raises(DecodeError, match="unknown topic shape"):
        r.parse("stat/sonoff/RESULT", b"{}")  # no stat/ sibling for a custom root


# ---------------------------------------------------------------------------
# Native contract (DESIGN "MQTT contract").
# ---------------------------------------------------------------------------

AP = f"{V}/ap/ap-01/state"
SENSOR = f"{V}/sensor/river-1/state"
ICT = timezone(timedelta(hours=7))

NATIVE: list[tuple[str, bytes, Expected]] = [
    # AP state: every contract field, numbers to metrics, ssid/fw to info
    (
        AP,
        b'{"clients": 12, "rx_bytes": 1000, "tx_bytes": 2000, "signal_dbm": -61, '
        b'"noise_dbm": -95, "channel": 6, "uptime_s": 3600, "cpu_pct": 12.5, "mem_pct": 40, '
        b'"temp_c": 51.2, "ssid": "Lang So Free", "fw": "OpenWrt 23.05"}',
        [
            Reading(
                "native",
                "ap-01",
                "ap",
                {
                    "clients": 12,
                    "rx_bytes": 1000,
                    "tx_bytes": 2000,
                    "signal_dbm": -61,
                    "noise_dbm": -95,
                    "channel": 6,
                    "uptime_s": 3600,
                    "cpu_pct": 12.5,
                    "mem_pct": 40,
                    "temp_c": 51.2,
                },
                None,
                {"ssid": "Lang So Free", "fw": "OpenWrt 23.05"},
            )
        ],
    ),
    # unknown numeric field kept, unknown string shown
    (
        AP,
        b'{"clients": 3, "airtime_pct": 17, "band": "2g"}',
        [Reading("native", "ap-01", "ap", {"clients": 3, "airtime_pct": 17}, None, {"band": "2g"})],
    ),
    (AP, b"{}", [Reading("native", "ap-01", "ap", {})]),
    # trailing NUL stripped like collectd's
    (AP, b'{"clients": 1}\x00', [Reading("native", "ap-01", "ap", {"clients": 1})]),
    # ts forms
    (
        AP,
        b'{"clients": 1, "ts": 1764500000}',
        [Reading("native", "ap-01", "ap", {"clients": 1}, utc(2025, 11, 30, 10, 53, 20))],
    ),
    (
        AP,
        b'{"ts": 1764500000.25}',
        [Reading("native", "ap-01", "ap", {}, datetime(2025, 11, 30, 10, 53, 20, 250000, UTC))],
    ),
    (
        AP,
        b'{"ts": "2025-11-30T10:53:20Z"}',
        [Reading("native", "ap-01", "ap", {}, utc(2025, 11, 30, 10, 53, 20))],
    ),
    (
        AP,
        b'{"ts": "2025-11-30T17:53:20+07:00"}',
        [Reading("native", "ap-01", "ap", {}, utc(2025, 11, 30, 10, 53, 20))],
    ),
    (  # naive ISO is UTC (the adapter does not know the village's zone)
        AP,
        b'{"ts": "2025-11-30T10:53:20"}',
        [Reading("native", "ap-01", "ap", {}, utc(2025, 11, 30, 10, 53, 20))],
    ),
    (AP, b'{"ts": null}', [Reading("native", "ap-01", "ap", {})]),
    (AP, b'{"ts": "yesterday"}', Fails("field 'ts' is not ISO 8601 or epoch seconds")),
    (AP, b'{"ts": true}', Fails("field 'ts' is not ISO 8601 or epoch seconds")),
    (AP, b'{"ts": -1}', Fails("field 'ts' is not a valid epoch time")),
    (AP, b'{"ts": 1e999}', Fails("field 'ts' is not a valid epoch time")),
    (AP, b'{"ts": 1e300}', Fails("field 'ts' is not a valid epoch time")),
    # bad types
    (AP, b'{"clients": "12"}', Fails("field 'clients' is not a number")),
    (AP, b'{"clients": true}', Fails("field 'clients' is not a number")),
    (AP, b'{"clients": null}', Fails("field 'clients' is not a number")),
    (AP, b'{"clients": 1e999}', Fails("field 'clients' is not a finite number")),
    # Beyond SQLite's 64-bit integers (beyond 64 bits altogether, a float: still a number).
    (AP, b'{"rx_bytes": 9999999999999999999}', Fails("field 'rx_bytes' is out of range")),
    (AP, b'{"ssid": 5}', Fails("field 'ssid' is not a string")),
    (AP, b'{"radios": [1, 2]}', Fails("field 'radios' is not a number")),
    (AP, b'{"up": false}', Fails("field 'up' is not a number")),
    # bytes that are not the contract
    (AP, b'{"ssid": "caf\xe9"}', Fails("not UTF-8")),
    (AP, b"{clients: 1}", Fails("not JSON")),
    (AP, b'{"clients": NaN}', Fails("not JSON")),
    (AP, b"[1, 2]", Fails("payload is not a JSON object")),
    (AP, b"7", Fails("payload is not a JSON object")),
    (AP, b"", Fails("empty payload")),
    (AP, b"\x00", Fails("empty payload")),
    # sensor state: numbers only
    (
        SENSOR,
        b'{"water_level_cm": 182, "battery_pct": 77, "ts": "2025-11-30T17:53:20+07:00"}',
        [
            Reading(
                "native",
                "river-1",
                "sensor",
                {"water_level_cm": 182, "battery_pct": 77},
                datetime(2025, 11, 30, 17, 53, 20, tzinfo=ICT),
            )
        ],
    ),
    (SENSOR, b'{"water_level_cm": "high"}', Fails("field 'water_level_cm' is not a number")),
    (SENSOR, b'{"wet": true}', Fails("field 'wet' is not a number")),
    (SENSOR, b"", Fails("empty payload")),
    # device ids
    (f"{V}/ap/ap 01/state", b"{}", Fails("bad device id 'ap 01'")),
    (f"{V}/ap/-ap/state", b"{}", Fails("bad device id '-ap'")),
    (f"{V}/ap//state", b"{}", Fails("bad device id ''")),
    (f"{V}/ap/{'a' * 65}/state", b"{}", Fails("bad device id")),
    (f"{V}/ap/{'a' * 64}/state", b"{}", [Reading("native", "a" * 64, "ap", {})]),
    (f"{V}/sensor/Xom_2.b:c-d/state", b"{}", [Reading("native", "Xom_2.b:c-d", "sensor", {})]),
    # status (retained, and the LWT)
    (f"{V}/ap/ap-01/status", b"online", [Availability("native", "ap-01", "ap", online=True)]),
    (
        f"{V}/speaker/loa-1/status",
        b"offline",
        [Availability("native", "loa-1", "speaker", online=False)],
    ),
    (
        f"{V}/gateway/gw/status",
        b"online\x00",
        [Availability("native", "gw", "gateway", online=True)],
    ),
    (f"{V}/ap/ap-01/status", b"ONLINE", Fails("status must be 'online' or 'offline'")),
    (f"{V}/ap/ap-01/status", b'{"state": "online"}', Fails("status must be")),
    (f"{V}/robot/r1/status", b"online", Fails("unknown device kind 'robot'")),
    (f"{V}/ap/bad id/status", b"online", Fails("bad device id")),
    (
        f"{V}/ap/ap-01/status",
        b"",
        [Ignored("native", "empty status: a retained message being cleared")],
    ),
    # buttons
    (
        f"{V}/button/nut-1/event",
        b'{"action": "emergency"}',
        [ButtonPress("native", "nut-1", "emergency")],
    ),
    (
        f"{V}/button/nut-1/event",
        b'{"action": "announce", "template": "hop-thon", "ts": 1764500000}',
        [ButtonPress("native", "nut-1", "announce", "hop-thon", utc(2025, 11, 30, 10, 53, 20))],
    ),
    (
        f"{V}/button/nut-1/event",
        b'{"action": "stop", "template": null}',
        [ButtonPress("native", "nut-1", "stop")],
    ),
    (
        f"{V}/button/nut-1/event",
        b'{"action": "reboot"}',
        Fails("field 'action' must be one of emergency, stop, announce"),
    ),
    (f"{V}/button/nut-1/event", b"{}", Fails("field 'action' must be one of")),
    (
        f"{V}/button/nut-1/event",
        b'{"action": "announce", "template": 3}',
        Fails("field 'template' is not a string"),
    ),
    (f"{V}/button/nut-1/event", b"emergency", Fails("not JSON")),
    # cmd/announce: the body goes on as it is, the API validates it
    (
        f"{V}/cmd/announce",
        b'{"title": "Bao", "text": "Bao so 3", "priority": "emergency", "zones": ["all"]}',
        [
            AnnounceCommand(
                "native",
                {"title": "Bao", "text": "Bao so 3", "priority": "emergency", "zones": ["all"]},
            )
        ],
    ),
    (f"{V}/cmd/announce", b'["x"]', Fails("payload is not a JSON object")),
    (f"{V}/cmd/announce", b"", Fails("empty payload")),
    # the hub's own topics mirrored back to it
    (f"{V}/hub/status", b"online", [Ignored("native", "the hub's own hub/status")]),
    (f"{V}/playout/state", b'{"state":"idle"}', [Ignored("native", "the hub's own playout/state")]),
    (f"{V}/announcements/a1", b"", [Ignored("native", "the hub's own announcements mirror")]),
    (f"{V}/announcements", b"{}", [Ignored("native", "the hub's own announcements mirror")]),
    (f"{V}/alerts/x/y", b"{}", [Ignored("native", "the hub's own alerts mirror")]),
    (f"{V}/speaker/loa-1/cmd", b"{}", [Ignored("native", "the hub's own speaker command")]),
    # unknown shapes under the root are dead letters, not silence
    (f"{V}/ap/ap-01", b"{}", Fails(f"unknown topic shape: {V}/ap/ap-01")),
    (f"{V}/ap/ap-01/state/extra", b"{}", Fails("unknown topic shape")),
    (f"{V}/hub/state", b"{}", [Ignored("native", "the hub's own hub mirror")]),
    (f"{V}/hub/devices/ap-1/health", b"online", [Ignored("native", "the hub's own hub mirror")]),
    (f"{V}/sensor/s1/event", b"{}", Fails("unknown topic shape")),
    (f"{V}/cmd/reboot", b"{}", Fails("unknown topic shape")),
    # another village's topics are not ours
    ("village/thon-tay/ap/ap-01/state", b"{}", UNKNOWN),
]


@pytest.mark.parametrize(("topic", "payload", "expected"), NATIVE, ids=range(len(NATIVE)))
def test_native(topic: str, payload: bytes, expected: Expected) -> None:
    check(router(), topic, payload, expected)


def test_native_reading_kind_follows_topic_and_rename_applies() -> None:
    r = Router([make_adapter("native", site=SITE, rename={"ap-01": "ap-nha-van-hoa"})])
    assert r.parse(AP, b'{"clients": 2}') == [
        Reading("native", "ap-nha-van-hoa", "ap", {"clients": 2})
    ]
    assert r.filters == (f"{V}/#",)


def test_native_root_override() -> None:
    r = Router([make_adapter("native", site=SITE, root="xa/lang-so/thon-dong")])
    assert r.filters == ("xa/lang-so/thon-dong/#",)
    assert r.parse("xa/lang-so/thon-dong/sensor/s1/state", b'{"x": 1}') == [
        Reading("native", "s1", "sensor", {"x": 1})
    ]
    with pytest.raises(DecodeError, match="unknown topic shape"):
        r.parse(AP, b"{}")


# ---------------------------------------------------------------------------
# collectd beyond the vectors.
# ---------------------------------------------------------------------------

T0 = "1764500000"
TS0 = utc(2025, 11, 30, 10, 53, 20)


def cd(metrics: dict[str, float], device: str = "ap-1", kind: str = "ap") -> list[Event]:
    return [Reading("collectd", device, kind, metrics, TS0)]


COLLECTD: list[tuple[str, str, Expected]] = [
    ("cpu/percent-idle", "87.5", cd({"cpu.percent-idle": 87.5, "cpu_pct": 12.5})),
    ("cpu/percent-active", "30", cd({"cpu.percent-active": 30.0, "cpu_pct": 30.0})),
    ("cpu-0/percent-idle", "50", cd({"cpu-0.percent-idle": 50.0})),  # per-CPU: no alias
    ("cpu/percent-idle", "nan", cd({})),
    ("uptime/uptime", "86400", cd({"uptime.uptime": 86400.0, "uptime_s": 86400.0})),
    ("memory/percent-used", "41.5", cd({"memory.percent-used": 41.5, "mem_pct": 41.5})),
    ("memory/memory-used", "1000", cd({"memory.memory-used": 1000.0})),
    (
        "thermal-thermal_zone0/temperature",
        "48",
        cd({"thermal-thermal_zone0.temperature": 48.0, "temp_c": 48.0}),
    ),
    (
        "iwinfo-wlan1/signal_noise",
        "-95",
        cd({"iwinfo-wlan1.signal_noise": -95.0, "noise_dbm": -95.0}),
    ),
    ("iwinfo-wlan1/bitrate", "144", cd({"iwinfo-wlan1.bitrate": 144.0})),
    (
        "interface-br-lan/if_packets",
        "10:20",
        cd({"interface-br-lan.if_packets.rx": 10.0, "interface-br-lan.if_packets.tx": 20.0}),
    ),
    ("interface-eth0/if_errors", "nan:1", cd({"interface-eth0.if_errors.tx": 1.0})),
    (
        "interface-eth0/if_dropped",
        "0:0",
        cd({"interface-eth0.if_dropped.rx": 0.0, "interface-eth0.if_dropped.tx": 0.0}),
    ),
    (
        "disk-sda/disk_octets",
        "1:2",
        cd({"disk-sda.disk_octets.0": 1.0, "disk-sda.disk_octets.1": 2.0}),
    ),
    ("load/load", "-nan:U:0.5", cd({"load.load.longterm": 0.5})),
    ("load/load", "1:2", Fails("type 'load' has 3 values, got 2")),
    ("interface-eth0/if_octets", "1", Fails("type 'if_octets' has 2 values, got 1")),
    ("load/load", "1:x:2", Fails("value 2 'x' is not a number")),
    ("load/load", "1:inf:2", Fails("value 2 is infinite")),
]


@pytest.mark.parametrize(("path", "values", "expected"), COLLECTD, ids=range(len(COLLECTD)))
def test_collectd(path: str, values: str, expected: Expected) -> None:
    check(router(), f"collectd/ap-1/{path}", f"{T0}:{values}\x00".encode(), expected)


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("collectd/ap-1/load", b"1:2", "unknown topic shape: collectd/ap-1/load (want collectd/"),
        ("collectd/ap-1/load/load/x", b"1:2", "unknown topic shape"),
        ("collectd//load/load", b"1:2", "unknown topic shape"),
        ("collectd/ap 1/load/load", b"1:1:1:1", "bad device id 'ap 1'"),
        ("collectd/ap-1/uptime/uptime", b"12", "not collectd's <time>:<value>"),
        ("collectd/ap-1/uptime/uptime", b"", "not collectd's <time>:<value>"),
        ("collectd/ap-1/uptime/uptime", b"now:12", "time 'now' is not a number"),
        ("collectd/ap-1/uptime/uptime", b"-5:12", "field 'time' is not a valid epoch time"),
        ("collectd/ap-1/uptime/uptime", b"nan:12", "field 'time' is not a valid epoch time"),
        ("collectd/ap-1/uptime/uptime", b"1:\xff\x00", "not UTF-8"),
    ],
)
def test_collectd_bad_input(topic: str, payload: bytes, reason: str) -> None:
    check(router(), topic, payload, Fails(reason))


def test_collectd_options() -> None:
    a = make_adapter(
        "collectd", site=SITE, root="openwrt/collectd", kind="gateway", rename={"OpenWrt": "gw-1"}
    )
    assert a.filters == ("openwrt/collectd/#",)
    assert not a.claims("collectd/OpenWrt/uptime/uptime")
    assert a.parse("openwrt/collectd/OpenWrt/uptime/uptime", f"{T0}:5\x00".encode()) == [
        Reading("collectd", "gw-1", "gateway", {"uptime.uptime": 5.0, "uptime_s": 5.0}, TS0)
    ]


# ---------------------------------------------------------------------------
# Tasmota beyond the vectors.
# ---------------------------------------------------------------------------

TASMOTA: list[tuple[str, bytes, Expected]] = [
    ("tele/t1/LWT", b"Offline", [Availability("tasmota", "t1", "sensor", online=False)]),
    ("tele/t1/LWT", b"", [Ignored("tasmota", "empty LWT: a retained message being cleared")]),
    ("tele/t1/LWT", b"online", Fails("status must be 'Online' or 'Offline'")),
    (
        # Current firmware STATE: UptimeSec and Wifi.Signal (dBm) have native names.
        "tele/t1/STATE",
        b'{"Time":"2024-01-01T07:00:00","Uptime":"1T00:00:05","UptimeSec":86405,"Heap":25,'
        b'"MqttCount":1,"POWER1":"ON","Wifi":{"RSSI":70,"Signal":-65,"Downtime":"0T00:00:03"}}',
        [
            Reading(
                "tasmota",
                "t1",
                "sensor",
                {
                    "UptimeSec": 86405,
                    "Heap": 25,
                    "MqttCount": 1,
                    "Wifi.RSSI": 70,
                    "Wifi.Signal": -65,
                    "rssi_pct": 70,
                    "signal_dbm": -65,
                    "uptime_s": 86405,
                },
                None,
                {"Uptime": "1T00:00:05", "POWER1": "ON", "Wifi.Downtime": "0T00:00:03"},
            )
        ],
    ),
    (
        "tele/t1/SENSOR",
        b'{"DS18B20":{"Id":"01144A0CB2AA","Temperature":22.4},'
        b'"ENERGY":{"Power":[10,20],"Today":0.5,"Spare":null},"Switch1":"ON"}',
        [
            Reading(
                "tasmota",
                "t1",
                "sensor",
                {
                    "DS18B20.Temperature": 22.4,
                    "ENERGY.Power.0": 10,
                    "ENERGY.Power.1": 20,
                    "ENERGY.Today": 0.5,
                },
                None,
                {"DS18B20.Id": "01144A0CB2AA", "Switch1": "ON"},
            )
        ],
    ),
    ("tele/t1/SENSOR", b'{"Epoch":"now"}', Fails("field 'Epoch' is not a number")),
    (
        "tele/t1/SENSOR",
        b'{"A":{"B":{"C":{"D":{"E":{"F":{"G":{"H":{"I":{"J":1}}}}}}}}}}',
        Fails("field 'A.B.C.D.E.F.G.H.I' is nested too deeply"),
    ),
    ("tele/t1/SENSOR", b"22.5", Fails("payload is not a JSON object")),
    ("tele/t1/SENSOR", b"{", Fails("not JSON")),
    (
        # Old firmware INFO1: no "Info1" wrapper.
        "tele/t1/INFO1",
        b'{"Module":"Sonoff Basic","Version":"6.4.1","FallbackTopic":"x"}',
        [
            Reading(
                "tasmota", "t1", "sensor", {}, None, {"module": "Sonoff Basic", "version": "6.4.1"}
            )
        ],
    ),
    ("tele/t1/INFO1", b'{"Info1":"x"}', Fails("field 'Info1' is not a JSON object")),
    ("tele/t1/INFO1", b'{"Info1":{"Version":9}}', Fails("field 'Version' is not a string")),
    (
        "tele/t1/INFO2",
        b'{"Info2":{"Hostname":"t1"}}',
        [Ignored("tasmota", "Tasmota tele/<t>/INFO2 is not decoded")],
    ),
    ("tele/t1/POWER_LOW", b"OFF", [Reading("tasmota", "t1", "sensor", {"POWER_LOW": 0})]),
    ("tele/t1/BATT", b"3.7", [Reading("tasmota", "t1", "sensor", {"BATT": 3.7})]),
    ("tele/t1/BATT", b"inf", Fails("tele/BATT value is not a finite number")),
    ("stat/t1/POWER", b"ON", [Ignored("tasmota", "a Tasmota command reply (stat/)")]),
    (
        "cmnd/t1/Power",
        b"TOGGLE",
        [Ignored("tasmota", "a command to a Tasmota device (cmnd/), not a report")],
    ),
    ("tele/t1", b"x", Fails("unknown topic shape: tele/t1 (want tele/<t>/<X>)")),
    ("tele/t1/x/SENSOR", b"{}", Fails("unknown topic shape")),
    ("tele/t 1/LWT", b"Online", Fails("bad device id 't 1'")),
]


@pytest.mark.parametrize(("topic", "payload", "expected"), TASMOTA, ids=range(len(TASMOTA)))
def test_tasmota(topic: str, payload: bytes, expected: Expected) -> None:
    check(router(), topic, payload, expected)


def test_tasmota_options() -> None:
    a = make_adapter("tasmota", site=SITE, root="home/tele", kind="ap", rename={"t1": "ap-9"})
    assert a.filters == ("home/tele/#",)
    assert a.claims("home/stat/t1/RESULT") and a.claims("home/cmnd/t1/POWER")
    assert not a.claims("tele/t1/LWT") and not a.claims("stat/t1/RESULT")
    assert a.parse("home/tele/t1/LWT", b"Online") == [Availability("tasmota", "ap-9", "ap", True)]
    assert a.parse("home/stat/t1/RESULT", b"{}") == [
        Ignored("tasmota", "a Tasmota command reply (stat/)")
    ]


# ---------------------------------------------------------------------------
# ESPHome beyond the vectors.
# ---------------------------------------------------------------------------

ESPHOME: list[tuple[str, bytes, Expected]] = [
    ("bom-1/status", b"offline", [Availability("esphome", "bom-1", "sensor", online=False)]),
    ("bom-1/status", b"", [Ignored("esphome", "empty status: a retained message being cleared")]),
    ("bom-1/status", b"Offline", Fails("status must be 'online' or 'offline'")),
    (
        "bom-1/sensor/water_level/state",
        b"-3",
        [Reading("esphome", "bom-1", "sensor", {"water_level": -3.0})],
    ),
    ("bom-1/sensor/water_level/state", b"nan", [Reading("esphome", "bom-1", "sensor", {})]),
    ("bom-1/sensor/water_level/state", b"unknown", [Reading("esphome", "bom-1", "sensor", {})]),
    ("bom-1/sensor/water_level/state", b"inf", Fails("sensor state is infinite")),
    ("bom-1/sensor/water_level/state", b"high", Fails("sensor state 'high' is not a number")),
    ("bom-1/sensor/water_level/state", b"", Fails("empty payload")),
    ("bom-1/sensor/water_level/state", b"\xc3", Fails("not UTF-8")),
    (
        "bom-1/binary_sensor/pump/state",
        b"OFF",
        [Reading("esphome", "bom-1", "sensor", {"pump": 0})],
    ),
    ("bom-1/binary_sensor/pump/state", b"1", Fails("binary_sensor state must be ON or OFF")),
    (
        "bom-1/tank_a/binary_sensor/full/state",
        b"OFF",
        [Reading("esphome", "bom-1", "sensor", {"tank_a.full": 0})],
    ),
]


@pytest.mark.parametrize(("topic", "payload", "expected"), ESPHOME, ids=range(len(ESPHOME)))
def test_esphome(topic: str, payload: bytes, expected: Expected) -> None:
    check(router(), topic, payload, expected)


@pytest.mark.parametrize(
    "topic",
    [
        # other adapters' roots and Home Assistant, although the filters match them
        "homeassistant/status",
        "homeassistant/sensor/x/state",
        "village/status",
        "collectd/status",
        "tele/status",
        "stat/sensor/x/state",
        "cmnd/status",
        "zigbee2mqtt/status",
        "zigbee2mqtt/x/sensor/y/state",
        "$SYS/status",
        # shapes that are not ESPHome sensor/binary_sensor/status
        "bom-1/switch/pump/state",
        "bom-1/sensor/x",
        "bom-1/sensor//state",
        "bom-1/status/x",
        "/status",
        "a/b/c/sensor/x/state",
        "shellyplus2pm-Einfahrt/online",
    ],
)
def test_esphome_does_not_claim(topic: str) -> None:
    assert not make_adapter("esphome", site=SITE).claims(topic)


def test_esphome_root_is_one_node_prefix() -> None:
    a = make_adapter("esphome", site=SITE, root="nha/bom-1", kind="gateway")
    assert a.filters == (
        "nha/bom-1/status",
        "nha/bom-1/sensor/+/state",
        "nha/bom-1/binary_sensor/+/state",
        "nha/bom-1/+/sensor/+/state",
        "nha/bom-1/+/binary_sensor/+/state",
    )
    assert not a.claims("bom-2/status")
    assert a.parse("nha/bom-1/sensor/v/state", b"5") == [
        Reading("esphome", "nha-bom-1", "gateway", {"v": 5.0})
    ]
    b = make_adapter("esphome", site=SITE, rename={"livingroom": "phong-khach"})
    assert b.parse("livingroom/status", b"online") == [
        Availability("esphome", "phong-khach", "sensor", True)
    ]


# ---------------------------------------------------------------------------
# Zigbee2MQTT beyond the vectors.
# ---------------------------------------------------------------------------

BRIDGE_OFF: list[Event] = [
    Availability("zigbee2mqtt", "zigbee2mqtt-bridge", "gateway", online=False)
]
Z2M: list[tuple[str, bytes, Expected]] = [
    ("zigbee2mqtt/bridge/state", b"offline", BRIDGE_OFF),
    ("zigbee2mqtt/bridge/state", b'{"state":"offline"}', BRIDGE_OFF),
    ("zigbee2mqtt/bridge/state", b'{"state":"up"}', Fails("field 'state' must be")),
    ("zigbee2mqtt/bridge/state", b"{", Fails("not JSON")),
    (
        "zigbee2mqtt/bridge/state",
        b"",
        [Ignored("zigbee2mqtt", "empty bridge/state: a retained message being cleared")],
    ),
    (
        "zigbee2mqtt/bridge/logging",
        b'{"level":"info","message":"x"}',
        [Ignored("zigbee2mqtt", "Zigbee2MQTT bridge/logging: not a device report")],
    ),
    (
        "zigbee2mqtt/bridge/devices",
        b"[]",
        [Ignored("zigbee2mqtt", "Zigbee2MQTT bridge/devices: not a device report")],
    ),
    (
        "zigbee2mqtt/bridge/response/device/rename",
        b"{}",
        [Ignored("zigbee2mqtt", "Zigbee2MQTT bridge/response/device/rename: not a device report")],
    ),
    (
        "zigbee2mqtt/lamp/set",
        b'{"state":"ON"}',
        [Ignored("zigbee2mqtt", "a command to a Zigbee2MQTT device")],
    ),
    (
        "zigbee2mqtt/lamp/set/state",
        b"ON",
        [Ignored("zigbee2mqtt", "a command to a Zigbee2MQTT device")],
    ),
    (
        "zigbee2mqtt/a/b/get",
        b'{"state":""}',
        [Ignored("zigbee2mqtt", "a command to a Zigbee2MQTT device")],
    ),
    (
        "zigbee2mqtt/0x90fd/action",
        b"arrow_left_click",
        [Ignored("zigbee2mqtt", "Zigbee2MQTT legacy action topic")],
    ),
    (
        "zigbee2mqtt/lamp",
        b"",
        [Ignored("zigbee2mqtt", "empty payload: a retained message being cleared")],
    ),
    (
        "zigbee2mqtt/lamp/availability",
        b"",
        [Ignored("zigbee2mqtt", "empty payload: a retained message being cleared")],
    ),
    ("zigbee2mqtt/lamp/availability", b"gone", Fails("status must be 'online' or 'offline'")),
    (
        "zigbee2mqtt/flood 1",
        b'{"water_leak":false,"battery_low":true,"child_lock":false,"state":"ON",'
        b'"color":{"x":0.3,"y":0.4},"action":null,"last_seen":1764500000000}',
        [
            Reading(
                "zigbee2mqtt",
                "flood-1",
                "sensor",
                {"water_leak": 0, "battery_low": 1, "color.x": 0.3, "color.y": 0.4},
                TS0,  # last_seen "epoch" is milliseconds
                {"child_lock": False, "state": "ON"},
            )
        ],
    ),
    (
        "zigbee2mqtt/Đèn bếp",
        b'{"last_seen":"2025-11-30T10:53:20.000Z","brightness":254}',
        [Reading("zigbee2mqtt", "den-bep", "sensor", {"brightness": 254}, TS0)],
    ),
    ("zigbee2mqtt/lamp", b'{"last_seen":"soon"}', Fails("field 'last_seen' is not ISO 8601")),
    (
        "zigbee2mqtt/lamp",
        b'{"linkquality":"good"}',
        [Reading("zigbee2mqtt", "lamp", "sensor", {}, None, {"linkquality": "good"})],
    ),
    ("zigbee2mqtt/lamp/temperature", b"22.5", Fails("payload is not a JSON object (Zigbee2MQTT")),
    ("zigbee2mqtt/lamp", b"ON", Fails("not JSON")),
    ("zigbee2mqtt/!!!", b"{}", Fails("cannot make a device id from '!!!'")),
    ("zigbee2mqtt/", b"{}", Fails("unknown topic shape")),
]


@pytest.mark.parametrize(("topic", "payload", "expected"), Z2M, ids=range(len(Z2M)))
def test_zigbee2mqtt(topic: str, payload: bytes, expected: Expected) -> None:
    check(router(), topic, payload, expected)


def test_zigbee2mqtt_options() -> None:
    a = make_adapter(
        "zigbee2mqtt",
        site=SITE,
        root="z2m_east",
        kind="button",
        rename={"Kitchen Motion": "bep-chuyen-dong", "kitchen/floor_light": "den-san"},
    )
    assert a.filters == ("z2m_east/#",)
    assert not a.claims("zigbee2mqtt/bridge/state")
    assert a.parse("z2m_east/bridge/state", b"online") == [
        Availability("zigbee2mqtt", "z2m_east-bridge", "gateway", True)
    ]
    assert a.parse("z2m_east/Kitchen Motion/availability", b"online") == [
        Availability("zigbee2mqtt", "bep-chuyen-dong", "button", True)
    ]
    assert a.parse("z2m_east/kitchen/floor_light", b'{"occupancy":true}') == [
        Reading("zigbee2mqtt", "den-san", "button", {"occupancy": 1})
    ]


# ---------------------------------------------------------------------------
# make_adapter, Router, topic_matches.
# ---------------------------------------------------------------------------


def test_make_adapter_defaults() -> None:
    adapters = {name: make_adapter(name, site=SITE) for name in ADAPTER_NAMES}
    assert {n: a.name for n, a in adapters.items()} == {n: n for n in ADAPTER_NAMES}
    assert adapters["native"].filters == (f"{V}/#",)
    assert adapters["collectd"].filters == ("collectd/#",)
    assert adapters["tasmota"].filters == ("tele/#",)
    assert adapters["zigbee2mqtt"].filters == ("zigbee2mqtt/#",)
    assert adapters["esphome"].filters == (
        "+/status",
        "+/sensor/+/state",
        "+/binary_sensor/+/state",
        "+/+/sensor/+/state",
        "+/+/binary_sensor/+/state",
    )


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        (
            "mqtt",
            {},
            "unknown adapter 'mqtt': use one of native, collectd, tasmota, esphome, zigbee2mqtt",
        ),
        ("collectd", {"kind": "router"}, "kind 'router' is not one of ap, sensor"),
        ("native", {"kind": "ap"}, "native devices carry their kind in the topic"),
        ("tasmota", {"root": "tele/+"}, "adapter root 'tele/+' must be topic levels"),
        ("tasmota", {"root": "tele/"}, "adapter root 'tele/' must be topic levels"),
        ("esphome", {"root": ""}, "adapter root '' must be"),
        ("zigbee2mqtt", {"rename": {"Kitchen": "bad id"}}, "rename 'Kitchen' -> 'bad id'"),
    ],
)
def test_make_adapter_refuses_bad_config(
    name: str, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("+", r"\+")):
        make_adapter(name, site=SITE, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("site", ["", "a/b", "thon+", "#"])
def test_make_adapter_refuses_bad_site(site: str) -> None:
    with pytest.raises(ValueError, match="site"):
        make_adapter("native", site=site)


def test_router_filters_union_in_order() -> None:
    r = Router(
        [
            make_adapter("native", site=SITE),
            make_adapter("collectd", site=SITE),
            make_adapter("native", site=SITE, rename={"a": "b"}),  # same filter: once
            make_adapter("esphome", site=SITE, root="n1"),
            make_adapter("collectd", site=SITE, root="owrt"),
        ]
    )
    assert r.filters == (
        f"{V}/#",
        "collectd/#",
        "n1/status",
        "n1/sensor/+/state",
        "n1/binary_sensor/+/state",
        "n1/+/sensor/+/state",
        "n1/+/binary_sensor/+/state",
        "owrt/#",
    )
    assert Router([]).filters == ()


def test_router_first_claimant_decodes() -> None:
    ap_kind = make_adapter("tasmota", site=SITE, kind="ap")
    sensor_kind = make_adapter("tasmota", site=SITE)
    assert Router([ap_kind, sensor_kind]).parse("tele/t/LWT", b"Online")[0] == Availability(
        "tasmota", "t", "ap", True
    )
    with pytest.raises(DecodeError, match=r"^unknown topic shape: x/y$"):
        Router([ap_kind]).parse("x/y", b"")
    with pytest.raises(DecodeError) as err:
        Router([]).parse("t/" + "x" * 500, b"")
    assert len(str(err.value)) < 160  # dead-letter reasons stay short


@pytest.mark.parametrize(
    ("filter_", "topic", "matches"),
    [
        ("a/b", "a/b", True),
        ("a/b", "a/c", False),
        ("a/b", "a/b/c", False),
        ("a/+", "a/b", True),
        ("a/+", "a/b/c", False),
        ("a/+", "a/", True),  # an empty level is a level
        ("+/+", "/x", True),
        ("+", "a", True),
        ("+", "a/b", False),
        ("a/+/c", "a/b/c", True),
        ("a/+/c", "a/b/d", False),
        ("a/#", "a", True),  # '#' also matches the parent level
        ("a/#", "a/b/c", True),
        ("a/#", "ab", False),
        ("#", "a/b", True),
        ("#", "/", True),
        ("#", "$SYS/broker/uptime", False),  # '$' topics: no wildcard at the first level
        ("+/broker/uptime", "$SYS/broker/uptime", False),
        ("$SYS/#", "$SYS/broker/uptime", True),
        ("$SYS/+/uptime", "$SYS/broker/uptime", True),
        ("+/status", "livingroom/status", True),
        ("+/+/sensor/+/state", "livingroom/living_room/sensor/temperature/state", True),
        ("zigbee2mqtt/#", "zigbee2mqtt/Kitchen Motion/availability", True),
        ("A/b", "a/b", False),  # case-sensitive
    ],
)
def test_topic_matches(filter_: str, topic: str, matches: bool) -> None:
    assert topic_matches(filter_, topic) is matches


@pytest.mark.parametrize("bad", ["a/#/b", "a#", "a/b+", "#/a", "+a/b"])
def test_topic_matches_refuses_invalid_filters(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid MQTT topic filter"):
        topic_matches(bad, "a/b")


@pytest.mark.parametrize(
    "raw", [b'{"ts": "2025-11-30T17:53:20+07:00"}', b'{"ts": 1764500000}', b'{"ts": "2025-11-30"}']
)
def test_timestamps_come_out_in_utc(raw: bytes) -> None:
    # Equality of aware datetimes ignores the zone; storage wants the UTC form itself.
    (reading,) = router().parse(AP, raw)
    assert isinstance(reading, Reading) and reading.ts is not None
    assert reading.ts.tzinfo is UTC
