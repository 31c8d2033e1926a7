"""Rule templates that only name fields, and the rule book's approvals, on a real SQLite store
with the engine and recorded effects (no broker: the HTTP side is in
tests/integration/test_rule_approval.py)."""

from __future__ import annotations

import json
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hub.automation.actions import Effects
from hub.automation.rule_book import RuleBook
from hub.automation.rule_model import Rule, validate_rule
from hub.automation.rules import RulesEngine
from hub.automation.templates import OUTPUT_MAX, render_template
from hub.clock import FakeClock
from hub.errors import Conflict, Forbidden, Invalid
from hub.store import Store
from hub.store import rules as repo
from hub.store.users import User

VN = ZoneInfo("Asia/Ho_Chi_Minh")
T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 08:00 in the village
TECH = User(1, "ky-thuat", "technician", False)
TECH2 = User(2, "ky-thuat-2", "technician", False)
HEAD = User(3, "truong-thon", "head", False)
ADMIN = User(4, "quan-tri", "admin", False)

SIREN = {
    "id": "coi",
    "name": "Còi",
    "cooldown_s": 0,
    "trigger": {"type": "schedule", "start": "2026-12-01T08:00:30", "rrule": "FREQ=HOURLY"},
    "actions": [{"type": "switch", "output": "siren", "duration_s": 30}],
}
NOTE = {
    "id": "tin",
    "name": "Tin",
    "trigger": {"type": "button", "action": "announce"},
    "actions": [{"type": "notify", "to": ["technicians"], "template": "{device.name}"}],
}


def check(template: str, **vars: str) -> None:
    rule = Rule.model_validate(
        {**NOTE, "vars": vars, "actions": [{**NOTE["actions"][0], "template": template}]}  # type: ignore[index]
    )
    validate_rule(rule, groups={"technicians": []}, outputs=(), zones=())


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{time:>300000000}", "a format spec (:>300000000) is not allowed; write {time}"),
        ("{value:,}", "a format spec (:,) is not allowed"),
        ("{value!r}", "a conversion (!r) is not allowed; write {value}"),
        ("{value!s:>9}", "a conversion (!s) is not allowed"),
        ("{rule}", "unknown placeholder 'rule'"),
        ("{place}", "unknown placeholder 'place'"),
        ("{0}", "placeholder {0} is not allowed"),
        ("{}", "placeholder {} is not allowed"),
        ("x" * (OUTPUT_MAX + 1), f"longer than {OUTPUT_MAX} characters"),
        ("{level}" * 70, f"longer than {OUTPUT_MAX} characters"),
    ],
)
def test_a_template_that_is_not_named_fields_is_refused_naming_why(
    template: str, reason: str
) -> None:
    with pytest.raises(ValueError, match=r"^actions\.0\.template: ") as e:
        check(template, level="mười bảy ký tự..")
    assert reason in str(e.value)


def test_named_fields_vars_and_braces_fill() -> None:
    check("{device.name} {device.id} {device.kind} {value} {metric} {status} {rule.name}")
    check("{rule.id} {time} {state} {level} {{literal}} {muc}", muc="3")
    # What str.format's sandbox escapes refused, still refused.
    for template in ("{device.name.__class__}", "{device[name]}", "{value"):
        with pytest.raises(ValueError, match=r"not allowed|template: "):
            check(template)
    ctx = {"value": "1,5", "device.name": "Cầu Đông"}
    assert render_template("{device.name}: {value} m {{x}}", ctx) == "Cầu Đông: 1,5 m {x}"


def test_at_run_time_the_output_is_cut_and_a_huge_value_is_not_copied_whole() -> None:
    # A device name grows after the rule was checked (a device announces itself).
    huge = "A" * 1_000_000
    tracemalloc.start()
    try:
        text = render_template("{device.name}" * 100, {"device.name": huge})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert text == "A" * OUTPUT_MAX
    assert peak < 100_000  # not the value a hundred times, nor once


# -- approvals ------------------------------------------------------------------------------
def book(tmp_path: Path) -> tuple[RuleBook, RulesEngine, list[tuple[str, Any]], FakeClock]:
    calls: list[tuple[str, Any]] = []
    effects = Effects(
        announce=lambda body, src: calls.append(("announce", body)) or "a1",  # type: ignore[func-returns-value]
        notify=lambda to, data: calls.append(("notify", data)) or list(to),  # type: ignore[func-returns-value]
        switch=lambda out, s: calls.append(("switch", out)),
        publish=lambda t, p, r, q: calls.append(("publish", t)),
        groups={"technicians": []},
        outputs=("siren",),
    )
    clock = FakeClock(T0)
    store = Store(tmp_path / "hub.db")
    engine = RulesEngine(store, clock, VN, effects, device=lambda d: None)
    engine.reload()
    return RuleBook(store, clock, engine, reload=engine.reload), engine, calls, clock


def state(b: RuleBook, rule_id: str) -> tuple[bool, str | None, str | None]:
    row = b.get(rule_id)
    enabled = bool(json.loads(row.definition)["enabled"])
    if row.approval is None:
        return enabled, None, None
    return enabled, row.approval.state, row.approval.by


def test_a_technicians_loud_rule_waits_and_a_head_approves_it(tmp_path: Path) -> None:
    b, engine, calls, clock = book(tmp_path)
    b.add(Rule.model_validate(SIREN), TECH)
    assert state(b, "coi") == (False, "awaiting", "ky-thuat")
    clock.advance(60)
    engine.tick()
    assert calls == []
    with pytest.raises(Forbidden, match="waits for the head's approval"):
        b.change("coi", {"enabled": True}, TECH)
    with pytest.raises(Forbidden, match="only the head"):
        b.approve("coi", TECH2)
    b.approve("coi", HEAD)
    assert state(b, "coi") == (True, "approved", "truong-thon")
    with pytest.raises(Conflict, match="approved already"):
        b.approve("coi", ADMIN)
    clock.advance(3600)
    engine.tick()
    assert calls == [("switch", "siren")]
    # Off and on again by a technician: what the head approved, unchanged; it stays approved.
    b.change("coi", {"enabled": False}, TECH2)
    b.change("coi", {"enabled": True}, TECH2)
    assert state(b, "coi") == (True, "approved", "truong-thon")
    # A change to what it does, when, or what it says withdraws the approval.
    for change in (
        {"cooldown_s": 5},
        {"trigger": {**SIREN["trigger"], "rrule": "FREQ=DAILY"}},  # type: ignore[dict-item]
        {"vars": {"level": "3"}},
    ):
        if state(b, "coi")[1] == "awaiting":
            b.approve("coi", HEAD)
        b.change("coi", change, TECH2)
        assert state(b, "coi") == (False, "awaiting", "ky-thuat-2")
    clock.advance(86_400)
    engine.tick()
    assert calls == [("switch", "siren")]


def test_approval_needs_a_second_person(tmp_path: Path) -> None:
    b, *_ = book(tmp_path)
    b.add(Rule.model_validate(SIREN), TECH)
    # The one who asked cannot approve it, even after becoming a head.
    with pytest.raises(Forbidden, match="second person"):
        b.approve("coi", User(1, "ky-thuat", "head", False))


def test_a_heads_own_rule_and_a_notify_rule_need_no_second_step(tmp_path: Path) -> None:
    b, engine, *_ = book(tmp_path)
    b.add(Rule.model_validate(SIREN), HEAD)
    assert state(b, "coi") == (True, "approved", "truong-thon")
    b.add(Rule.model_validate(NOTE), TECH)
    assert state(b, "tin") == (True, None, None)
    with pytest.raises(Conflict, match="needs no approval"):
        b.approve("tin", HEAD)
    # Turning a message into a loudspeaker action is a change that needs the head.
    b.change("tin", {"actions": [{"type": "announce", "template": "{device.name}"}]}, TECH)
    assert state(b, "tin") == (False, "awaiting", "ky-thuat")
    assert {r.id for rs in engine._by_type.values() for r in rs} == {"coi"}
    with pytest.raises(Invalid, match="format spec"):
        b.change(
            "tin", {"actions": [{"type": "notify", "to": ["x"], "template": "{time:>9}"}]}, HEAD
        )


def test_the_engine_runs_no_loud_rule_without_an_approval_however_it_was_stored(
    tmp_path: Path,
) -> None:
    b, engine, calls, clock = book(tmp_path)
    with b.store.transaction() as conn:  # enabled, but written without the rule book
        repo.insert(
            conn,
            "coi",
            Rule.model_validate(SIREN).model_dump_json(),
            source="api",
            created_by="x",
            at=0,
            approval=None,
        )
    engine.reload()
    clock.advance(60)
    engine.tick()
    assert calls == [] and "coi" in engine.rules
    # The config file's rules are approved when seeded, also those stored before approvals.
    engine.seed([Rule.model_validate({**SIREN, "id": "coi-file"})])
    with b.store.transaction() as conn:
        repo.insert(
            conn,
            "coi-old",
            Rule.model_validate(SIREN).model_dump_json(),
            source="config",
            created_by="config",
            at=0,
            approval=None,
        )
    engine.seed([Rule.model_validate({**SIREN, "id": "coi-old"})])
    assert state(b, "coi-file")[1:] == ("approved", "config")
    assert state(b, "coi-old")[1:] == ("approved", "config")
    assert state(b, "coi")[1] is None
