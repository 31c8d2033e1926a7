"""A technician on a phone (390×844, real Chromium) opens the alerts during a flood: the
rule's emergency is listed first, with its level, time and announcement, and the
notification that went nowhere (a group with no channel) says so in Vietnamese; the page
never reads "everything is fine" while the rule holds the flood raised."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.clock import FakeClock
from tests.broker import Broker
from tests.browser.phone import Phone
from tests.hubtest import hub_settings, wait_for
from tests.integration.web_fixture import WebHub, publish_many

pytestmark = pytest.mark.broker

FLOOD = """
[[rules]]
id = "lu-3"
name = "Mực nước vượt báo động 3"
trigger = { type = "metric", metric = "water_level_cm", op = ">=", value = 260, hysteresis = 10 }
cooldown_s = 0
vars = { level = "3" }
[[rules.actions]]
type = "announce"
priority = "emergency"
title = "Báo động lũ 3"
template = "Khẩn cấp: nước lên {value} xăng ti mét."
[[rules.actions]]
type = "notify"
to = ["head"]
title = "Báo động 3"
template = "Nước tại {device.name}: {value} cm."
"""


@pytest.fixture(scope="module")
def flood(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebHub]:
    data = tmp_path_factory.mktemp("notify-browser")
    (data / "rules.toml").write_text(FLOOD, encoding="utf-8")
    settings = hub_settings(
        broker,
        data / "hub",
        LANGSO_RULES_FILE=str(data / "rules.toml"),
        LANGSO_HEALTH__CHECK_INTERVAL_S="3600",
        LANGSO_ANNOUNCEMENTS__REQUIRE_CLOCK_SYNC="false",
        LANGSO_AUDIO__PRERENDER_MAX="0",  # one emergency rendered, when the rule fires
    )
    web = WebHub(settings, FakeClock())
    try:
        topic = f"village/{settings.site}/sensor/cau-dong/state"
        publish_many(broker, [(topic, json.dumps({"water_level_cm": 275}), False)])
        wait_for(
            lambda: web.hub.store.one("SELECT 1 FROM announcements WHERE priority='emergency'"),
            20,
            "the flood's emergency announcement",
        )
        yield web
    finally:
        web.stop()


def test_the_alerts_page_lists_the_flood_and_the_undelivered_notification_first(
    browser: Any, flood: WebHub, artifacts: Path
) -> None:
    phone = Phone(browser, flood, prefix="notify-", locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
    try:
        page = phone.page
        phone.sign_in("ky-thuat", "technician")
        phone.tab("/app/alerts")
        page.wait_for_url("**/app/alerts")
        rule = page.locator("[data-raised-rules] .raised-rule").first
        assert rule.is_visible()
        said = rule.inner_text()
        assert "Mực nước vượt báo động 3" in said and "Mức 3" in said and "Khẩn cấp" in said
        assert "Đã phát: Báo động lũ 3" in said and "Mực nước = 275\xa0cm" in said
        assert "Không gửi được: chưa cấu hình kênh nhận tin" in said
        notice = page.locator(".notify-notice")
        assert notice.inner_text().strip() == "! 1 tin báo chưa gửi được"
        assert notice.locator("a").get_attribute("href") == "/app/alerts"
        hub_alert = page.locator("[data-alert-list=open] li", has_text="Tin báo không gửi được")
        assert hub_alert.is_visible()
        # Above the device alerts, on a phone's first screen; never "everything is fine".
        top = rule.bounding_box()
        below = page.locator("#open-h").bounding_box()
        assert top is not None and below is not None and top["y"] < below["y"]
        assert top["y"] + top["height"] <= 844 * 1.5
        assert top["x"] >= 0 and top["x"] + top["width"] <= 390
        assert "Mọi thiết bị đang ổn" not in page.inner_text("main")
        phone.shot(artifacts, "alerts-during-flood")
    finally:
        phone.close()
