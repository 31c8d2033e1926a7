"""Device health: status from wills and silence, thresholds with tolerance both ways."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count
from zoneinfo import ZoneInfo

from devices.events import Availability, Reading
from hub.ingest.monitor import AlertChange, Monitor, StatusChange
from hub.settings import DeviceHealth, HealthSettings, KindHealth, Threshold

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC).timestamp()  # 10:00 in the village


def monitor(**kinds: KindHealth) -> Monitor:
    ids = count(1)
    settings = HealthSettings(kinds=kinds)
    return Monitor(settings, TZ, new_id=lambda: f"a{next(ids)}")


def reading(dev: str, **metrics: float) -> Reading:
    return Reading("native", dev, "ap", metrics)


def summary(changes: list[StatusChange | AlertChange]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for c in changes:
        if isinstance(c, StatusChange):
            out.append(("status", c.status))
        else:
            out.append(("alert", c.rule, c.state))
    return out


def test_first_reading_makes_a_device_online() -> None:
    m = monitor()
    assert summary(m.observe(reading("ap-1", cpu_pct=10), T0)) == [("status", "online")]


def test_cpu_over_90_for_5_minutes_degrades_and_recovers_with_the_same_tolerance() -> None:
    m = monitor(
        ap=KindHealth(thresholds=[Threshold(metric="cpu_pct", op=">", value=90, for_s=300)])
    )
    m.observe(reading("ap-1", cpu_pct=10), T0)
    assert m.observe(reading("ap-1", cpu_pct=95), T0 + 10) == []
    assert m.observe(reading("ap-1", cpu_pct=97), T0 + 200) == []
    # A dip resets the timer: short spikes are not trouble.
    m.observe(reading("ap-1", cpu_pct=50), T0 + 250)
    m.observe(reading("ap-1", cpu_pct=95), T0 + 260)
    assert m.tick(T0 + 500) == []
    assert summary(m.tick(T0 + 560)) == [("alert", "cpu_pct>90", "raised"), ("status", "degraded")]
    # Back under: still degraded until it has been fine for 5 minutes too.
    assert m.observe(reading("ap-1", cpu_pct=20), T0 + 600) == []
    assert m.tick(T0 + 899) == []
    assert summary(m.tick(T0 + 900)) == [("alert", "cpu_pct>90", "cleared"), ("status", "online")]


def test_will_offline_raises_and_online_clears_one_incident() -> None:
    m = monitor()
    m.observe(reading("ap-1", clients=3), T0)
    off = m.observe(Availability("native", "ap-1", "ap", online=False), T0 + 5)
    assert summary(off) == [("status", "offline"), ("alert", "offline", "raised")]
    on = m.observe(Availability("native", "ap-1", "ap", online=True), T0 + 50)
    assert summary(on) == [("status", "online"), ("alert", "offline", "cleared")]
    assert off[1].id == on[1].id  # type: ignore[union-attr]


def test_an_expected_offline_changes_status_without_alert() -> None:
    m = monitor()
    m.observe(reading("t-1", v=1), T0)
    ch = m.observe(Availability("tasmota", "t-1", "sensor", online=False, expected=True), T0 + 1)
    assert summary(ch) == [("status", "offline")]


def test_silence_turns_offline_after_the_kind_timeout_and_data_brings_it_back() -> None:
    m = monitor(ap=KindHealth(offline_after_s=300))
    m.observe(reading("ap-1", clients=1), T0)
    assert m.tick(T0 + 299) == []
    assert summary(m.tick(T0 + 300)) == [("status", "offline"), ("alert", "offline", "raised")]
    assert m.tick(T0 + 400) == []  # raised once, not every tick
    assert summary(m.observe(reading("ap-1", clients=1), T0 + 500)) == [
        ("status", "online"),
        ("alert", "offline", "cleared"),
    ]


def test_a_window_applies_a_threshold_only_in_opening_hours() -> None:
    no_clients = Threshold(metric="clients", op="<", value=1, for_s=7200, during="07:00-21:00")
    ids = count(1)
    health = HealthSettings(
        kinds={"ap": KindHealth()}, devices={"ap-nvh": DeviceHealth(thresholds=[no_clients])}
    )
    m = Monitor(health, TZ, new_id=lambda: f"a{next(ids)}")
    night = datetime(2026, 12, 1, 16, 0, tzinfo=UTC).timestamp()  # 23:00 local
    m.observe(reading("ap-nvh", clients=0), night)
    assert m.tick(night + 4 * 3600) == []  # 03:00 local: empty wifi at night is normal
    morning = datetime(2026, 12, 2, 1, 0, tzinfo=UTC).timestamp()  # 08:00 local
    m.observe(reading("ap-nvh", clients=0), morning)
    assert m.tick(morning + 7199) == []
    assert summary(m.tick(morning + 7200)) == [
        ("alert", "clients<1", "raised"),
        ("status", "degraded"),
    ]
    # Another AP of the same kind has no such rule.
    m.observe(reading("ap-2", clients=0), morning)
    assert all(c.device_id != "ap-2" for c in m.tick(morning + 9000) if isinstance(c, AlertChange))


def test_restore_keeps_open_alerts_open() -> None:
    m = monitor()
    m.restore("ap-1", "ap", "offline", T0, [("x1", "offline", T0)])
    ch = m.observe(Availability("native", "ap-1", "ap", online=True), T0 + 10)
    assert [(c.id, c.state) for c in ch if isinstance(c, AlertChange)] == [("x1", "cleared")]


def test_a_sleeping_node_saying_offline_is_no_incident_but_its_silence_is() -> None:
    ids = count(1)
    settings = HealthSettings(
        kinds={"sensor": KindHealth(offline_after_s=3900)},
        devices={"rain-1": DeviceHealth(sleeps=True)},
    )
    m = Monitor(settings, TZ, new_id=lambda: f"a{next(ids)}")
    rain = Reading("tasmota", "rain-1", "sensor", {"rain_mm": 0.2})
    assert summary(m.observe(rain, T0)) == [("status", "online")]
    # Each hour: a report, then Offline before it sleeps again.
    for hour in range(3):
        t = T0 + hour * 3600
        m.observe(rain, t)
        assert m.observe(Availability("tasmota", "rain-1", "sensor", online=False), t + 5) == []
        assert m.tick(t + 3000) == []
    assert m.devices["rain-1"].status == "online"
    # It stops waking up: offline once offline_after_s passes without data.
    last = T0 + 2 * 3600
    assert m.tick(last + 3899) == []
    assert summary(m.tick(last + 3900)) == [("status", "offline"), ("alert", "offline", "raised")]
    # Another node's Offline still counts at once.
    m.observe(reading("ap-1", clients=1), T0)
    off = m.observe(Availability("native", "ap-1", "ap", online=False), T0 + 9)
    assert summary(off) == [("status", "offline"), ("alert", "offline", "raised")]
