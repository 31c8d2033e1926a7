"""Home Assistant discovery: every config validates against HA's documented schema for
MQTT ``sensor`` and ``binary_sensor``, and its templates extract the right values.

The validator below is written from Home Assistant's own schema, not voluptuous:
- home-assistant/core ``homeassistant/components/mqtt/schemas.py``
  (MQTT_ENTITY_COMMON_SCHEMA, MQTT_AVAILABILITY_SCHEMA, MQTT_ENTITY_DEVICE_INFO_SCHEMA
  with ``validate_device_has_at_least_one_identifier``, MQTT_ORIGIN_INFO_SCHEMA);
- ``homeassistant/components/mqtt/sensor.py`` and ``binary_sensor.py`` (PLATFORM_SCHEMA:
  state_topic required by the read-only schema; device_class, state_class, units…);
- ``homeassistant/components/sensor/const.py`` (SensorDeviceClass, DEVICE_CLASS_UNITS,
  DEVICE_CLASS_STATE_CLASSES, SensorStateClass) and
  ``homeassistant/components/binary_sensor/__init__.py`` (BinarySensorDeviceClass);
- docs: https://www.home-assistant.io/integrations/sensor.mqtt/ ("availability_mode:
  Valid entries are all, any, and latest"; "device … Only works when unique_id is set");
- discovery topic ``<prefix>/<component>/[<node_id>/]<object_id>/config`` with
  node_id and object_id matching ``[a-zA-Z0-9_-]+`` (mqtt/discovery.py TOPIC_MATCHER);
- ``object_id`` is deprecated since HA 2025.10 for ``default_entity_id`` (HA's warning:
  "This will stop working in Home Assistant Core 2026.4"), so it is refused here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import jinja2
import pytest

from hub.ingest.discovery import (
    DeviceInfo,
    HomeAssistantMirror,
    Message,
    config_topic,
    device_configs,
    device_removals,
    health_payload,
    hub_configs,
    is_native,
    metric_spec,
    mirror_payload,
    removal,
    slug,
    state_topic_for,
)

SITE = "thon-dong"

# -- Home Assistant's schema, as documented ---------------------------------------------------
# MQTT_ENTITY_COMMON_SCHEMA (+ MQTT_AVAILABILITY_SCHEMA) and the read-only platform keys.
COMMON_KEYS = {
    "availability",
    "availability_mode",
    "availability_template",
    "availability_topic",
    "payload_available",
    "payload_not_available",
    "device",
    "origin",
    "enabled_by_default",
    "entity_category",
    "entity_picture",
    "icon",
    "json_attributes_topic",
    "json_attributes_template",
    "default_entity_id",
    "unique_id",
    "name",
    "qos",
    "encoding",
    "state_topic",
    "value_template",
}
PLATFORM_KEYS = {
    "sensor": {
        "device_class",
        "expire_after",
        "force_update",
        "last_reset_value_template",
        "options",
        "state_class",
        "suggested_display_precision",
        "unit_of_measurement",
    },
    "binary_sensor": {
        "device_class",
        "expire_after",
        "force_update",
        "off_delay",
        "payload_off",
        "payload_on",
    },
}
DEVICE_KEYS = {
    "identifiers",
    "connections",
    "manufacturer",
    "model",
    "model_id",
    "name",
    "hw_version",
    "serial_number",
    "sw_version",
    "via_device",
    "suggested_area",
    "configuration_url",
}
ORIGIN_KEYS = {"name", "sw_version", "support_url"}
AVAILABILITY_ENTRY_KEYS = {"topic", "payload_available", "payload_not_available", "value_template"}
AVAILABILITY_MODES = {"all", "any", "latest"}
STATE_CLASSES = {"measurement", "total", "total_increasing"}
ENTITY_CATEGORIES = {"config", "diagnostic"}

# sensor/const.py: DEVICE_CLASS_UNITS (the classes used here and a few more). A class
# mapped to {None} takes no unit.
UNIT_OF_INFORMATION = {
    "bit", "kbit", "Mbit", "Gbit", "B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB",
    "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB",
}  # fmt: skip
SENSOR_DEVICE_CLASS_UNITS: dict[str, set[str | None]] = {
    "signal_strength": {"dB", "dBm"},
    "temperature": {"°C", "°F", "K"},
    "distance": {"mm", "cm", "m", "km", "in", "ft", "yd", "mi", "nmi"},
    "battery": {"%"},
    "humidity": {"%"},
    "moisture": {"%"},
    "data_size": set(UNIT_OF_INFORMATION),
    "duration": {"d", "h", "min", "s", "ms"},
    "voltage": {"V", "mV", "µV", "kV", "MV"},
    "illuminance": {"lx"},
    "aqi": {None},
}
# sensor/const.py: DEVICE_CLASS_STATE_CLASSES for the same classes.
SENSOR_DEVICE_CLASS_STATE_CLASSES: dict[str, set[str]] = {
    "signal_strength": {"measurement"},
    "temperature": {"measurement"},
    "distance": set(STATE_CLASSES),
    "battery": {"measurement"},
    "humidity": {"measurement"},
    "moisture": {"measurement"},
    "data_size": set(STATE_CLASSES),
    "duration": set(STATE_CLASSES),
    "voltage": {"measurement"},
    "illuminance": {"measurement"},
    "aqi": {"measurement"},
}
# Every SensorDeviceClass value (sensor/const.py).
SENSOR_DEVICE_CLASSES = {
    "date", "enum", "timestamp", "apparent_power", "aqi", "area", "atmospheric_pressure",
    "battery", "blood_glucose_concentration", "carbon_monoxide", "carbon_dioxide",
    "conductivity", "current", "data_rate", "data_size", "distance", "duration", "energy",
    "energy_distance", "energy_storage", "frequency", "gas", "humidity", "illuminance",
    "irradiance", "moisture", "monetary", "nitrogen_dioxide", "nitrogen_monoxide",
    "nitrous_oxide", "ozone", "ph", "pm1", "pm10", "pm25", "power_factor", "power",
    "precipitation", "precipitation_intensity", "pressure", "reactive_power",
    "signal_strength", "sound_pressure", "speed", "sulphur_dioxide", "temperature",
    "temperature_delta", "volatile_organic_compounds", "volatile_organic_compounds_parts",
    "voltage", "volume", "volume_storage", "volume_flow_rate", "water", "weight",
    "wind_direction", "wind_speed",
}  # fmt: skip
NON_NUMERIC_SENSOR_CLASSES = {"date", "enum", "timestamp"}
# Every BinarySensorDeviceClass value (binary_sensor/__init__.py).
BINARY_SENSOR_DEVICE_CLASSES = {
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
    "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving",
    "occupancy", "opening", "plug", "power", "presence", "problem", "running", "safety",
    "smoke", "sound", "tamper", "update", "vibration", "window",
}  # fmt: skip

DISCOVERY_TOPIC = re.compile(
    r"^homeassistant/(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?"
    r"(?P<object_id>[a-zA-Z0-9_-]+)/config$"
)
ENTITY_ID = re.compile(r"^(?!.+__)(?!_)[\da-z_]+(?<!_)\.(?!_)[\da-z_]+(?<!_)$")  # cv.entity_id
ICON = re.compile(r"^[^:\s]+:[^:\s]+$")  # cv.icon: "prefix:name"


def _topic_ok(t: object) -> bool:
    # valid_subscribe_topic / publish topic: non-empty UTF-8, no NUL, wildcards only whole.
    return (
        isinstance(t, str)
        and 0 < len(t.encode()) <= 65535
        and "\0" not in t
        and "+" not in t
        and "#" not in t
    )


def _template_ok(t: object) -> bool:
    if not (isinstance(t, str) and ("{{" in t or "{%" in t)):
        return False
    jinja2.Environment().parse(t)  # raises on a syntax error
    return True


def validate(component: str, cfg: Mapping[str, Any]) -> list[str]:
    """Problems HA's schema would find in one discovery config (empty: valid)."""
    errors: list[str] = []
    allowed = COMMON_KEYS | PLATFORM_KEYS[component]
    errors += [f"unknown key {k!r}" for k in cfg if k not in allowed]
    if not _topic_ok(cfg.get("state_topic")):
        errors.append("state_topic is required and must be a topic")
    if "device" in cfg:
        dev = cfg["device"]
        if "unique_id" not in cfg:
            errors.append("device needs unique_id")
        errors += [f"unknown device key {k!r}" for k in dev if k not in DEVICE_KEYS]
        if not (dev.get("identifiers") or dev.get("connections")):
            errors.append("device needs identifiers or connections")
        ids = dev.get("identifiers", [])
        if not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
            errors.append("identifiers must be strings")
        for k in DEVICE_KEYS - {"identifiers", "connections"}:
            if k in dev and not isinstance(dev[k], str):
                errors.append(f"device.{k} must be a string")
    if "origin" in cfg:
        o = cfg["origin"]
        errors += [f"unknown origin key {k!r}" for k in o if k not in ORIGIN_KEYS]
        if not isinstance(o.get("name"), str):
            errors.append("origin.name is required")
    if "availability" in cfg:
        if "availability_topic" in cfg:
            errors.append("availability and availability_topic are exclusive")
        for a in cfg["availability"]:
            if not _topic_ok(a.get("topic")):
                errors.append("availability entry needs a topic")
            errors += [
                f"unknown availability key {k!r}" for k in a if k not in AVAILABILITY_ENTRY_KEYS
            ]
    if cfg.get("availability_mode", "latest") not in AVAILABILITY_MODES:
        errors.append("availability_mode must be all, any or latest")
    if "unique_id" in cfg and not isinstance(cfg["unique_id"], str):
        errors.append("unique_id must be a string")
    if "default_entity_id" in cfg:
        eid = cfg["default_entity_id"]
        if not (isinstance(eid, str) and ENTITY_ID.match(eid) and eid.startswith(component + ".")):
            errors.append(f"default_entity_id {eid!r} is not a {component} entity id")
    if "icon" in cfg and not ICON.match(cfg["icon"]):
        errors.append("icon must be prefix:name")
    if "entity_category" in cfg and cfg["entity_category"] not in ENTITY_CATEGORIES:
        errors.append("bad entity_category")
    for k in ("value_template", "json_attributes_template", "availability_template"):
        if k in cfg and not _template_ok(cfg[k]):
            errors.append(f"{k} is not a template")
    if "qos" in cfg and cfg["qos"] not in (0, 1, 2):
        errors.append("qos must be 0, 1 or 2")
    dc = cfg.get("device_class")
    if component == "binary_sensor":
        if dc is not None and dc not in BINARY_SENSOR_DEVICE_CLASSES:
            errors.append(f"unknown binary_sensor device_class {dc!r}")
        for k in ("payload_on", "payload_off"):
            if k in cfg and not isinstance(cfg[k], str):
                errors.append(f"{k} must be a string")
    else:
        unit, sc = cfg.get("unit_of_measurement"), cfg.get("state_class")
        if dc is not None and dc not in SENSOR_DEVICE_CLASSES:
            errors.append(f"unknown sensor device_class {dc!r}")
        if sc is not None and sc not in STATE_CLASSES:
            errors.append(f"unknown state_class {sc!r}")
        if dc in NON_NUMERIC_SENSOR_CLASSES and (sc is not None or unit is not None):
            errors.append(f"device_class {dc} takes no state_class nor unit")
        if dc in SENSOR_DEVICE_CLASS_UNITS and unit not in SENSOR_DEVICE_CLASS_UNITS[dc]:
            errors.append(f"unit {unit!r} is not valid for device_class {dc}")
        if sc is not None and sc not in SENSOR_DEVICE_CLASS_STATE_CLASSES.get(dc or "", {sc}):
            errors.append(f"state_class {sc} is not valid for device_class {dc}")
        if "options" in cfg and dc != "enum":
            errors.append("options needs device_class enum")
    return errors


# -- the village -----------------------------------------------------------------------------
AP_METRICS = (
    "clients", "rx_bytes", "tx_bytes", "signal_dbm", "noise_dbm", "channel", "uptime_s",
    "cpu_pct", "mem_pct", "temp_c",
)  # fmt: skip
DEVICES = [
    DeviceInfo("ap-nvh", "ap", name="Wifi nhà văn hoá", metrics=AP_METRICS, info={"fw": "23.05.3"}),
    DeviceInfo(
        "cam-bien-song", "sensor", metrics=("water_level_cm", "battery_pct", "humidity_pct")
    ),
    DeviceInfo("ap-xom-tay", "ap", source="collectd", metrics=("cpu_pct", "clients", "temp_c")),
    DeviceInfo(
        "tasmota-bom", "sensor", source="tasmota", metrics=("SI7021.Temperature", "rssi_pct")
    ),
    DeviceInfo("zb-cua", "sensor", source="zigbee2mqtt", metrics=("linkquality", "contact")),
    DeviceInfo("loa-1", "speaker", metrics=("volume_pct",)),
    DeviceInfo("nut-khan", "button"),
    DeviceInfo("ap-doi-ten", "ap", metrics=("clients",), wire_id="AP_Old-Name", has_status=False),
]


def all_messages() -> list[Message]:
    out = hub_configs(SITE, version="0.1.0")
    for d in DEVICES:
        out += device_configs(SITE, d, version="0.1.0")
    return out


def component_of(topic: str) -> str:
    m = DISCOVERY_TOPIC.match(topic)
    assert m, topic
    return m["component"]


@pytest.mark.parametrize("msg", all_messages(), ids=lambda m: m.topic.split("/", 2)[2])
def test_config_validates_against_home_assistants_schema(msg: Message) -> None:
    m = DISCOVERY_TOPIC.match(msg.topic)
    assert m is not None, f"not a discovery topic: {msg.topic}"
    assert m["component"] in ("sensor", "binary_sensor")
    assert m["node_id"] == f"langso_{SITE}"
    assert msg.retain is True
    cfg = json.loads(msg.payload)
    assert validate(m["component"], cfg) == []


def test_the_validator_finds_faults() -> None:
    good = json.loads(device_configs(SITE, DEVICES[0])[0].payload)
    assert validate("sensor", good) == []
    faults: list[tuple[dict[str, Any], str]] = [
        ({"stat_t": "x"}, "unknown key 'stat_t'"),  # abbreviations are not used
        ({"object_id": "x"}, "unknown key 'object_id'"),
        ({"state_topic": None}, "state_topic is required"),
        ({"availability_mode": "most"}, "availability_mode"),
        ({"device_class": "signal_strength", "unit_of_measurement": "%"}, "not valid for"),
        ({"device_class": "temperature", "state_class": "total"}, "state_class total"),
        ({"device_class": "wifi"}, "unknown sensor device_class"),
        ({"value_template": "value_json.x"}, "not a template"),
        ({"device": {"name": "x"}}, "identifiers or connections"),
        ({"availability": [{"payload_available": "online"}]}, "needs a topic"),
        ({"default_entity_id": "binary_sensor.x"}, "not a sensor entity id"),
    ]
    for change, expected in faults:
        errors = validate("sensor", {**good, **change})
        assert any(expected in e for e in errors), (change, errors)
    no_uid = {k: v for k, v in good.items() if k != "unique_id"}
    assert "device needs unique_id" in validate("sensor", no_uid)
    assert validate("binary_sensor", {**good, "device_class": "wifi"})


def test_unique_ids_and_topics_are_unique() -> None:
    msgs = all_messages()
    uids = [json.loads(m.payload)["unique_id"] for m in msgs]
    assert len(uids) == len(set(uids))
    assert len({m.topic for m in msgs}) == len(msgs)
    eids = [json.loads(m.payload)["default_entity_id"] for m in msgs]
    assert len(eids) == len(set(eids))


def test_known_metrics_have_their_class_and_unit() -> None:
    cfgs = {
        json.loads(m.payload)["unique_id"]: json.loads(m.payload)
        for d in DEVICES[:2]
        for m in device_configs(SITE, d)
    }

    def show(metric: str, dev: str = "ap-nvh") -> tuple[Any, ...]:
        c = cfgs[f"langso_{SITE}_{dev}_{metric}"]
        return c.get("device_class"), c.get("unit_of_measurement"), c.get("state_class")

    assert show("signal_dbm") == ("signal_strength", "dBm", "measurement")
    assert show("temp_c") == ("temperature", "°C", "measurement")
    assert show("rx_bytes") == ("data_size", "B", "total_increasing")
    assert show("tx_bytes") == ("data_size", "B", "total_increasing")
    assert show("cpu_pct") == (None, "%", "measurement")
    assert show("mem_pct") == (None, "%", "measurement")
    assert show("clients") == (None, "clients", "measurement")
    assert show("water_level_cm", "cam-bien-song") == ("distance", "cm", "measurement")
    assert show("battery_pct", "cam-bien-song") == ("battery", "%", "measurement")
    assert show("humidity_pct", "cam-bien-song") == ("humidity", "%", "measurement")
    assert metric_spec("soil_temp_c").device_class == "temperature"
    assert metric_spec("mystery").unit is None


def test_device_block_availability_and_state_topics() -> None:
    ap = json.loads(device_configs(SITE, DEVICES[0], version="0.1.0")[0].payload)
    assert ap["device"] == {
        "identifiers": [f"langso_{SITE}_ap-nvh"],
        "name": "Wifi nhà văn hoá",
        "manufacturer": "Làng Số Hub",
        "model": "ap",
        "via_device": f"langso_{SITE}_hub",
        "sw_version": "23.05.3",
    }
    assert ap["state_topic"] == f"village/{SITE}/ap/ap-nvh/state"
    assert [a["topic"] for a in ap["availability"]] == [
        f"village/{SITE}/hub/status",
        f"village/{SITE}/ap/ap-nvh/status",
    ]
    assert ap["availability_mode"] == "all"
    foreign = json.loads(device_configs(SITE, DEVICES[2])[0].payload)
    assert foreign["state_topic"] == f"village/{SITE}/hub/devices/ap-xom-tay/state"
    assert [a["topic"] for a in foreign["availability"]] == [f"village/{SITE}/hub/status"]
    renamed = json.loads(device_configs(SITE, DEVICES[7])[0].payload)
    assert renamed["state_topic"] == f"village/{SITE}/ap/AP_Old-Name/state"
    assert len(renamed["availability"]) == 1  # has_status=False
    assert not is_native(DEVICES[5])  # a speaker has no native state topic: the mirror
    assert state_topic_for(SITE, DEVICES[5]) == f"village/{SITE}/hub/devices/loa-1/state"
    # The hub's device exists, so via_device points at something.
    hub = {json.loads(m.payload)["device"]["identifiers"][0] for m in hub_configs(SITE)}
    assert hub == {f"langso_{SITE}_hub"}


def test_connectivity_follows_the_health_topic() -> None:
    conn = json.loads(device_configs(SITE, DEVICES[0])[-1].payload)
    assert conn["device_class"] == "connectivity"
    assert conn["state_topic"] == f"village/{SITE}/hub/devices/ap-nvh/health"
    assert health_payload("online").decode() == conn["payload_on"]
    assert health_payload("degraded").decode() == conn["payload_on"]
    assert health_payload("offline").decode() == conn["payload_off"]
    assert health_payload("unknown") == b"None"  # HA's payload for an unknown state
    # Only the hub's availability: an offline device shows OFF, not "unavailable".
    assert [a["topic"] for a in conn["availability"]] == [f"village/{SITE}/hub/status"]


# -- the templates, rendered as HA renders them (value, value_json) ---------------------------
def render(template: str, payload: bytes | str) -> str:
    raw = payload.decode() if isinstance(payload, bytes) else payload
    try:
        value_json: Any = json.loads(raw)
    except ValueError:
        value_json = None
    return jinja2.Environment().from_string(template).render(value=raw, value_json=value_json)


def configs_by_uid(device: DeviceInfo) -> dict[str, dict[str, Any]]:
    return {
        json.loads(m.payload)["unique_id"]: json.loads(m.payload)
        for m in device_configs(SITE, device)
    }


def test_value_templates_extract_native_readings() -> None:
    cfgs = configs_by_uid(DEVICES[0])
    state = json.dumps({"signal_dbm": -67, "clients": 12, "rx_bytes": 123456789, "ssid": "x"})
    p = f"langso_{SITE}_ap-nvh_"
    assert render(cfgs[p + "signal_dbm"]["value_template"], state) == "-67"
    assert render(cfgs[p + "clients"]["value_template"], state) == "12"
    assert render(cfgs[p + "rx_bytes"]["value_template"], state) == "123456789"
    # A field this message did not carry renders empty: HA keeps the last value.
    assert render(cfgs[p + "temp_c"]["value_template"], state) == ""


def test_value_templates_extract_mirrored_readings() -> None:
    cfgs = configs_by_uid(DEVICES[3])
    mirror = mirror_payload({"SI7021.Temperature": 27.5, "rssi_pct": 84.0, "bad": float("nan")})
    assert json.loads(mirror) == {"SI7021.Temperature": 27.5, "rssi_pct": 84}
    p = f"langso_{SITE}_tasmota-bom_"
    assert render(cfgs[p + "SI7021.Temperature"]["value_template"], mirror) == "27.5"
    assert render(cfgs[p + "rssi_pct"]["value_template"], mirror) == "84"


def test_on_air_templates() -> None:
    by_uid = {json.loads(m.payload)["unique_id"]: json.loads(m.payload) for m in hub_configs(SITE)}
    on_air = by_uid[f"langso_{SITE}_hub_on_air"]
    title = by_uid[f"langso_{SITE}_hub_on_air_title"]
    assert on_air["state_topic"] == title["state_topic"] == f"village/{SITE}/playout/state"
    playing = json.dumps(
        {"state": "playing", "announcement_id": "a1", "title": "Họp thôn lúc 19:30"},
        ensure_ascii=False,
    )
    idle = json.dumps({"state": "idle", "announcement_id": None, "title": None})
    assert render(on_air["value_template"], playing) == on_air["payload_on"] == "ON"
    assert render(on_air["value_template"], idle) == on_air["payload_off"] == "OFF"
    assert render(title["value_template"], playing) == "Họp thôn lúc 19:30"
    assert render(title["value_template"], idle) == ""


def test_removals_empty_every_config_of_a_device() -> None:
    d = DEVICES[0]
    rm = device_removals(SITE, d)
    assert [m.topic for m in rm] == [m.topic for m in device_configs(SITE, d)]
    assert all(m.payload == "" and m.retain for m in rm)
    assert removal("homeassistant/sensor/x/y/config") == (
        "homeassistant/sensor/x/y/config",
        "",
        True,
    )


def test_object_ids_are_slugs() -> None:
    assert slug("ap-01_clients") == "ap-01_clients"
    assert re.fullmatch(r"[a-zA-Z0-9_-]+", slug("a.b c/ö"))
    assert slug("a.b") != slug("a_b")  # the hash keeps them apart
    assert DISCOVERY_TOPIC.match(config_topic("sensor", SITE, "x.y/z+#"))


# -- the mirror's queue ----------------------------------------------------------------------
def test_the_mirror_publishes_configs_in_bounded_bursts() -> None:
    sent: list[str] = []
    mirror = HomeAssistantMirror(SITE, lambda topic, payload, retain: sent.append(topic))
    devices = [
        DeviceInfo(f"ap-{i:03d}", "ap", metrics=("clients", "cpu_pct", "signal_dbm"))
        for i in range(100)
    ]
    for d in devices:
        mirror.device(d)
    assert sent == [] and mirror.pending == 100
    per_device = len(device_configs(SITE, devices[0]))
    assert mirror.drain(50) == len(sent) < 50 + per_device
    while mirror.drain():
        assert len(sent) <= len(set(sent))  # never a config twice
    assert mirror.pending == 0
    assert sorted(sent) == sorted(m.topic for d in devices for m in device_configs(SITE, d))
    # A known device with known metrics waits for nothing; a new metric queues it again.
    sent.clear()
    mirror.device(devices[0])
    assert mirror.pending == 0
    mirror.device(DeviceInfo("ap-000", "ap", metrics=("clients", "temp_c")))
    assert mirror.pending == 1
    mirror.drain()
    assert config_topic("sensor", SITE, "ap-000_temp_c") in sent


def test_a_reconnect_publishes_the_hubs_configs_at_once_and_queues_every_device() -> None:
    sent: list[str] = []
    mirror = HomeAssistantMirror(SITE, lambda topic, payload, retain: sent.append(topic))
    devices = [DeviceInfo(f"s-{i}", "sensor", metrics=("water_level_cm",)) for i in range(300)]
    for d in devices:
        mirror.device(d)
    while mirror.drain():
        pass
    sent.clear()
    mirror.connected(devices)
    assert sent == [m.topic for m in hub_configs(SITE)]
    assert mirror.pending == 300
    while mirror.drain():
        pass
    assert len(sent) == len(hub_configs(SITE)) + 300 * 2


def test_the_mirror_waits_while_earlier_publishes_are_unacknowledged() -> None:
    sent: list[str] = []
    backlog = [HomeAssistantMirror.burst]
    mirror = HomeAssistantMirror(
        SITE, lambda topic, payload, retain: sent.append(topic), backlog=lambda: backlog[0]
    )
    for i in range(10):
        mirror.device(DeviceInfo(f"ap-{i}", "ap", metrics=("clients",)))
    assert mirror.drain() == 0 and sent == [] and mirror.pending == 10
    backlog[0] = HomeAssistantMirror.burst - 4  # room for two devices of two configs
    assert mirror.drain() == 4 and mirror.pending == 8
    backlog[0] = 0
    assert mirror.drain() == 16 and mirror.pending == 0


def test_the_mirror_publishes_at_most_its_limit_of_configs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sent: list[str] = []
    mirror = HomeAssistantMirror(
        SITE, lambda topic, payload, retain: sent.append(topic), max_configs=20
    )
    mirror.connected([])
    assert len(sent) == 3  # the hub's own entities count too
    wide = DeviceInfo("ap-wide", "ap", metrics=tuple(f"k{i}" for i in range(30)))
    mirror.device(wide)
    mirror.device(DeviceInfo("ap-late", "ap", metrics=("clients",)))
    while mirror.drain():
        pass
    assert len(sent) == len(set(sent)) == 20
    # 31 configs of ap-wide (30 metrics and its connectivity) minus 17 sent, and ap-late's 2.
    assert mirror.limit.withheld == 14 + 2
    warnings = [r for r in caplog.records if "max_discovery_configs" in r.getMessage()]
    assert len(warnings) == 1, "logged once, not per device or per drain"
    # A config already out is sent again (a new metric re-sends the device's configs);
    # nothing new gets past the limit.
    sent.clear()
    mirror.device(DeviceInfo("ap-wide", "ap", metrics=(*wide.metrics, "k99")))
    mirror.drain()
    assert len(sent) == 17 and config_topic("sensor", SITE, "ap-wide_k99") not in sent
    # A reconnect publishes everything again: the count starts again, the limit holds.
    sent.clear()
    mirror.connected([wide])
    while mirror.drain():
        pass
    assert len(sent) == 20


def test_a_limit_of_zero_publishes_no_config() -> None:
    sent: list[str] = []
    mirror = HomeAssistantMirror(
        SITE, lambda topic, payload, retain: sent.append(topic), max_configs=0
    )
    mirror.connected([DeviceInfo("ap-1", "ap", metrics=("clients",))])
    while mirror.drain():
        pass
    assert sent == [] and mirror.limit.withheld == 3 + 2
