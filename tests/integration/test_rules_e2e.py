"""Event rules end to end with the shipped config/rules.toml: a real broker, a fake clock,
the file sink, mock pins, and local receivers (an HTTP webhook, an SMTP server)."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from aiosmtpd.controller import Controller
from paho.mqtt.enums import CallbackAPIVersion

from audio.sinks.file import FileSink
from hub.clock import FakeClock
from tests.broker import Broker, free_port
from tests.hubtest import InProcessHub, hub_settings, wait_for

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 08:00 in the village
AMP = 17


class Webhook:
    """A local receiver: every JSON POST is kept."""

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.got.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def incidents(self, prefix: str) -> list[tuple[str, str]]:
        return [(m["incident"], m["state"]) for m in self.got if m["incident"].startswith(prefix)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    def __init__(self) -> None:
        self.mails: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(envelope.content)
        return "250 OK"


@pytest.fixture
def receivers() -> Iterator[tuple[Webhook, Mailbox, int]]:
    hook = Webhook()
    box = Mailbox()
    port = free_port()
    smtp = Controller(box, hostname="127.0.0.1", port=port)
    smtp.start()
    yield hook, box, port
    smtp.stop()
    hook.close()


@pytest.fixture
def village(
    broker: Broker, tmp_path: Path, receivers: tuple[Webhook, Mailbox, int]
) -> Iterator[InProcessHub]:
    hook, _, smtp_port = receivers
    dead = free_port()  # nothing listens there: a notification endpoint that is down
    channels = {
        "hook": {"kind": "webhook", "url": hook.url},
        "down": {"kind": "webhook", "url": f"http://127.0.0.1:{dead}/hook", "timeout_s": 1},
        "mail": {
            "kind": "email",
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_port,
            "starttls": False,
            "sender": "hub@thon.example",
            "to": ["head@thon.example"],
        },
    }
    settings = hub_settings(
        broker,
        tmp_path / "hub",
        LANGSO_RULES_FILE=str(ROOT / "config" / "rules.toml"),
        LANGSO_NOTIFY__CHANNELS=json.dumps(channels),
        LANGSO_NOTIFY__GROUPS=json.dumps({"technicians": ["down", "hook"], "head": ["mail"]}),
        LANGSO_HEALTH__DEVICES=json.dumps({"wl-01": {"name": "Cầu Đông"}}),
    )
    clock = FakeClock(T0)
    v = InProcessHub(settings, clock, sink=FileSink(tmp_path / "out", speed=0, clock=clock.now))
    yield v
    v.stop()


def level(v: InProcessHub, broker: Broker, device: str, cm: float) -> None:
    topic = f"village/{v.settings.site}/sensor/{device}/state"
    subprocess.run(
        [
            "mosquitto_pub",
            "-h",
            broker.host,
            "-p",
            str(broker.port),
            "-q",
            "1",
            "-t",
            topic,
            "-m",
            json.dumps({"water_level_cm": cm}),
        ],
        check=True,
        timeout=10,
    )
    wait_for(
        lambda: (
            (d := v.hub.ingest.device(device)) is not None and d.metrics.get("water_level_cm") == cm
        ),
        15,
        f"{device} at {cm}",
    )


def rules_tick(v: InProcessHub) -> None:
    v.hub.ingest.call_wait(v.hub.rules.tick)


def played(v: InProcessHub) -> list[dict[str, Any]]:
    return [b for b in v.http().get("/api/broadcasts").json() if b["status"] == "played"]


def test_flood_level_2_plays_the_emergency_notifies_once_and_cancels_with_hysteresis(
    village: InProcessHub, broker: Broker, receivers: tuple[Webhook, Mailbox, int]
) -> None:
    hook, box, _ = receivers
    v = village
    level(v, broker, "wl-01", 150)
    level(v, broker, "wl-01", 225)  # over level 1 (180) and level 2 (220)
    v.clock.advance(59)  # type: ignore[attr-defined]
    rules_tick(v)
    assert v.hub.rules.firings == 0  # the duration (60 s) has not passed
    v.clock.advance(2)  # type: ignore[attr-defined]
    level(v, broker, "wl-01", 226)
    # Level 2's emergency plays (file sink) with the amplifier switched.
    v.run_until(
        lambda: [b for b in played(v) if b["priority"] == "emergency"],
        what="the emergency broadcast",
    )
    emergency = v.http().get("/api/announcements").json()
    texts = {a["priority"]: a["text"] for a in emergency}
    assert texts["emergency"].startswith(
        "Cảnh báo: mực nước tại Cầu Đông đã lên 226 cm, vượt báo động 2."
    )
    v.run_until(
        lambda: (
            [s.state for s in v.pins.pin(AMP).states][-1] is False
            and len(v.pins.pin(AMP).states) >= 3
        ),
        what="amplifier off again",
    )
    assert [s.state for s in v.pins.pin(AMP).states][:3] == [False, True, False]
    # One webhook and one e-mail for the level-2 incident, however many samples came.
    level(v, broker, "wl-01", 230)
    level(v, broker, "wl-01", 231)
    wait_for(lambda: hook.incidents("flood-level-2"), 10, "the webhook")
    wait_for(
        lambda: any(b"X-Langso-Incident: flood-level-2" in m for m in box.mails), 10, "the e-mail"
    )
    assert [s for _, s in hook.incidents("flood-level-2")] == ["raised"]
    level2_mails = [m for m in box.mails if b"X-Langso-Incident: flood-level-2" in m]
    assert len(level2_mails) == 1
    # Down to 212: inside the hysteresis band (220 - 10), nothing clears.
    level(v, broker, "wl-01", 212)
    v.clock.advance(120)  # type: ignore[attr-defined]
    rules_tick(v)
    firings = v.http("technician").get("/api/rules/flood-level-2/firings").json()
    assert [f["state"] for f in firings] == ["raised"]
    assert firings[0]["cause"]["value"] == 226 and firings[0]["device_id"] == "wl-01"
    # Under 210 for the duration: the cancellation plays, linked to the emergency.
    level(v, broker, "wl-01", 205)
    v.clock.advance(61)  # type: ignore[attr-defined]
    rules_tick(v)
    v.run_until(
        lambda: [a for a in v.http().get("/api/announcements").json() if a["corrects"]],
        what="the cancellation",
    )
    cancel = next(a for a in v.http().get("/api/announcements").json() if a["corrects"])
    em = next(a for a in v.http().get("/api/announcements").json() if a["priority"] == "emergency")
    assert cancel["corrects"] == em["id"]
    assert "đã xuống dưới báo động 2" in cancel["text"]
    v.run_until(
        lambda: any(b["announcement_id"] == cancel["id"] for b in played(v)),
        what="the cancellation played",
    )
    wait_for(
        lambda: "cleared" in [s for _, s in hook.incidents("flood-level-2")],
        10,
        "the all-clear webhook",
    )
    assert [s for _, s in hook.incidents("flood-level-2")] == ["raised", "cleared"]
    # The endpoint that is down was tried again and blocked nothing.
    assert v.hub.notifier.stats.retried > 0


def test_flapping_around_the_threshold_causes_no_storm(
    village: InProcessHub, broker: Broker, receivers: tuple[Webhook, Mailbox, int]
) -> None:
    hook, _, _ = receivers
    v = village
    for i in range(12):  # every 20 s across 220: never 60 s above
        level(v, broker, "wl-02", 222 if i % 2 else 218)
        v.clock.advance(20)  # type: ignore[attr-defined]
        rules_tick(v)
    firings = v.http("technician").get("/api/rules/flood-level-2/firings").json()
    assert firings == []
    assert v.http().get("/api/broadcasts").json() == []
    assert not hook.incidents("flood-level-2")


def test_an_ap_whose_will_fires_is_notified_once_after_5_minutes(
    village: InProcessHub, broker: Broker, receivers: tuple[Webhook, Mailbox, int]
) -> None:
    hook, _, _ = receivers
    v = village
    site = v.settings.site
    status = f"village/{site}/ap/ap-07/status"
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"ap-07-{site}")
    c.will_set(status, b"offline", qos=1, retain=True)
    c.connect(broker.host, broker.port)
    c.loop_start()
    c.publish(status, b"online", qos=1, retain=True).wait_for_publish(5)
    c.publish(f"village/{site}/ap/ap-07/state", b'{"clients": 4}', qos=1).wait_for_publish(5)
    wait_for(lambda: v.hub.ingest.device("ap-07"), 15, "ap-07 seen")
    c.loop_stop()
    sock = c.socket()
    assert sock is not None
    sock.close()  # power cut at the AP: the broker fires its will
    wait_for(lambda: v.hub.monitor.devices["ap-07"].status == "offline", 15, "offline")
    for _ in range(4):
        v.clock.advance(60)  # type: ignore[attr-defined]
        rules_tick(v)
    v.clock.advance(59)  # type: ignore[attr-defined]
    rules_tick(v)
    assert not hook.incidents("ap-offline")
    v.clock.advance(2)  # type: ignore[attr-defined]
    rules_tick(v)
    # The notifier's retries run on the hub's (fake) clock: a first attempt that timed out on
    # a busy machine is tried again only if that clock moves, so it moves while we wait.
    wait_for(
        lambda: hook.incidents("ap-offline") or v.clock.advance(1),  # type: ignore[attr-defined]
        30,
        "one notification",
    )
    v.clock.advance(600)  # type: ignore[attr-defined]
    rules_tick(v)
    msgs = [m for m in hook.got if m["incident"].startswith("ap-offline")]
    assert len(msgs) == 1 and msgs[0]["state"] == "raised"
    assert "ap-07" in msgs[0]["body"]


def test_rules_api_validates_and_audits(village: InProcessHub) -> None:
    t = village.http("technician")
    rules = {r["id"] for r in t.get("/api/rules").json()}
    assert {"flood-level-2", "ap-offline", "emergency-button"} <= rules
    bad = {
        "id": "x",
        "name": "x",
        "trigger": {"type": "button", "action": "stop"},
        "actions": [{"type": "notify", "to": ["nobody"], "template": "x"}],
    }
    r = t.post("/api/rules", json=bad)
    assert r.status_code == 422 and "no notification group" in r.json()["detail"]
    ok = {**bad, "actions": [{"type": "publish", "topic": "village/t/siren", "payload": "on"}]}
    assert t.post("/api/rules", json=ok).status_code == 201
    assert t.post("/api/rules", json=ok).status_code == 409
    assert t.patch("/api/rules/x", json={"enabled": False}).json()["enabled"] is False
    assert t.delete("/api/rules/x").status_code == 204
    assert village.http().get("/api/rules").status_code == 401
    actions = [
        r["action"]
        for r in village.hub.store.query(
            "SELECT action FROM audit_log WHERE target='x' ORDER BY id"
        )
    ]
    assert actions == ["rule.add", "rule.change", "rule.delete"]
