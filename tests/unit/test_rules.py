"""The rules engine's state machines on a real SQLite store, with recorded effects."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from devices.events import ButtonPress, Reading
from hub.automation.actions import DeviceView, Effects
from hub.automation.rule_model import Rule, validate_rule
from hub.automation.rules import RulesEngine
from hub.automation.templates import render_template
from hub.clock import FakeClock
from hub.events import StatusChange, Stored
from hub.store import Store

VN = ZoneInfo("Asia/Ho_Chi_Minh")
T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def effects(self) -> Effects:
        return Effects(
            announce=lambda body, src: self._rec("announce", body) or f"a{len(self.calls)}",
            notify=lambda to, data: self._rec("notify", data) or list(to),
            switch=lambda out, s: self._rec("switch", (out, s)),
            publish=lambda t, p, r, q: self._rec("publish", (t, p)),
            groups={"technicians": [], "head": []},
            outputs=("siren",),
            zones=("xom-dong",),
        )

    def _rec(self, what: str, data: Any) -> None:
        self.calls.append((what, data))

    def kinds(self) -> list[str]:
        return [c[0] for c in self.calls]


def engine(tmp_path: Path, *rules: dict[str, Any]) -> tuple[RulesEngine, Recorder, FakeClock]:
    rec = Recorder()
    clock = FakeClock(T0)
    store = Store(tmp_path / "hub.db")
    devices = {
        "wl-01": DeviceView("wl-01", "Cầu Đông", "sensor", "xom-dong"),
        "ap-01": DeviceView("ap-01", "Nhà văn hóa", "ap"),
    }
    e = RulesEngine(
        store, clock, VN, rec.effects(), device=devices.get, status_of=lambda d: "offline"
    )
    e.seed([Rule.model_validate(r) for r in rules])
    e.reload()
    return e, rec, clock


FLOOD = {
    "id": "flood-2",
    "name": "Báo động 2",
    "trigger": {
        "type": "metric",
        "metric": "water_level_cm",
        "op": ">=",
        "value": 220,
        "for_s": 60,
        "hysteresis": 10,
    },
    "conditions": {"kinds": ["sensor"]},
    "vars": {"level": "2"},
    "cooldown_s": 1800,
    "actions": [
        {
            "type": "announce",
            "template": "Mực nước tại {device.name} đã lên {value} cm, vượt báo động {level}.",
            "clear_template": "Mực nước tại {device.name} đã xuống.",
        },
        {"type": "notify", "to": ["technicians"], "template": "{device.name}: {value} cm"},
    ],
}


def level(e: RulesEngine, clock: FakeClock, cm: float, advance: float = 10) -> None:
    clock.advance(advance)
    e.observe(
        [
            Stored(
                Reading("native", "wl-01", "sensor", {"water_level_cm": cm}),
                clock.now().timestamp(),
                "village/x/sensor/wl-01/state",
            )
        ],
        [],
    )


def test_rising_past_level_2_for_the_duration_fires_once_and_clears_with_hysteresis(
    tmp_path: Path,
) -> None:
    e, rec, clock = engine(tmp_path, FLOOD)
    level(e, clock, 200)
    level(e, clock, 221)
    level(e, clock, 225, advance=30)
    assert rec.calls == []  # not yet 60 s above
    level(e, clock, 226, advance=31)
    assert rec.kinds() == ["announce", "notify"]
    body = rec.calls[0][1]
    assert body["text"] == "Mực nước tại Cầu Đông đã lên 226 cm, vượt báo động 2."
    assert body["priority"] == "emergency"
    # Samples above keep it raised without repeating; inside the hysteresis band too.
    for cm in (230, 240, 215, 214, 222):
        level(e, clock, cm)
    assert rec.kinds() == ["announce", "notify"]
    # Below 210 for 60 s: the cancellation, linked to the emergency.
    level(e, clock, 205)
    level(e, clock, 204, advance=61)
    assert rec.kinds() == ["announce", "notify", "announce", "notify"]
    clear = rec.calls[2][1]
    assert clear["text"] == "Mực nước tại Cầu Đông đã xuống."
    assert clear["corrects"] == "a1" and clear["priority"] == "high"
    assert rec.calls[3][1]["state"] == "cleared"
    firings = e.store.query("SELECT state, cause FROM rule_firings ORDER BY id")
    assert [f["state"] for f in firings] == ["raised", "cleared"]
    assert '"value": 226' in firings[0]["cause"]


def test_flapping_around_the_threshold_causes_no_storm(tmp_path: Path) -> None:
    e, rec, clock = engine(tmp_path, {**FLOOD, "trigger": {**FLOOD["trigger"], "for_s": 0}})
    for i in range(100):  # every 10 s for 17 minutes, up and down across 220
        level(e, clock, 219 if i % 2 else 221)
    assert rec.kinds() == ["announce", "notify"]  # one incident: hysteresis keeps it raised
    # Fully back down, then up again within the cooldown: quiet.
    level(e, clock, 200)
    level(e, clock, 225)
    level(e, clock, 200)
    assert rec.kinds().count("announce") == 2  # the raise, and the one cancellation


def test_conditions_filter_devices_kinds_and_time(tmp_path: Path) -> None:
    rule = {
        **FLOOD,
        "trigger": {**FLOOD["trigger"], "for_s": 0},
        "conditions": {"devices": ["wl-*"], "zones": ["xom-dong"], "during": "06:00-09:00"},
    }
    e, rec, clock = engine(tmp_path, rule)  # 10:00 local: outside the window
    level(e, clock, 250)
    assert rec.calls == []
    clock.set(datetime(2026, 12, 1, 0, 0, tzinfo=UTC))  # 07:00 local
    level(e, clock, 250)
    assert rec.kinds() == ["announce", "notify"]


def test_status_trigger_waits_its_duration(tmp_path: Path) -> None:
    rule = {
        "id": "ap-off",
        "name": "AP offline",
        "conditions": {"kinds": ["ap"]},
        "trigger": {"type": "status", "status": "offline", "for_s": 300},
        "actions": [
            {"type": "notify", "to": ["technicians"], "template": "{device.name} mất kết nối"}
        ],
    }
    e, rec, clock = engine(tmp_path, rule)
    t = clock.now().timestamp()
    e.observe([], [StatusChange("ap-01", "ap", "offline", "online", t, "will")])
    clock.advance(299)
    e.tick()
    assert rec.calls == []
    clock.advance(2)
    e.tick()
    assert [c[1]["body"] for c in rec.calls] == ["Nhà văn hóa mất kết nối"]
    e.tick()
    assert len(rec.calls) == 1


def test_button_and_switch_and_publish(tmp_path: Path) -> None:
    rule = {
        "id": "btn",
        "name": "Nút",
        "cooldown_s": 60,
        "trigger": {"type": "button", "action": "emergency"},
        "actions": [
            {"type": "switch", "output": "siren", "duration_s": 30},
            {"type": "publish", "topic": "village/x/siren", "payload": "{state}"},
        ],
    }
    e, rec, _ = engine(tmp_path, rule)
    press = Stored(ButtonPress("native", "btn-1", "emergency"), 0, "t")
    e.observe([press], [])
    e.observe([press], [])  # within the cooldown
    assert rec.calls == [("switch", ("siren", 30)), ("publish", ("village/x/siren", b"raised"))]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"actions": [{"type": "notify", "to": ["mayor"], "template": "x"}]}, "no notification"),
        ({"actions": [{"type": "switch", "output": "bell"}]}, "no output"),
        ({"actions": [{"type": "announce", "template": "{device.secret}"}]}, "placeholder"),
        ({"actions": [{"type": "announce", "template": "{device.__class__}"}]}, "not allowed"),
        ({"actions": [{"type": "announce", "template": "{nope}"}]}, "unknown placeholder"),
        ({"actions": [{"type": "announce", "template": "x", "zones": ["moon"]}]}, "unknown zone"),
    ],
)
def test_validation_refuses_what_cannot_work(change: dict[str, Any], reason: str) -> None:
    rule = Rule.model_validate({**FLOOD, **change})
    with pytest.raises(ValueError, match=reason):
        validate_rule(rule, groups={"technicians": []}, outputs=("siren",), zones=("xom-dong",))


def test_the_shipped_rules_file_validates() -> None:
    from hub.automation.rule_model import load_rules_file

    rules = load_rules_file(Path(__file__).resolve().parents[2] / "config" / "rules.toml")
    assert {r.id for r in rules} >= {
        "flood-level-1",
        "flood-level-2",
        "flood-level-3",
        "ap-offline",
        "ap-degraded",
        "emergency-button",
    }
    for r in rules:
        validate_rule(
            r,
            groups={"technicians": [], "head": []},
            outputs=("siren",),
            zones=("xom-dong", "xom-tay"),
        )


def test_template_decimal_comma() -> None:
    assert render_template("{value} m", {"value": "1,5"}) == "1,5 m"


def test_schedule_trigger_fires_at_its_times(tmp_path: Path) -> None:
    rule = {
        "id": "siren-test",
        "name": "Thử còi",
        "cooldown_s": 0,
        "trigger": {
            "type": "schedule",
            "start": "2026-12-01T10:30:00",
            "rrule": "FREQ=WEEKLY;BYDAY=TU",
        },
        "actions": [{"type": "switch", "output": "siren", "duration_s": 10}],
    }
    e, rec, clock = engine(tmp_path, rule)  # T0 is 10:00 on Tuesday 1 December, local
    e.tick()
    assert rec.calls == []
    clock.advance(30 * 60)  # 10:30 local
    e.tick()
    e.tick()
    assert rec.calls == [("switch", ("siren", 10))]
    clock.advance(7 * 86400)  # the next Tuesday
    e.tick()
    assert rec.calls == [("switch", ("siren", 10))] * 2
