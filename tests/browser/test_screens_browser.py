"""What the technician and the head see is true, in a real Chromium (issue 11, item 11): a
technician on a 1366×768 laptop finds what the hub refused from MQTT from the devices
page, in words; the head on a 390×844 phone opens an announcement from its history row."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from audio.sinks.null import NullSink
from tests.broker import Broker
from tests.browser.phone import Phone
from tests.hubtest import hub_settings, wait_for
from tests.integration.web_fixture import WebHub, publish_many

pytestmark = pytest.mark.broker

LAPTOP = {"width": 1366, "height": 768}


@pytest.fixture(scope="module")
def web(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebHub]:
    settings = hub_settings(
        broker,
        tmp_path_factory.mktemp("screens"),
        LANGSO_ANNOUNCEMENTS__REQUIRE_CLOCK_SYNC="false",
        LANGSO_HEALTH__CHECK_INTERVAL_S="3600",
    )
    h = WebHub(settings)
    h.hub.playout.sink = NullSink(speed=0, clock=h.clock.now)
    yield h
    h.stop()


def test_a_technician_finds_the_refused_messages_from_the_devices_page(
    browser: Any, web: WebHub, broker: Broker, artifacts: Path
) -> None:
    site = web.settings.site
    publish_many(
        broker,
        [
            (f"village/{site}/ap/ap-cong-lang/status", "online", False),
            (f"village/{site}/ap/ap-cong-lang/state", '{"clients": 3,}', False),
            (f"village/{site}/ap/ap-cong-lang/state", json.dumps({"clients": "ba"}), False),
            (f"village/{site}/sensor/muc-nuoc/state", b"\x00\xff<b>bold</b>", False),
        ],
    )
    wait_for(
        lambda: web.hub.store.one("SELECT count(*) FROM dead_letters")[0] >= 3,  # type: ignore[index]
        10,
        "the refused messages stored",
    )
    # Phone() makes a phone's context; a laptop gets a plain one (as the charts' test does).
    laptop = Phone(browser, web, prefix="deadletters-")
    laptop.context.close()
    laptop.context = browser.new_context(viewport=LAPTOP, locale="vi-VN")
    laptop.context.set_default_timeout(5000)
    laptop.page = laptop.context.new_page()
    laptop.page.on("pageerror", lambda e: laptop.errors.append(f"page error: {e}"))
    try:
        page = laptop.page
        laptop.sign_in("ky-thuat", "technician")
        laptop.tab("/app/devices")
        link = page.locator("a[data-dead-letters]")
        assert link.is_visible() and "3 tin lỗi trong 24 giờ qua" in link.inner_text()
        laptop.shot(artifacts, "devices")
        link.click()
        page.wait_for_url(re.compile(r"/app/dead-letters$"))
        assert page.locator("h1").inner_text() == "Tin lỗi từ thiết bị"
        items = page.locator("li.dl-item")
        assert items.count() == 3
        # Newest first: the sensor's binary message, its reason in words and where it came from.
        newest = items.nth(0)
        assert newest.locator(".dl-reason").inner_text() == "Không phải chữ (UTF-8)"
        assert newest.locator(".dl-topic").inner_text() == f"village/{site}/sensor/muc-nuoc/state"
        assert not newest.locator(".dl-payload").is_visible()
        newest.locator("summary").click()
        assert newest.locator(".dl-payload").inner_text().startswith("00 ff 3c 62 3e")
        assert page.locator("b", has_text="bold").count() == 0  # shown as bytes, never markup
        laptop.shot(artifacts, "list")
        # A device's own: from its row to its page, and from there back to its letters.
        items.nth(1).locator("a", has_text="ap-cong-lang").click()
        page.wait_for_url(re.compile(r"/app/devices/ap-cong-lang$"))
        own = page.locator("a[data-dead-letters]")
        assert "2 tin lỗi trong 24 giờ qua" in own.inner_text()
        own.click()
        page.wait_for_url(re.compile(r"/app/dead-letters\?device=ap-cong-lang$"))
        reasons = page.locator(".dl-reason").all_inner_texts()
        assert reasons == ["Giá trị sai kiểu", "Không phải JSON"], reasons
        page.select_option("#dl-kind", "not_json")
        page.click(".dl-filters button[type=submit]")
        assert page.locator(".dl-reason").all_inner_texts() == ["Không phải JSON"]
        laptop.shot(artifacts, "filtered")
    finally:
        laptop.close()


def test_the_head_opens_an_announcement_from_its_history_row_on_a_phone(
    browser: Any, web: WebHub, artifacts: Path
) -> None:
    r = web.http("head").post(
        "/api/announcements",
        json={"title": "Loa thử buổi tối", "text": "Xin chào bà con.", "repeat": 2},
    )
    assert r.status_code == 201, r.text
    a = r.json()
    web.run_until(
        lambda: web.hub.store.one(
            "SELECT 1 FROM broadcasts WHERE announcement_id=? AND status='played'", (a["id"],)
        ),
        step=2.0,
        what="the broadcast played",
    )
    s = round(a["duration_s"])
    phone = Phone(browser, web, prefix="announcement-", locale="vi-VN")
    try:
        page = phone.page
        phone.sign_in("truong-thon", "head")
        phone.go("/app/history")
        row = page.locator("li.log-item", has_text="Loa thử buổi tối")
        row.locator("a.log-link").click()
        page.wait_for_url(re.compile(rf"/app/announcements/{a['id']}$"))
        assert page.locator("h1").inner_text().startswith("Loa thử buổi tối")
        length = page.locator("[data-length]")
        assert length.is_visible()
        assert length.inner_text() == f"Phát {s // 60}:{s % 60:02d} (cả chuông, đọc 2 lần)"
        aired = page.locator("ol.annp-aired li")
        assert aired.count() == 1 and "Đã phát" in aired.inner_text()
        # Nothing wider than the phone.
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, width
        phone.shot(artifacts, "page")
    finally:
        phone.close()
