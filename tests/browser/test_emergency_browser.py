"""What the head and the residents see of an emergency, on a phone (issue 11): sent from
compose it lands on the dashboard's on-air card; stopped, the card says so at once and the
residents' banner goes (the announcement stays listed, marked); one in force shows when and
by whom; ended with an all clear, the banner goes and the all clear plays, linked back; and
new residents' reports are counted on the dashboard."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.broker import Broker
from tests.browser.phone import Phone as BasePhone
from tests.integration.test_staff_pages import staff_hub
from tests.integration.web_fixture import WebHub

pytestmark = pytest.mark.broker

ALARM_TEXT = (
    "Nước sông đang lên rất nhanh. Bà con xóm bãi di chuyển người và tài sản lên chỗ cao ngay."
)


@pytest.fixture(scope="module")
def web(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebHub]:
    # The sink takes the audio's real length: long enough to see it on air and stop it.
    h = staff_hub(broker, tmp_path_factory.mktemp("emergency-ui"), sink_speed=1)
    yield h
    h.stop()


class Phone(BasePhone):
    def __init__(self, browser: Any, web: WebHub) -> None:
        super().__init__(
            browser,
            web,
            prefix="emergency-",
            timeout_ms=8000,
            locale="vi-VN",
            timezone_id="Asia/Ho_Chi_Minh",
        )


@pytest.fixture
def head(browser: Any, web: WebHub) -> Iterator[Phone]:
    p = Phone(browser, web)
    # "End the emergency" asks first (a confirm()): the head says yes.
    p.page.on("dialog", lambda d: d.accept())
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def resident(browser: Any, web: WebHub) -> Iterator[Phone]:
    p = Phone(browser, web)
    try:
        yield p
    finally:
        p.close()


def test_sent_from_compose_it_lands_on_air_and_stops_truthfully(
    head: Phone, resident: Phone, web: WebHub, artifacts: Path
) -> None:
    page = head.page
    head.sign_in("truong-thon", "head")
    head.tab("/app/compose")
    page.fill("#title", "Lũ quét xóm bãi")
    page.fill("#text", ALARM_TEXT)
    page.check("input[name=priority][value=emergency]")
    page.check("input[name=confirm_emergency]")
    page.click("[data-submit]")
    page.wait_for_url(re.compile(r"/app/\?ok=emergency"))
    assert "Đã gửi thông báo khẩn cấp" in page.inner_text("main")
    page.wait_for_selector("[data-live-indicator]:not([hidden]):not(.is-off)")
    playout = web.hub.playout
    web.run_until(lambda: playout.state.state == "playing", step=0.5, what="on air")
    page.wait_for_selector("[data-on-air]:not([hidden])")
    assert page.inner_text("[data-on-air-title]") == "Lũ quét xóm bãi"
    assert page.is_visible(".stop-form button") and page.is_hidden("[data-air-line]")
    head.shot(artifacts, "on-air")

    page.click(".stop-form button")
    page.wait_for_url(re.compile(r"/app/\?ok=stopped"))
    # Stopped at once, though the playout is still in the amplifier's tail.
    assert playout.state.state == "playing"
    assert page.is_hidden("[data-on-air]")
    line = page.inner_text("[data-air-line]")
    assert "Đã dừng buổi phát." in line and "Lũ quét xóm bãi" in line and "truong-thon" in line
    assert page.locator("main .notice").count() == 0
    head.shot(artifacts, "stopped")

    # The residents: no banner, the announcement still listed, marked stopped.
    resident.go("/")
    assert resident.page.locator(".alarm").count() == 0
    card = resident.page.locator(".ann", has_text="Lũ quét xóm bãi")
    assert card.count() == 1 and "Đã dừng lúc" in card.inner_text()
    resident.shot(artifacts, "home-after-stop")

    # The tail ends: still stopped, the loudspeakers quiet; nothing says "on air".
    web.run_until(lambda: playout.state.state == "idle", step=2.0, what="idle again")
    page.wait_for_selector("[data-on-air-quiet]:not([hidden])")
    assert page.is_hidden("[data-on-air]")
    assert "Đã dừng buổi phát." in page.inner_text("[data-air-line]")
    head.shot(artifacts, "stopped-idle")


def test_in_force_shows_who_then_the_head_ends_it_with_an_all_clear(
    head: Phone, resident: Phone, web: WebHub, artifacts: Path
) -> None:
    playout = web.hub.playout
    web.run_until(lambda: playout.state.state == "idle", step=2.0, what="idle")
    r = web.http("head").post(
        "/api/announcements",
        json={
            "title": "Bão số 9",
            "text": "Bão số 9 đổ bộ đêm nay.",
            "category": "emergency",
            "priority": "emergency",
        },
    )
    assert r.status_code == 201, r.text
    aid = r.json()["id"]
    resident.go("/")
    banner = resident.page.locator(".alarm")
    assert banner.count() == 1 and "Bão số 9" in banner.inner_text()
    assert re.search(r"Phát lệnh lúc .+, bởi trưởng thôn head1", banner.inner_text())
    resident.shot(artifacts, "banner")

    page = head.page
    head.sign_in("truong-thon", "head")
    force = page.locator(f"[data-emergency='{aid}']")
    assert "bởi trưởng thôn head1" in force.inner_text()
    force.locator("summary").click()
    assert "Bão số 9" in page.input_value(f"#end-text-{aid}")  # the all clear, ready to go
    head.shot(artifacts, "end-form")
    force.locator("[data-end]").click()
    page.wait_for_url(re.compile(r"/app/\?ok=ended_follow"))
    assert page.locator("[data-in-force]").count() == 0
    web.run_until(
        lambda: playout.state.state == "playing" and playout.state.title, step=0.5, what="all clear"
    )
    page.wait_for_selector("[data-on-air]:not([hidden])")
    assert page.inner_text("[data-on-air-title]") == "Hết khẩn cấp: Bão số 9"
    head.shot(artifacts, "all-clear-on-air")

    resident.go("/")
    assert resident.page.locator(".alarm").count() == 0
    resident.page.click(f".ann a[href='/a/{aid}']")
    marks = resident.page.inner_text(".ann-page")
    assert re.search(r"Đã kết thúc lúc .+ bởi trưởng thôn truong-thon", marks)
    resident.page.click("[data-followed] a")
    assert resident.page.inner_text("h1") == "Hết khẩn cấp: Bão số 9"
    assert resident.page.get_attribute("[data-follows] a", "href") == f"/a/{aid}"
    resident.shot(artifacts, "all-clear-page")


def test_the_dashboard_counts_new_reports(head: Phone, web: WebHub, artifacts: Path) -> None:
    for message in ("Đèn đường xóm Bắc hỏng.", "Loa xóm Nam rè."):
        r = web.http().post("/api/feedback", json={"message": message})
        assert r.status_code in (200, 201), r.text
    n = web.hub.feedback.counts()["new"]
    page = head.page
    head.sign_in("truong-thon", "head")
    link = page.locator("[data-feedback-new] a")
    assert link.inner_text().strip().startswith(f"{n} phản ánh mới")
    head.shot(artifacts, "feedback-count")
    link.click()
    page.wait_for_url(re.compile(r"/app/feedback"))
