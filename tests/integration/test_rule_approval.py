"""A technician cannot reach the loudspeakers through a rule (issue #10, item 2): the hub in
this process with a real broker, a fake clock, the file sink, real HTTP; then the rules page
over HTTP with a session cookie, as a phone signs in."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest

from audio.sinks.file import FileSink
from hub.clock import FakeClock
from tests.broker import Broker
from tests.hubtest import InProcessHub, hub_settings
from tests.integration.web_fixture import WebHub, form_value

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 08:00 in the village

#: A technician's siren of words: an emergency on the loudspeakers 30 s from now, hourly.
LOUD = {
    "id": "phat-khan",
    "name": "Phát khẩn",
    "cooldown_s": 0,
    "trigger": {"type": "schedule", "start": "2026-12-01T08:00:30", "rrule": "FREQ=HOURLY"},
    "actions": [
        {
            "type": "announce",
            "priority": "emergency",
            "title": "Khẩn cấp",
            "template": "Thông báo khẩn lúc {time}.",
        }
    ],
}


@pytest.fixture
def village(broker: Broker, tmp_path: Path) -> Iterator[InProcessHub]:
    settings = hub_settings(
        broker, tmp_path / "hub", LANGSO_RULES_FILE=str(ROOT / "config" / "rules.toml")
    )
    clock = FakeClock(T0)
    v = InProcessHub(settings, clock, sink=FileSink(tmp_path / "out", speed=0, clock=clock.now))
    yield v
    v.stop()


def on_air(out: Path) -> list[Path]:
    """What the file sink played: one WAV per broadcast."""
    return sorted(out.glob("*.wav")) if out.exists() else []


def tick(v: InProcessHub) -> None:
    v.hub.ingest.call_wait(v.hub.rules.tick)


def played(v: InProcessHub) -> list[dict[str, Any]]:
    return [b for b in v.http().get("/api/broadcasts").json() if b["status"] == "played"]


def audit(v: InProcessHub | WebHub, action: str, target: str) -> list[Any]:
    return v.hub.store.query(
        "SELECT actor, detail FROM audit_log WHERE action=? AND target=? ORDER BY id",
        (action, target),
    )


def test_a_technicians_emergency_rule_stays_off_air_until_a_head_approves_it(
    village: InProcessHub, tmp_path: Path
) -> None:
    v = village
    tech, head = v.http("technician"), v.http("head")
    out = tmp_path / "out"
    r = tech.post("/api/rules", json=LOUD)
    assert r.status_code == 201, r.text
    rule = r.json()
    assert (rule["enabled"], rule["approval"], rule["approved_by"]) == (False, "awaiting", None)
    # Past the trigger: nothing fires, nothing is said.
    v.clock.advance(60)  # type: ignore[attr-defined]
    tick(v)
    assert tech.get("/api/rules/phat-khan/firings").json() == []
    assert v.http().get("/api/broadcasts").json() == [] and on_air(out) == []
    # The technician can neither switch it on nor approve it.
    r = tech.patch("/api/rules/phat-khan", json={"enabled": True})
    assert r.status_code == 403 and "waits for the head's approval" in r.json()["detail"]
    assert tech.post("/api/rules/phat-khan/approve").status_code == 403
    # The head approves: it is on, and the approval is audited with who asked.
    r = head.post("/api/rules/phat-khan/approve")
    assert r.status_code == 200, r.text
    rule = r.json()
    assert (rule["enabled"], rule["approval"], rule["approved_by"]) == (True, "approved", "head1")
    assert head.post("/api/rules/phat-khan/approve").status_code == 409
    [row] = audit(v, "rule.approve", "phat-khan")
    assert row["actor"] == "head1" and json.loads(row["detail"]) == {"asked_by": "technician1"}
    # At its next time (09:00:30; the one missed while it waited is not made up) it plays.
    tick(v)
    assert tech.get("/api/rules/phat-khan/firings").json() == []
    v.clock.advance(3600)  # type: ignore[attr-defined]
    tick(v)
    v.run_until(lambda: played(v), what="the approved rule's emergency on air")
    [b] = played(v)
    assert b["priority"] == "emergency"
    assert len(on_air(out)) == 1
    # The technician changes what it says: the approval is withdrawn, the rule is off again.
    changed = {"actions": [{**LOUD["actions"][0], "template": "Lời khác lúc {time}."}]}  # type: ignore[index]
    rule = tech.patch("/api/rules/phat-khan", json=changed).json()
    assert (rule["enabled"], rule["approval"]) == (False, "awaiting")
    assert not v.hub.rules.rules["phat-khan"].enabled
    v.clock.advance(3600)  # type: ignore[attr-defined]
    tick(v)
    assert len(tech.get("/api/rules/phat-khan/firings").json()) == 1
    assert len(on_air(out)) == 1


def test_templates_name_fields_only_and_their_output_is_capped(village: InProcessHub) -> None:
    tech = village.http("technician")
    notify = {
        "id": "tin",
        "name": "Tin",
        "trigger": {"type": "button", "action": "announce"},
        "actions": [{"type": "notify", "to": ["technicians"], "template": "x"}],
    }
    for template, reason in [
        ("{time:>300000000}", "placeholder {time:>300000000}: a format spec (:>300000000)"),
        ("{value!r}", "placeholder {value!r}: a conversion (!r) is not allowed"),
        ("{device.name.__class__}", "placeholder {device.name.__class__} is not allowed"),
        ("{rule.vars}", "unknown placeholder 'rule.vars'"),
        ("{device.name}" + "x" * 995, "longer than 1000 characters"),
    ]:
        for rule in (notify, LOUD):
            body = {**rule, "actions": [{**rule["actions"][0], "template": template}]}  # type: ignore[index]
            r = tech.post("/api/rules", json=body)
            assert r.status_code == 422, (template, r.text)
            assert r.json()["detail"].startswith("actions.0.template: ")
            assert reason in r.json()["detail"], (template, r.json())
    # A notify-only rule stays the technician's: on at once, needing no approval.
    ok = tech.post("/api/rules", json=notify).json()
    assert (ok["enabled"], ok["approval"]) == (True, "not_needed")
    # The ready-made rules of config/rules.toml are approved (by the file).
    shipped = tech.get("/api/rules/flood-level-2").json()
    assert (shipped["approval"], shipped["approved_by"]) == ("approved", "config")


# -- the rules page ---------------------------------------------------------------------
@pytest.fixture
def web(broker: Broker, tmp_path: Path) -> Iterator[WebHub]:
    settings = hub_settings(
        broker, tmp_path / "web", LANGSO_RULES_FILE=str(ROOT / "config" / "rules.toml")
    )
    w = WebHub(settings, FakeClock(T0))
    yield w
    w.stop()


def words(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def test_the_rules_page_shows_the_wait_and_the_head_approves(web: WebHub) -> None:
    tech: httpx.Client = web.sign_in("ky-thuat", "technician")
    head: httpx.Client = web.sign_in("truong-thon", "head")
    try:
        csrf = form_value(tech.get("/app/rules").text, "csrf")
        r = tech.post("/app/rules", data={"csrf": csrf, "definition": json.dumps(LOUD)})
        assert (
            r.status_code == 303 and r.headers["location"] == "/app/rules?ok=awaiting#r-phat-khan"
        )
        page = tech.get("/app/rules?ok=awaiting").text
        assert "Đã lưu. Quy tắc đang tắt, chờ trưởng thôn duyệt." in words(page)
        card = page[page.index('id="r-phat-khan"') :]
        card = card[: card.index("</li>")]
        assert "Chờ trưởng thôn duyệt" in words(card) and "ky-thuat đề nghị" in words(card)
        assert "/approve" not in card  # the technician has no Approve button
        en = tech.get("/app/rules/phat-khan?lang=en").text
        assert "Awaiting the head's approval" in words(en)
        # The head sees the button, approves, and the rule runs.
        page = head.get("/app/rules").text
        card = page[page.index('id="r-phat-khan"') :]
        assert 'action="/app/rules/phat-khan/approve"' in card[: card.index("</li>")]
        csrf = form_value(page, "csrf")
        r = head.post("/app/rules/phat-khan/approve", data={"csrf": csrf, "next": "/app/rules"})
        assert (
            r.status_code == 303 and r.headers["location"] == "/app/rules?ok=approved#r-phat-khan"
        )
        assert web.hub.rules.rules["phat-khan"].enabled
        page = head.get("/app/rules/phat-khan").text
        assert "Chờ trưởng thôn duyệt" not in words(page)
        assert "truong-thon đã duyệt" in words(page)
        assert [r["actor"] for r in audit(web, "rule.approve", "phat-khan")] == ["truong-thon"]
        # A technician's approve form is refused.
        csrf = form_value(tech.get("/app/rules").text, "csrf")
        assert tech.post("/app/rules/phat-khan/approve", data={"csrf": csrf}).status_code == 403
    finally:
        tech.close()
        head.close()
