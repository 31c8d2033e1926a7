"""Device names end to end: the loudspeakers never read a device id, technicians name devices.

A real broker, the hub in this process (fake clock, real HTTP, real SQLite, real
espeak-ng and ffmpeg for the two announcements), a rule file of one flood rule that
announces and notifies a local webhook. Before anyone names ``wl-01`` the rule's text says
it by its kind and number; once a technician has set its names through the API, the
loudspeakers say its spoken name and the message its display name, location and zone.
The API and the device page refuse bad names with the reason, next to the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from audio.normalize_vi import normalize
from hub.clock import FakeClock
from tests.broker import Broker
from tests.hubtest import hub_settings, wait_for
from tests.integration.test_rules_e2e import Webhook
from tests.integration.web_fixture import WebHub, form_value, publish_many

pytestmark = pytest.mark.broker

T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 08:00 in the village: no quiet hours

RULES = """
[[rules]]
id = "flood-test"
name = "Mực nước cao"
trigger = { type = "metric", metric = "water_level_cm", op = ">=", value = 180, hysteresis = 10 }
conditions = { kinds = ["sensor"] }
cooldown_s = 0

[[rules.actions]]
type = "announce"
priority = "high"
title = "Báo động lũ"
template = "Thông báo: mực nước tại {device.name} đã lên {value} cm."

[[rules.actions]]
type = "notify"
to = ["hook"]
title = "Lũ"
template = "Mực nước tại {device} ({location}, {zone}): {value} cm."
clear_template = "Hết: {device}"
"""


@pytest.fixture(scope="module")
def hook() -> Iterator[Webhook]:
    w = Webhook()
    yield w
    w.close()


@pytest.fixture(scope="module")
def village(
    broker: Broker, tmp_path_factory: pytest.TempPathFactory, hook: Webhook
) -> Iterator[WebHub]:
    tmp = tmp_path_factory.mktemp("names")
    rules = tmp / "rules.toml"
    rules.write_text(RULES, encoding="utf-8")
    settings = hub_settings(
        broker,
        tmp / "hub",
        LANGSO_RULES_FILE=str(rules),
        LANGSO_HEALTH__CHECK_INTERVAL_S="3600",
        LANGSO_NOTIFY__CHANNELS=json.dumps({"hook": {"kind": "webhook", "url": hook.url}}),
    )
    v = WebHub(settings, FakeClock(T0))
    try:
        yield v
    finally:
        v.stop()


def level(v: WebHub, broker: Broker, device: str, cm: float) -> None:
    topic = f"village/{v.settings.site}/sensor/{device}/state"
    publish_many(broker, [(topic, json.dumps({"water_level_cm": cm}), False)])
    wait_for(
        lambda: (
            (d := v.hub.ingest.device(device)) is not None and d.metrics.get("water_level_cm") == cm
        ),
        10,
        f"{device} at {cm}",
    )


def said(v: WebHub, n: int) -> list[str]:
    """The texts of the rule's announcements, oldest first, once there are ``n``."""

    def texts() -> list[str] | None:
        got = [a["text"] for a in v.http().get("/api/announcements").json()]
        return list(reversed(got)) if len(got) >= n else None

    out: list[str] = wait_for(texts, 20, f"{n} announcement(s)")
    return out


def test_the_loudspeakers_say_a_gauge_by_kind_then_by_the_name_a_technician_gave(
    village: WebHub, broker: Broker, hook: Webhook
) -> None:
    v = village
    level(v, broker, "wl-01", 150)
    level(v, broker, "wl-01", 190)
    first = said(v, 1)[0]
    assert first == "Thông báo: mực nước tại cảm biến mực nước số 1 đã lên 190 cm."
    # What the speech engine hears (audio.render normalises, then speaks): no id in it.
    heard = normalize(first)
    assert "wl" not in heard.lower() and "không một" not in heard, heard
    assert "số một" in heard
    msg = wait_for(lambda: [m for m in hook.got if m["state"] == "raised"], 10, "the message")
    assert msg[0]["body"] == "Mực nước tại wl-01 (, ): 190 cm."  # a technician reads the id

    api = v.http("technician")
    r = api.patch(
        "/api/devices/wl-01",
        json={
            "display_name": "Cầu Đông (wl-01)",
            "spoken_name": "cầu Đông",
            "location": "chân cầu Đông",
            "zone": "xom-dong",
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["name"], body["spoken_name"], body["location"], body["zone"]) == (
        "Cầu Đông (wl-01)",
        "cầu Đông",
        "chân cầu Đông",
        "xom-dong",
    )
    listed = {d["id"]: d for d in api.get("/api/devices").json()}
    assert listed["wl-01"]["name"] == "Cầu Đông (wl-01)"  # the cached list was rebuilt
    audit = v.hub.store.one(
        "SELECT actor, detail FROM audit_log WHERE action='device.rename' AND target='wl-01'"
    )
    assert audit is not None and audit["actor"] == "technician1"
    assert json.loads(audit["detail"])["spoken_name"] == {"from": None, "to": "cầu Đông"}

    level(v, broker, "wl-01", 100)  # clears (back under 170)
    level(v, broker, "wl-01", 195)
    second = said(v, 2)[1]
    assert second == "Thông báo: mực nước tại cầu Đông đã lên 195 cm."
    raised = wait_for(
        lambda: [m for m in hook.got if m["state"] == "raised"][1:], 10, "the second message"
    )
    assert raised[0]["body"] == "Mực nước tại Cầu Đông (wl-01) (chân cầu Đông, Xóm Đông): 195 cm."


def test_bad_names_are_refused_with_the_reason(village: WebHub, broker: Broker) -> None:
    v = village
    level(v, broker, "wl-02", 120)
    api = v.http("technician")
    r = api.patch("/api/devices/wl-02", json={"zone": "xom-bac"})
    assert r.status_code == 422 and "xom-dong" in r.json()["detail"], r.text
    r = api.patch("/api/devices/wl-02", json={"display_name": "x" * 65})
    assert r.status_code == 422 and "64" in r.json()["detail"], r.text
    r = api.patch("/api/devices/wl-02", json={"spoken_name": "12-34"})
    assert r.status_code == 422 and "words" in r.json()["detail"], r.text
    r = api.patch("/api/devices/wl-02", json={"location": "bến\u0000đò"})
    assert r.status_code == 422 and "control" in r.json()["detail"], r.text
    r = api.patch("/api/devices/wl-02", json={"nickname": "x"})
    assert r.status_code == 422, r.text
    assert api.patch("/api/devices/nope-9", json={"location": "x"}).status_code == 404
    assert v.http("head").patch("/api/devices/wl-02", json={"location": "x"}).status_code == 403
    assert v.http().patch("/api/devices/wl-02", json={"location": "x"}).status_code == 401
    # Nothing of it was kept; clearing a field (null) goes back to the default.
    assert api.patch("/api/devices/wl-02", json={"location": "cống Tây"}).status_code == 200
    r = api.patch("/api/devices/wl-02", json={"location": None})
    assert r.status_code == 200 and r.json()["location"] == ""
    assert r.json()["named"] == {
        "display_name": None,
        "spoken_name": None,
        "location": None,
        "zone": None,
    }


def test_the_page_form_says_what_to_fix_next_to_the_field(village: WebHub, broker: Broker) -> None:
    v = village
    level(v, broker, "wl-03", 120)
    c = v.sign_in("ky-thuat", "technician")
    try:
        page = c.get("/app/devices/wl-03")
        csrf = form_value(page.text, "csrf")
        r = c.post(
            "/app/devices/wl-03/names",
            data={"csrf": csrf, "display_name": "Cống Tây", "spoken_name": "3", "zone": "x"},
        )
        assert r.status_code == 422
        assert 'id="spoken_name-error">Hãy viết bằng chữ, như loa sẽ đọc.</p>' in r.text
        assert 'id="zone-error">Hãy chọn một vùng loa trong danh sách.</p>' in r.text
        assert 'value="Cống Tây"' in r.text  # what was typed is kept
        r = c.post(
            "/app/devices/wl-03/names",
            data={"csrf": csrf, "display_name": "Cống Tây", "spoken_name": "", "zone": ""},
        )
        assert r.status_code == 303 and r.headers["location"] == "/app/devices/wl-03?ok=names"
        page = c.get(r.headers["location"])
        assert "<h1>Cống Tây</h1>" in page.text and "Đã lưu tên thiết bị." in page.text
        assert "Loa sẽ đọc: “Cống Tây”" in page.text
        r = c.post("/app/devices/wl-03/names", data={"csrf": "wrong", "location": "x"})
        assert r.status_code == 403
    finally:
        c.close()
