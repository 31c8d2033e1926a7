"""A notification that went nowhere is shown as such: on the rule's firing (in Vietnamese,
English through the word tables), as the hub's ``notify_undelivered`` alert (raised once,
cleared when a later message is delivered) and on the alerts page, above the device alerts,
with the incident the rule still holds raised. A real broker, real webhook servers on
127.0.0.1, a fake clock for the notifier's back-off."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from html import unescape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.clock import FakeClock
from tests.broker import Broker
from tests.hubtest import hub_settings, wait_for
from tests.integration.web_fixture import WebHub, publish_many

pytestmark = pytest.mark.broker

RULES = """
[[rules]]
id = "nuoc-cao"
name = "Mực nước cao"
trigger = { type = "metric", metric = "water_level_cm", op = ">=", value = 100, hysteresis = 10 }
cooldown_s = 0
vars = { level = "3" }
[[rules.actions]]
type = "notify"
to = ["TO"]
title = "Nước cao"
template = "Nước tại {device.name}: {value} cm."
"""


class Hook:
    """A webhook receiver on 127.0.0.1 answering every POST with ``status``."""

    def __init__(self) -> None:
        self.status = 200
        self.got: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # server thread
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.got.append(json.loads(body))
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


def village(broker: Broker, data: Path, to: str, **env: str) -> WebHub:
    data.mkdir(parents=True, exist_ok=True)
    rules = data / "rules.toml"
    rules.write_text(RULES.replace("TO", to), encoding="utf-8")
    settings = hub_settings(
        broker,
        data / "hub",
        LANGSO_RULES_FILE=str(rules),
        LANGSO_HEALTH__CHECK_INTERVAL_S="3600",
        LANGSO_NOTIFY__MAX_ATTEMPTS="2",
        LANGSO_NOTIFY__RETRY_INITIAL_S="2",
        LANGSO_NOTIFY__RETRY_MAX_S="2",
        **env,
    )
    web = WebHub(settings, FakeClock())
    return web


def level(web: WebHub, broker: Broker, cm: float, firings: int) -> None:
    """A reading from the gauge; wait until the rule has logged ``firings`` in all."""
    topic = f"village/{web.settings.site}/sensor/wl-01/state"
    publish_many(broker, [(topic, json.dumps({"water_level_cm": cm}), False)])
    wait_for(lambda: len(firings_of(web)) >= firings, 10, f"{firings} firing(s)")


def firings_of(web: WebHub) -> list[dict[str, Any]]:
    r = web.http("technician").get("/api/rules/nuoc-cao/firings")
    r.raise_for_status()
    body: list[dict[str, Any]] = r.json()
    return body


def undelivered_alerts(web: WebHub) -> list[Any]:
    return web.hub.store.query(
        "SELECT id, state, severity FROM alerts WHERE rule='notify_undelivered'"
    )


def words(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def results_of(html: str) -> list[tuple[str, str]]:
    """Each firing result on a page: (its class, its words)."""
    return [
        (cls, words(body))
        for cls, body in re.findall(r'<li class="is-([a-z]+)">(.*?)</li>', html, re.S)
    ]


def signed_in(web: WebHub, role: str) -> httpx.Client:
    return web.sign_in(f"{role}-a", role)


def test_a_notification_to_a_group_without_a_channel_is_shown_unsent_and_alerted_once(
    broker: Broker, tmp_path: Path
) -> None:
    web = village(broker, tmp_path, "head")  # the group "head" has no channel
    head = signed_in(web, "head")
    tech = signed_in(web, "technician")
    try:
        level(web, broker, 150, 1)
        page = head.get("/app/rules/nuoc-cao").text
        assert ("warn", "! Nhắn tin: Không gửi được: chưa cấu hình kênh nhận tin") in results_of(
            page
        )
        assert "no channel configured" not in page and "✓ Nhắn tin" not in words(page)
        english = head.get("/app/rules/nuoc-cao?lang=en").text
        assert ("warn", "! Message: Not sent: no channel is configured to receive it") in (
            results_of(english)
        )
        # The hub's alert, once: the clear and the next raise go nowhere too.
        wait_for(lambda: undelivered_alerts(web), 5, "the alert")
        level(web, broker, 50, 2)
        level(web, broker, 160, 3)
        assert [(a["state"], a["severity"]) for a in undelivered_alerts(web)] == [
            ("raised", "warning")
        ]
        opened = web.http("technician").get("/api/alerts?state=open").json()
        assert [a["severity"] for a in opened if a["rule"] == "notify_undelivered"] == ["warning"]
        # The alerts page: the rule's incident first, then the alert with its count.
        alerts = tech.get("/app/alerts").text
        said = words(alerts)
        assert said.index("Quy tắc đang báo động") < said.index("Mực nước cao")
        assert said.index("Mực nước cao") < said.index("Cảnh báo thiết bị và trạm")
        assert "Mức 3" in said and "Mực nước = 160 cm" in said
        assert "3 tin báo chưa gửi được" in said
        assert "Tin báo không gửi được (3 tin)" in said
        assert "Mọi thiết bị đang ổn" not in said
    finally:
        head.close()
        tech.close()
        web.stop()


def test_a_refusing_webhook_fails_after_its_retries_then_a_later_delivery_clears_the_alert(
    broker: Broker, tmp_path: Path, hook: Hook
) -> None:
    channels = {"hook": {"kind": "webhook", "url": hook.url, "timeout_s": 2}}
    web = village(
        broker,
        tmp_path,
        "technicians",
        LANGSO_NOTIFY__CHANNELS=json.dumps(channels),
        LANGSO_NOTIFY__GROUPS=json.dumps({"technicians": ["hook"], "head": []}),
    )
    head = signed_in(web, "head")
    try:
        hook.status = 503
        level(web, broker, 150, 1)
        web.run_until(
            lambda: "failed (attempt 2)" in firings_of(web)[0]["actions"][0],
            step=2.0,
            limit=60,
            what="the notification given up",
        )
        assert len(hook.got) == 2
        page = head.get("/app/rules/nuoc-cao").text
        failed = [r for r in results_of(page) if r[0] == "failed"]
        assert failed and failed[0][1].startswith("✕ Nhắn tin: Gửi thất bại (lần thử 2)")
        assert "Kênh hook: " in failed[0][1] and "503" in failed[0][1]
        wait_for(lambda: undelivered_alerts(web), 5, "the alert")
        assert [a["state"] for a in undelivered_alerts(web)] == ["raised"]
        # The receiver is back: the rule's clearing message is delivered, the alert clears.
        hook.status = 204
        level(web, broker, 50, 2)
        wait_for(lambda: "sent (attempt 1)" in firings_of(web)[0]["actions"][0], 10, "delivered")
        page = head.get("/app/rules/nuoc-cao").text
        assert ("ok", "✓ Nhắn tin: Đã gửi tới hook") in results_of(page)
        assert any(r[1].startswith("✕ Nhắn tin: Gửi thất bại") for r in results_of(page))
        wait_for(lambda: [a["state"] for a in undelivered_alerts(web)] == ["cleared"], 5, "cleared")
        tech = signed_in(web, "technician")
        alerts = words(tech.get("/app/alerts").text)
        tech.close()
        assert "chưa gửi được" not in alerts and "Quy tắc đang báo động" not in alerts
        assert "Mọi thiết bị đang ổn" in alerts  # the rule cleared: nothing is raised
    finally:
        head.close()
        web.stop()
