"""A technician names a device on a phone (390×844) in a real Chromium: the form says what to
fix next to the field, the page and the device list show the new name, and the device page
labels every key in words (no ``ssid``, ``fw``, ``uptime_s``; "11 ngày 8 giờ", not "11 d 8 h";
wifi users a whole number even where a chart averaged them)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.ingest.writer import DEVICE_FLUSH_S
from tests.broker import Broker
from tests.browser.phone import Phone
from tests.hubtest import wait_for
from tests.integration.web_fixture import WebHub, publish_many

pytestmark = pytest.mark.broker

AP = "ap-nha-van-hoa"  # seeded with a day of readings and its ssid (tests/browser/conftest.py)


@pytest.fixture
def phone(browser: Any, web: WebHub, broker: Broker) -> Iterator[Phone]:
    topic = f"village/{web.settings.site}/ap/{AP}/state"
    web.clock.advance(DEVICE_FLUSH_S)  # type: ignore[attr-defined]  # its row is written again
    body = {"uptime_s": 11 * 86_400 + 8 * 3600 + 125, "fw": "OpenWrt 23.05.3", "clients": 14}
    publish_many(broker, [(topic, json.dumps(body), False)])
    wait_for(lambda: "fw" in web.hub.devices.get(AP).info, 10, "the AP's fw stored")
    p = Phone(browser, web, prefix="devnames-", locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
    try:
        yield p
    finally:
        p.close()


def test_a_technician_renames_a_device_and_reads_its_page_in_words(
    phone: Phone, artifacts: Path
) -> None:
    page = phone.page
    phone.sign_in("tho-dien", "technician")
    phone.go(f"/app/devices/{AP}?range=7d")
    # Every key in words; the uptime said in days and hours.
    labels = page.locator(".kv dt").all_inner_texts()
    assert {"Tên mạng wifi", "Phiên bản phần mềm", "Thời gian chạy"} <= set(labels), labels
    assert not {"ssid", "fw", "uptime_s", "uptime s"} & {x.strip() for x in labels}, labels
    uptime = page.locator(".kv div", has_text="Thời gian chạy").locator("dd").inner_text()
    assert uptime == "11 ngày 8 giờ"
    assert not re.search(r"\d\s*d\s+\d+\s*h", page.inner_text("main"))
    assert page.locator(".kv div", has_text="Nguồn dữ liệu").locator("dd").inner_text() == (
        "MQTT chuẩn của hub"
    )
    # A week's chart averages the wifi users; it still says them as whole numbers.
    clients = page.locator("figure.chart-card", has_text="Người dùng wifi")
    said = (clients.locator("svg desc").text_content() or "") + " ".join(
        clients.locator("text.chart-value").all_text_contents()
    )
    assert said and not re.search(r"\d,\d", said), said

    # The names form: a spoken name in digits is refused next to its field.
    page.click("details.device-names summary")
    page.fill("#display_name", "Wifi nhà văn hóa")
    page.fill("#spoken_name", "12")
    page.fill("#location", "hiên nhà văn hóa")
    page.select_option("#zone", "xom-dong")
    phone.allow("status of 422")  # the refused form comes back as a 422 page, on purpose
    page.click(".names-form button[type=submit]")
    error = page.locator("#spoken_name-error")
    assert error.is_visible() and error.inner_text() == "Hãy viết bằng chữ, như loa sẽ đọc."
    field, below = page.locator("#spoken_name").bounding_box(), error.bounding_box()
    assert field and below and 0 <= below["y"] - (field["y"] + field["height"]) < 24
    assert page.get_attribute("#spoken_name", "aria-invalid") == "true"
    assert page.input_value("#display_name") == "Wifi nhà văn hóa"  # what was typed stays
    phone.shot(artifacts, "refused")

    page.fill("#spoken_name", "điểm wifi nhà văn hóa")
    page.click(".names-form button[type=submit]")
    page.wait_for_url(re.compile(r"\?ok=names$"))
    assert page.inner_text("h1") == "Wifi nhà văn hóa"
    assert page.locator(".notice").inner_text() == "Đã lưu tên thiết bị."
    head = page.locator(".device-head + p.muted").inner_text()
    assert "hiên nhà văn hóa" in head and "Xóm Đông" in head
    page.click("details.device-names summary")
    assert page.locator(".said").inner_text() == "Loa sẽ đọc: “điểm wifi nhà văn hóa”"
    phone.shot(artifacts, "saved")

    phone.go("/app/devices")
    card = page.locator(".device-card", has=page.locator(f'a[href="/app/devices/{AP}"]'))
    assert card.locator(".card-title").inner_text() == "Wifi nhà văn hóa"
    assert "hiên nhà văn hóa" in card.locator(".card-sub").inner_text()
    assert card.is_visible()
    box = card.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390  # on the phone's screen
    phone.shot(artifacts, "list")
