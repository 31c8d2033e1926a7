"""A meeting invitation on a phone (issue 11, item 2): the head types an invitation in the
default category, the compose page offers it as a meeting (the date, time and place read
from the text), one tap takes it; broadcast on Tuesday at 18:00 for Thursday 19:30, the
residents' "Lịch họp sắp tới" lists it at the meeting's time, with its place."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.broker import Broker
from tests.browser.phone import Phone
from tests.integration.test_staff_pages import staff_hub
from tests.integration.web_fixture import WebHub

pytestmark = pytest.mark.broker

INVITATION = (
    "Kính mời đại diện các hộ gia đình dự họp thôn lúc 19h30 thứ Năm 10/12 "
    "tại nhà văn hóa thôn để bàn kế hoạch năm mới."
)


@pytest.fixture(scope="module")
def web(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebHub]:
    h = staff_hub(broker, tmp_path_factory.mktemp("meetings-ui"))
    yield h
    h.stop()


@pytest.fixture
def phone(browser: Any, web: WebHub) -> Iterator[Phone]:
    p = Phone(browser, web, prefix="meeting-", locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
    try:
        yield p
    finally:
        p.close()


def test_an_invitation_becomes_a_meeting_listed_at_its_own_time(
    phone: Phone, web: WebHub, artifacts: Path
) -> None:
    page = phone.page
    phone.sign_in("truong-thon", "head")
    phone.tab("/app/compose")
    # The kind is in sight as four choices, "Thông báo" chosen; no meeting fields yet.
    tiles = page.locator(".cat-options .cat")
    assert tiles.count() == 4 and tiles.nth(2).inner_text().strip() == "Mời họp"
    for i in range(4):
        box = tiles.nth(i).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert page.is_checked("input[name=category][value=notice]")
    assert page.is_hidden("#meeting_date")

    page.fill("#title", "Họp thôn cuối năm")
    page.fill("#text", INVITATION)
    hint = page.locator("[data-meeting-hint]")
    hint.wait_for(state="visible")
    assert "Có vẻ đây là giấy mời họp: Họp lúc 19:30 thứ Năm 10/12 tại Nhà văn hóa thôn" in (
        hint.inner_text()
    )
    phone.shot(artifacts, "hint")

    hint.locator("[data-meeting-take]").click()
    assert page.is_checked("input[name=category][value=meeting]")
    assert page.is_visible("#meeting_date") and hint.is_hidden()
    assert page.input_value("#meeting_date") == "2026-12-10"
    assert page.input_value("#meeting_time") == "19:30"
    assert page.input_value("#meeting_place") == "Nhà văn hóa thôn"
    phone.shot(artifacts, "taken")

    # Broadcast on Tuesday at 18:00 (the meeting is on Thursday the 10th).
    page.check("input[name=when][value=at]")
    page.fill("#date", "2026-12-01")
    page.fill("#time", "18:00")
    page.click("[data-submit]")
    page.wait_for_url(re.compile(r"/app/schedule\?ok=created"))
    aid = page.url.rsplit("#a-", 1)[1]

    phone.go("/")
    item = page.locator(f".meetings [data-meeting='{aid}']")
    assert item.count() == 1
    assert page.locator("#meetings-h").inner_text().strip() == "Lịch họp sắp tới"
    assert item.locator(".meeting-wday").inner_text().strip().lower() == "thứ năm"
    assert item.locator(".meeting-day").inner_text().strip() == "10/12"
    assert item.locator(".meeting-time").inner_text().strip() == "19:30"
    assert item.locator("[data-meeting-place]").inner_text().strip() == "Nhà văn hóa thôn"
    assert "18:00" not in item.inner_text()
    item.scroll_into_view_if_needed()
    phone.shot(artifacts, "home")

    item.locator("a").click()
    line = page.locator("[data-meeting-at]")
    assert line.inner_text().strip() == "Họp lúc 19:30 thứ Năm 10/12 tại Nhà văn hóa thôn"
    phone.shot(artifacts, "page")
