"""devices/simulation/ (the pure village), then devices/simulator.py (the runner) on Mosquitto."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from devices.simulation import FLOOD_LEVELS_CM, Message, VillageModel, client_share
from devices.simulator import Simulator, run_simulator
from tests.broker import Broker

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
START = datetime(2026, 6, 1, 0, 0, tzinfo=TZ).timestamp()  # local midnight

AP_KEYS = {
    "clients",
    "rx_bytes",
    "tx_bytes",
    "signal_dbm",
    "noise_dbm",
    "channel",
    "uptime_s",
    "cpu_pct",
    "mem_pct",
    "temp_c",
    "ssid",
    "fw",
    "ts",
}
INT_KEYS = {"clients", "rx_bytes", "tx_bytes", "channel", "uptime_s", "signal_dbm", "noise_dbm"}
WATER_KEYS = {"water_level_cm", "battery_pct", "ts"}
WEATHER_KEYS = {"temp_c", "humidity_pct", "rain_mm", "wind_ms", "battery_pct", "ts"}


def states(messages: list[Message]) -> dict[str, dict[str, Any]]:
    """device id -> decoded state payload."""
    out = {}
    for m in messages:
        out[m.topic.split("/")[3]] = json.loads(m.payload)
    return out


def quiet_model(**kw: object) -> VillageModel:
    """A model without random dropouts or degradations (tests force them)."""
    args: dict[str, object] = {"dropout_per_h": 0.0, "degrade_per_h": 0.0, **kw}
    return VillageModel(7, 3, 2, START, **args)  # type: ignore[arg-type]


# --- the pure model -----------------------------------------------------------------------


def test_devices_and_names() -> None:
    m = VillageModel(1, 3, 5, START, n_buttons=1)
    assert [d.id for d in m.devices] == [
        "ap-01",
        "ap-02",
        "ap-03",
        "wl-01",
        "ws-01",
        "ws-02",
        "ws-03",
        "wl-02",
        "btn-01",
    ]
    assert m.device("ap-01").name == "Nhà văn hóa"
    assert m.device("wl-01").role == "water_level"
    assert m.status_message(m.device("ws-02"), online=False) == Message(
        "village/thon-dong/sensor/ws-02/status", b"offline", True
    )


def test_payloads_follow_the_contract() -> None:
    m = VillageModel(3, 4, 6, START, site="xa-an-phu", n_buttons=1)
    for now in (START, START + 10, START + 20):
        messages = m.step(now)
        assert len(messages) == 10, "every AP and sensor, no button"
        for msg in messages:
            assert re.fullmatch(r"village/xa-an-phu/(ap|sensor)/[a-z]+-\d\d/state", msg.topic)
            assert msg.retain is False
            body = json.loads(msg.payload.decode("utf-8"))
            assert isinstance(body, dict)
            assert body["ts"] == pytest.approx(now)
            kind = msg.topic.split("/")[2]
            if kind == "ap":
                assert set(body) == AP_KEYS
                for key in INT_KEYS:
                    assert type(body[key]) is int, key
                assert isinstance(body["ssid"], str) and isinstance(body["fw"], str)
                assert -85 <= body["signal_dbm"] <= -45
                assert 0 <= body["cpu_pct"] <= 100 and 0 <= body["mem_pct"] <= 100
                assert body["channel"] in (1, 6, 11)
            else:
                expected = WATER_KEYS if "/wl-" in msg.topic else WEATHER_KEYS
                assert set(body) == expected
                for value in body.values():
                    assert type(value) in (int, float)
                assert 0 <= body["battery_pct"] <= 100


def test_counters_and_uptime_only_grow() -> None:
    m = quiet_model()
    seen: list[dict[str, Any]] = []
    for i in range(200):
        seen.append(states(m.step(START + 18 * 3600 + 10 * i))["ap-01"])
    for key in ("rx_bytes", "tx_bytes", "uptime_s"):
        values = [s[key] for s in seen]
        assert values == sorted(values), key
        assert values[-1] > values[0], key


def test_flood_crosses_the_three_levels_and_returns() -> None:
    m = quiet_model(flood_delay_min=5, flood_minutes=60)
    levels = []
    for i in range(0, 80 * 60, 20):
        levels.append(states(m.step(START + i))["wl-01"]["water_level_cm"])
    assert isinstance(levels[0], float) and abs(levels[0] - 120) < 3
    assert max(levels) > FLOOD_LEVELS_CM[-1]
    ups = [next(i for i, v in enumerate(levels) if v > limit) for limit in FLOOD_LEVELS_CM]
    assert ups == sorted(ups) and len(set(ups)) == 3, "180, then 220, then 260 on the way up"
    peak = levels.index(max(levels))
    for limit in FLOOD_LEVELS_CM:
        assert any(v < limit for v in levels[peak:]), f"back below {limit}"
    assert abs(levels[-1] - 120) < 3
    assert m.flood_level_cm(START) == 120.0


def test_time_scale_speeds_up_the_flood() -> None:
    m = quiet_model(time_scale=60.0, flood_delay_min=2, flood_minutes=60)
    # 60x: the 60-minute flood plays in one real minute, starting after 2 s.
    assert m.flood_level_cm(START + 1) == 120.0
    assert m.flood_level_cm(START + 2 + 24) == pytest.approx(275.0)  # the peak, at 40 %
    assert m.flood_level_cm(START + 63) == 120.0


def test_clients_follow_the_day() -> None:
    m = quiet_model()
    night, evening = [], []
    for day in range(5):
        base = START + day * 86400
        night.append(states(m.step(base + 3 * 3600))["ap-01"]["clients"])
        evening.append(states(m.step(base + 20 * 3600))["ap-01"]["clients"])
    assert max(night) <= 2
    assert min(evening) >= 25
    assert client_share(20.0) == 1.0 and client_share(2.5) == pytest.approx(0.01)


def test_same_seed_same_village() -> None:
    times = [START + 60 * i for i in range(50)]
    a = VillageModel(42, 5, 4, START, dropout_per_h=5, degrade_per_h=5)
    b = VillageModel(42, 5, 4, START, dropout_per_h=5, degrade_per_h=5)
    c = VillageModel(43, 5, 4, START, dropout_per_h=5, degrade_per_h=5)
    run_a = [a.step(t) for t in times]
    assert run_a == [b.step(t) for t in times]
    assert run_a != [c.step(t) for t in times]


def test_random_dropouts_and_degradation() -> None:
    m = VillageModel(5, 3, 0, START + 19 * 3600, dropout_per_h=3, degrade_per_h=6)
    silent_seen: set[str] = set()
    degraded = False
    for i in range(6 * 360):  # six hours of 10 s steps
        now = START + 19 * 3600 + 10 * i
        messages = m.step(now)
        silent_seen |= m.silent
        published = set(states(messages))
        assert published.isdisjoint(m.silent), "a silent AP publishes nothing"
        for body in states(messages).values():
            degraded |= body["cpu_pct"] > 90 or body["signal_dbm"] < -80
    assert silent_seen, "some AP dropped out"
    assert m.silent != {"ap-01", "ap-02", "ap-03"}, "and dropouts end"
    assert degraded


def test_forced_dropout() -> None:
    m = quiet_model()
    m.step(START)
    m.force_dropout("ap-02", START + 1, 30)
    assert "ap-02" not in states(m.step(START + 10))
    assert m.silent == {"ap-02"}
    assert "ap-02" in states(m.step(START + 40)), "back after 30 s"
    m.force_dropout("ap-02", START + 41, 600)
    m.force_dropout("ap-02", START + 42, 0)
    assert "ap-02" in states(m.step(START + 50))
    with pytest.raises(KeyError):
        m.force_dropout("ap-99", START, 1)


def test_button_event() -> None:
    m = VillageModel(1, 0, 0, START, n_buttons=1)
    msg = m.button_event("btn-01", "announce", template="hop-thon")
    assert msg.topic == "village/thon-dong/button/btn-01/event"
    assert json.loads(msg.payload) == {"action": "announce", "template": "hop-thon"}
    assert json.loads(m.button_event("btn-01", "emergency").payload) == {"action": "emergency"}
    with pytest.raises(ValueError, match="unknown button action"):
        m.button_event("btn-01", "siren")  # type: ignore[arg-type]


@pytest.mark.parametrize("site", ["Thon-Dong", "thon/dong", "#", ""])
def test_site_must_be_topic_safe(site: str) -> None:
    with pytest.raises(ValueError, match="site"):
        VillageModel(1, 1, 1, START, site=site)


# --- against the broker -------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool


class Watcher:
    """A paho subscriber to ``village/<site>/#`` whose tests wait on conditions, not sleeps."""

    def __init__(self, broker: Broker, site: str) -> None:
        self.site = site
        self.messages: list[Received] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"watch-{uuid.uuid4().hex[:8]}",
        )
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert self._subscribed.wait(5), "the watcher could not subscribe"

    def _on_connect(self, client: mqtt.Client, *_: object) -> None:  # paho network thread
        client.subscribe(f"village/{self.site}/#", qos=1)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        # paho network thread
        with self._cond:
            self.messages.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain)))
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 10) -> None:
        with self._cond:
            ok = self._cond.wait_for(lambda: predicate(self.messages), timeout)
        assert ok, f"timed out; saw {[(m.topic, m.payload) for m in self.messages][-20:]}"

    def status(self, kind: str, device_id: str) -> list[bytes]:
        topic = f"village/{self.site}/{kind}/{device_id}/status"
        with self._cond:
            return [m.payload for m in self.messages if m.topic == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def site_id() -> str:
    return f"test-sim-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def watchers(broker: Broker) -> Iterator[Callable[[str], Watcher]]:
    made: list[Watcher] = []

    def make(site: str) -> Watcher:
        w = Watcher(broker, site)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


class Running:
    """``Simulator.run`` in a thread, with its exception (if any) kept."""

    def __init__(self, sim: Simulator, duration: float | None = None) -> None:
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, args=(sim, duration), name="sim")
        self.thread.start()

    def _main(self, sim: Simulator, duration: float | None) -> None:
        try:
            sim.run(self.stop, duration)
        except BaseException as exc:
            self.error = exc

    def finish(self, within: float) -> float:
        t0 = time.monotonic()
        self.stop.set()
        self.thread.join(within)
        elapsed = time.monotonic() - t0
        assert not self.thread.is_alive(), f"run() still running after {within} s"
        assert self.error is None
        return elapsed


def last(payloads: list[bytes]) -> bytes | None:
    return payloads[-1] if payloads else None


@pytest.mark.broker
def test_village_on_the_broker(broker: Broker, watchers: Callable[[str], Watcher]) -> None:
    site = site_id()
    watch = watchers(site)
    model = VillageModel(11, 3, 2, time.time(), site=site, n_buttons=1, dropout_per_h=0)
    sim = Simulator(broker.host, broker.port, model, interval=0.2)
    kinds = {d.id: d.kind for d in model.devices}
    sensors_and_aps = [d.id for d in model.devices if d.kind != "button"]
    running = Running(sim)
    try:
        # Every device says it is online; every AP and sensor publishes its state.
        watch.wait_for(
            lambda ms: (
                all(
                    any(m.topic.endswith(f"/{i}/status") and m.payload == b"online" for m in ms)
                    for i in kinds
                )
                and all(any(m.topic.endswith(f"/{i}/state") for m in ms) for i in sensors_and_aps)
            )
        )
        assert sim.online_ids() == set(kinds)

        # The birth is retained: a newcomer gets each device's status at once.
        late = watchers(site)
        late.wait_for(
            lambda ms: (
                {m.topic.split("/")[3] for m in ms if m.retain and m.payload == b"online"}
                == set(kinds)
            )
        )

        # A button box press arrives as the contract's JSON.
        assert sim.press("btn-01", "stop")
        watch.wait_for(
            lambda ms: any(
                m.topic == f"village/{site}/button/btn-01/event"
                and json.loads(m.payload) == {"action": "stop"}
                for m in ms
            )
        )

        # A dropout: the connection is cut without DISCONNECT and the broker sends
        # the will. The simulator itself publishes `offline` only when it stops.
        sim.force_dropout("ap-02", 60)
        watch.wait_for(lambda ms: last(watch.status("ap", "ap-02")) == b"offline")
        assert "ap-02" not in sim.online_ids()
        assert running.thread.is_alive()
        newcomer = watchers(site)
        newcomer.wait_for(
            lambda ms: any(
                m.topic.endswith("/ap-02/status") and m.retain and m.payload == b"offline"
                for m in ms
            )
        )
        n_before = len(watch.messages)

        # Back again: a new birth and new states.
        sim.restore("ap-02")
        watch.wait_for(
            lambda ms: (
                any(
                    m.topic == f"village/{site}/ap/ap-02/status" and m.payload == b"online"
                    for m in ms[n_before:]
                )
                and any(m.topic == f"village/{site}/ap/ap-02/state" for m in ms[n_before:])
            )
        )
    finally:
        elapsed = running.finish(within=2.0)
    assert elapsed < 2.0
    assert sim.online_ids() == frozenset()
    # A clean stop leaves every device's retained status `offline`.
    watch.wait_for(lambda ms: all(last(watch.status(k, i)) == b"offline" for i, k in kinds.items()))


@pytest.mark.broker
def test_a_hundred_devices(own_broker: Broker) -> None:
    # A broker of its own: 103 connections at once, not counted against what twelve
    # hundred earlier tests left in the session's broker (it failed only late in a full run).
    site = site_id()
    watch = Watcher(own_broker, site)
    model = VillageModel(3, 60, 40, time.time(), site=site, dropout_per_h=0)
    sim = Simulator(own_broker.host, own_broker.port, model, interval=1.0)
    ids = {d.id for d in model.devices}
    running = Running(sim)
    try:
        try:
            watch.wait_for(
                lambda ms: {m.topic.split("/")[3] for m in ms if m.topic.endswith("/state")} == ids,
                timeout=20,
            )
            assert sim.online_ids() == ids
        finally:
            elapsed = running.finish(within=2.0)
        assert elapsed < 2.0
        watch.wait_for(
            lambda ms: {m.topic.split("/")[3] for m in ms if m.payload == b"offline"} == ids
        )
    finally:
        watch.close()


@pytest.mark.broker
def test_injected_clock_drives_the_ticks(
    broker: Broker, watchers: Callable[[str], Watcher]
) -> None:
    # The runner's own time is injected: a fake sleep advances a fake clock, so a
    # 60-second run at a 10-second interval is six ticks and no real waiting.
    site = site_id()
    watch = watchers(site)
    now = [START]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    model = VillageModel(1, 1, 0, START, site=site)
    sim = Simulator(
        broker.host, broker.port, model, interval=10.0, clock=lambda: now[0], sleep=sleep
    )
    sim.run(threading.Event(), duration=60)
    assert now[0] == START + 60
    assert waits == [10.0] * 6
    watch.wait_for(lambda ms: last(watch.status("ap", "ap-01")) == b"offline")
    ticks = [json.loads(m.payload)["ts"] for m in watch.messages if m.topic.endswith("/state")]
    assert ticks == [START + 10 * i for i in range(6)]


@pytest.mark.broker
def test_run_simulator_entry(broker: Broker, watchers: Callable[[str], Watcher]) -> None:
    # What `langso simulate` calls; it returns when stop_event is set.
    site = site_id()
    watch = watchers(site)
    stop = threading.Event()
    thread = threading.Thread(
        target=run_simulator,
        args=(broker.host, broker.port, site, 2, 1, 0.2, 5, stop),
        name="run_simulator",
    )
    thread.start()
    try:
        watch.wait_for(
            lambda ms: (
                {m.topic.split("/")[3] for m in ms if m.topic.endswith("/state")}
                == {"ap-01", "ap-02", "wl-01"}
            )
        )
    finally:
        stop.set()
        thread.join(2.0)
    assert not thread.is_alive()
