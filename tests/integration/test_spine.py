"""The event spine against a real Mosquitto, real SQLite and real HTTP."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.broker import Broker
from tests.hubtest import InProcessHub, hub_settings, wait_for

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def village(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessHub]:
    h = InProcessHub(hub_settings(broker, tmp_path_factory.mktemp("spine")))
    yield h
    h.stop()


def pub(broker: Broker, topic: str, payload: str | bytes, *, retain: bool = False) -> None:
    """Publish with the real mosquitto_pub, QoS 1."""
    args = ["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-q", "1", "-t", topic]
    if retain:
        args.append("-r")
    data = payload.encode() if isinstance(payload, str) else payload
    subprocess.run([*args, "-s"], input=data, check=True, timeout=10)


def device(v: InProcessHub, device_id: str) -> dict[str, object] | None:
    r = v.http("technician").get(f"/api/devices/{device_id}")
    return r.json() if r.status_code == 200 else None


def test_a_message_shows_in_the_api_within_a_second(village: InProcessHub, broker: Broker) -> None:
    site = village.settings.site
    pub(
        broker,
        f"village/{site}/ap/ap-fast/state",
        json.dumps({"clients": 7, "signal_dbm": -61, "ssid": "LangSo-Free"}),
    )
    c = village.http("technician")
    found = wait_for(
        lambda: [d for d in c.get("/api/devices").json() if d["id"] == "ap-fast"],
        timeout=1.0,
        what="ap-fast in GET /api/devices",
    )
    d = found[0]
    assert d["kind"] == "ap" and d["status"] == "online"
    assert d["metrics"] == {"clients": 7, "signal_dbm": -61}
    assert d["info"] == {"ssid": "LangSo-Free"}
    assert d["last_seen"].endswith("Z")


def test_will_fires_device_offline_and_alert_raised_then_cleared(
    village: InProcessHub, broker: Broker
) -> None:
    site = village.settings.site
    status = f"village/{site}/ap/ap-will/status"
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id="ap-will")
    c.will_set(status, b"offline", qos=1, retain=True)
    c.connect(broker.host, broker.port)
    c.loop_start()
    c.publish(status, b"online", qos=1, retain=True).wait_for_publish(5)
    c.publish(f"village/{site}/ap/ap-will/state", b'{"clients": 3}', qos=1).wait_for_publish(5)
    wait_for(lambda: (device(village, "ap-will") or {}).get("status") == "online", 3, "online")
    # An unclean drop (power cut at the AP): the socket closes without DISCONNECT.
    c.loop_stop()
    sock = c.socket()
    assert sock is not None
    sock.close()
    wait_for(lambda: (device(village, "ap-will") or {}).get("status") == "offline", 5, "offline")
    alerts = (
        village.http("technician")
        .get("/api/alerts", params={"state": "open", "device": "ap-will"})
        .json()
    )
    assert [(a["rule"], a["state"]) for a in alerts] == [("offline", "raised")]
    # It comes back: the alert is cleared, the same incident id.
    pub(broker, status, "online", retain=True)
    wait_for(lambda: (device(village, "ap-will") or {}).get("status") == "online", 3, "back")
    cleared = village.http("technician").get("/api/alerts", params={"device": "ap-will"}).json()
    assert [(a["id"], a["state"]) for a in cleared] == [(alerts[0]["id"], "cleared")]


def test_alert_is_published_on_mqtt(village: InProcessHub, broker: Broker) -> None:
    site = village.settings.site
    got: list[dict[str, object]] = []
    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id="alert-watcher")
    sub.on_message = lambda c, u, m: got.append(json.loads(m.payload))
    sub.connect(broker.host, broker.port)
    sub.subscribe(f"village/{site}/alerts/+", qos=1)
    sub.loop_start()
    try:
        wait_for(lambda: sub.is_connected(), 3, "watcher connected")
        pub(broker, f"village/{site}/sensor/wl-mqtt/status", "offline")
        wait_for(lambda: any(a["device_id"] == "wl-mqtt" for a in got), 5, "alert on MQTT")
        a = next(a for a in got if a["device_id"] == "wl-mqtt")
        assert a["state"] == "raised" and a["rule"] == "offline"
    finally:
        sub.loop_stop()
        sub.disconnect()


def test_collectd_ap_that_falls_silent_turns_offline_after_its_timeout(
    village: InProcessHub, broker: Broker
) -> None:
    # collectd sends no will: only silence tells. The AP timeout is 300 s (config).
    pub(broker, "collectd/ap-quiet/iwinfo-wlan0/stations", b"1796001076.906:7\x00")
    wait_for(lambda: device(village, "ap-quiet"), 3, "collectd AP seen")
    assert device(village, "ap-quiet")["status"] == "online"  # type: ignore[index]
    clock = village.clock
    clock.advance(299)  # type: ignore[attr-defined]
    village.tick()
    assert device(village, "ap-quiet")["status"] == "online"  # type: ignore[index]
    clock.advance(2)  # type: ignore[attr-defined]
    village.tick()
    d = device(village, "ap-quiet")
    assert d is not None and d["status"] == "offline"
    assert d["open_alerts"][0]["rule"] == "offline"  # type: ignore[index]


def test_malformed_messages_go_to_dead_letters_and_valid_traffic_flows(
    village: InProcessHub, broker: Broker
) -> None:
    site = village.settings.site
    bad: list[tuple[str, bytes]] = [
        (f"village/{site}/ap/ap-bad/state", b"\xff\xfe not utf-8"),
        (f"village/{site}/ap/ap-bad/state", b"{not json"),
        (f"village/{site}/ap/ap-bad/state", b'{"clients": "many"}'),
        (f"village/{site}/sensor/wl-bad/state", b"[1, 2, 3]"),
        (f"village/{site}/ap/ap-bad/state", b'{"clients": ' + b"1" * 20_000 + b"}"),
        (f"village/{site}/nonsense/x/y/z", b"{}"),
        (f"village/{site}/button/b1/event", b'{"action": "dance"}'),
    ]
    n_each = 143  # 7 kinds x 143 = 1,001 malformed messages
    before = village.hub.ingest.stats.dead_letters
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id="fuzzer")
    c.max_inflight_messages_set(200)
    c.connect(broker.host, broker.port)
    c.loop_start()
    try:
        infos = []
        for i in range(n_each):
            for topic, payload in bad:
                infos.append(c.publish(topic, payload, qos=1))
            # Valid traffic interleaved with the garbage keeps flowing.
            infos.append(
                c.publish(
                    f"village/{site}/sensor/wl-good/state",
                    json.dumps({"water_level_cm": 100 + i}),
                    qos=1,
                )
            )
        for info in infos:
            info.wait_for_publish(10)
    finally:
        c.loop_stop()
        c.disconnect()
    total = n_each * len(bad)
    wait_for(
        lambda: village.hub.ingest.stats.dead_letters - before >= total,
        15,
        "all malformed messages dead-lettered",
    )
    assert village.hub.ingest.stats.dead_letters - before == total
    rows = village.hub.store.query(
        "SELECT reason, count(*) AS n FROM dead_letters WHERE topic LIKE ? OR topic LIKE ?"
        " GROUP BY substr(reason, 1, 12)",
        (f"village/{site}/%bad%", f"village/{site}/nonsense/%"),
    )
    assert sum(r["n"] for r in rows) == n_each * 6
    reasons = {r["reason"].split(":")[0] for r in rows}
    assert {"not UTF-8", "not JSON", "payload too large"} <= reasons or len(reasons) >= 5
    series = (
        village.http("technician")
        .get(
            "/api/devices/wl-good/metrics",
            params={"name": "water_level_cm", "since": "0"},
        )
        .json()
    )
    assert [p["value"] for p in series] == [100 + i for i in range(n_each)]
    # Raw bytes kept (capped) with the topic and a readable reason.
    dl = village.http("technician").get("/api/dead-letters", params={"limit": 2000}).json()
    big = next(d for d in dl if d["size"] > 20_000)
    assert big["reason"].startswith("payload too large")
    assert len(big["payload"]) == village.settings.ingest.dead_letter_bytes
    assert village.http("technician").get("/api/health").json()["status"] == "ok"


def test_an_exception_while_handling_one_message_costs_only_that_message(
    village: InProcessHub, broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = village.settings.site
    router = village.hub.ingest.router
    real = router.parse

    def flaky(topic: str, payload: bytes) -> list[object]:
        if topic.endswith("/boom/state"):
            raise RuntimeError("adapter bug")
        return real(topic, payload)  # type: ignore[return-value]

    monkeypatch.setattr(router, "parse", flaky)
    pub(broker, f"village/{site}/sensor/boom/state", '{"x": 1}')
    pub(broker, f"village/{site}/sensor/after-boom/state", '{"x": 2}')
    wait_for(lambda: device(village, "after-boom"), 3, "traffic after the failing message")
    dl = village.hub.store.one(
        "SELECT reason FROM dead_letters WHERE topic=?", (f"village/{site}/sensor/boom/state",)
    )
    assert dl is not None and dl["reason"] == "internal error: RuntimeError: adapter bug"
    assert village.hub.mqtt.thread_alive
    assert village.http().get("/api/health").status_code == 200


def test_health_says_error_while_nothing_is_committed(
    village: InProcessHub, broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = village.settings.site
    ingest = village.hub.ingest

    def broken(batch: object) -> None:
        raise OSError("disk I/O error")

    monkeypatch.setattr(ingest, "_process", broken)
    pub(broker, f"village/{site}/sensor/stuck/state", '{"x": 1}')
    wait_for(lambda: ingest.stats.commit_failures > 0, 3, "a failed commit")
    village.clock.advance(60)  # type: ignore[attr-defined]
    r = wait_for(
        lambda: (lambda r: r if r.status_code == 503 else None)(village.http().get("/api/health")),
        3,
        "health 503",
    )
    body = r.json()
    assert body["status"] == "error"
    assert any("nothing committed" in p and "disk I/O error" in p for p in body["problems"])
    monkeypatch.undo()
    # The batch was never acknowledged nor lost: once the disk is back, it is stored.
    wait_for(lambda: device(village, "stuck"), 10, "the held batch committed after recovery")
    assert village.http().get("/api/health").status_code == 200


def test_auth_401_and_403(village: InProcessHub) -> None:
    anon = village.http()
    for path in (
        "/api/devices",
        "/api/devices/x",
        "/api/events",
        "/api/alerts",
        "/api/devices/x/metrics?name=a",
        "/api/dead-letters",
    ):
        r = anon.get(path)
        assert r.status_code == 401, path
        assert r.json()["detail"]
    assert anon.get("/api/devices", headers={"Authorization": "Bearer nope"}).status_code == 401
    head = village.http("head")
    assert head.get("/api/devices").status_code == 403
    assert village.http("admin").get("/api/devices").status_code == 200
    bad = anon.post("/api/auth/token", data={"username": "technician1", "password": "wrong"})
    assert bad.status_code == 401


def test_login_is_throttled(village: InProcessHub) -> None:
    anon = village.http()
    codes = [
        anon.post("/api/auth/token", data={"username": "guesser", "password": "wrong"}).status_code
        for _ in range(village.settings.http.login_attempts + 1)
    ]
    assert codes[-1] == 429 and set(codes[:-1]) == {401}


def test_bad_queries_get_4xx_with_a_reason(village: InProcessHub) -> None:
    t = village.http("technician")
    r = t.get("/api/events", params={"since": "yesterday-ish"})
    assert r.status_code == 422 and "since" in r.json()["detail"]
    r = t.get("/api/events", params={"limit": 0})
    assert r.status_code == 422 and "limit" in r.json()["detail"]
    assert t.get("/api/devices/no-such").status_code == 404
    assert t.get("/api/devices", params={"status": "sleepy"}).status_code == 422


def test_events_are_listed_newest_first(village: InProcessHub, broker: Broker) -> None:
    site = village.settings.site
    for level in (120, 121, 122):
        pub(broker, f"village/{site}/sensor/wl-ev/state", json.dumps({"water_level_cm": level}))
    t = village.http("technician")
    events = wait_for(
        lambda: (lambda e: e if len(e) == 3 else None)(
            t.get("/api/events", params={"device": "wl-ev"}).json()
        ),
        3,
        "3 events",
    )
    assert [e["data"]["metrics"]["water_level_cm"] for e in events] == [122, 121, 120]


def test_openapi_lists_the_contract(village: InProcessHub) -> None:
    paths = village.http().get("/openapi.json").json()["paths"]
    for p in (
        "/api/health",
        "/api/auth/token",
        "/api/devices",
        "/api/devices/{device_id}",
        "/api/devices/{device_id}/metrics",
        "/api/events",
        "/api/alerts",
    ):
        assert p in paths


def test_data_dir_is_where_the_settings_say(village: InProcessHub) -> None:
    assert Path(village.settings.db_path).exists()


def test_prometheus_metrics_for_a_local_scraper(village: InProcessHub) -> None:
    r = village.http().get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert 'langso_mqtt_messages_total{outcome="received"}' in r.text
    assert "langso_mqtt_connected 1.0" in r.text
    assert 'langso_devices{status="online"}' in r.text
