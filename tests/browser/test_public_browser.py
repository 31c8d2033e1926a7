"""The residents' pages in a real browser on a phone: the played announcement's audio
loads, English, "on air now" appearing live while the fake clock plays one, the feedback
form reaching the village head's inbox; a screenshot of each page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hub.clock import FakeClock
from tests.broker import Broker
from tests.browser.phone import Phone
from tests.hubtest import hub_settings
from tests.integration.test_public import PublicHub

pytestmark = pytest.mark.broker

T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)  # 07:00 in the village


@pytest.fixture(scope="module")
def web(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PublicHub]:
    # The null sink plays in real time: what goes on air stays there a few seconds, long
    # enough to watch the page follow it.
    h = PublicHub(
        hub_settings(
            broker,
            tmp_path_factory.mktemp("pubui"),
            LANGSO_AUDIO__SINK="null",
            LANGSO_VILLAGE_NAME="Thôn Đông, xã An Bình",
        ),
        FakeClock(T0),
    )
    try:
        yield h
    finally:
        h.stop()


@pytest.fixture(scope="module")
def played(web: PublicHub) -> dict[str, Any]:
    head = web.http("head")
    meeting = head.post(
        "/api/announcements",
        json={
            "title": "Họp thôn cuối năm",
            "text": "Mời đại diện các hộ đến họp tại nhà văn hóa.",
            "category": "meeting",
            "meeting_at": "2026-12-07T19:30:00",
            "rrule": "FREQ=WEEKLY;BYDAY=MO",
            "start_at": "2026-12-07T19:30:00",
        },
    )
    assert meeting.status_code == 201, meeting.text
    r = head.post(
        "/api/announcements",
        json={"title": "Thu gom rác", "text": "Sáng mai thu gom rác thải.", "category": "notice"},
    )
    assert r.status_code == 201, r.text
    a: dict[str, Any] = r.json()
    web.run_until(
        lambda: web.hub.store.one(
            "SELECT 1 FROM broadcasts WHERE announcement_id=? AND status='played'", (a["id"],)
        ),
        step=0.25,
        what="the announcement played",
    )
    return a


@pytest.fixture
def phone(browser: Any, web: PublicHub) -> Iterator[Phone]:
    p = Phone(browser, web)
    try:
        yield p
    finally:
        p.close()


def test_a_played_announcement_and_its_audio(
    phone: Phone, played: dict[str, Any], artifacts: Path
) -> None:
    page = phone.page
    phone.go("/")
    assert page.get_attribute("html", "lang") == "vi"
    card = page.locator(".ann", has_text=played["title"])
    assert "Đã phát" in card.inner_text()
    assert "Họp thôn cuối năm" in page.inner_text(".meetings")
    phone.shot(artifacts, "public-home")
    # Not the player's own "0:00 / 0:00" before a tap: the length the hub measured.
    play = card.locator("[data-play]")
    label = play.inner_text().strip()
    assert play.is_visible() and re.fullmatch(r"Nghe · \d+:\d\d", label), label
    assert card.locator("audio").is_hidden()
    # preload="none" keeps a phone from fetching every recording; asked, it loads.
    card.locator("audio").evaluate("a => { a.preload = 'metadata'; a.load(); }")
    card.locator("audio").evaluate(
        "a => new Promise((ok, no) => { if (a.readyState >= 1) ok();"
        " a.addEventListener('loadedmetadata', ok); a.addEventListener('error', no); })"
    )
    state = card.locator("audio").evaluate(
        "a => ({ready: a.readyState, duration: a.duration, error: a.error && a.error.code,"
        " src: a.currentSrc})"
    )
    assert state["ready"] >= 1 and state["error"] is None  # HAVE_METADATA
    assert state["duration"] > 1 and state["src"].endswith(
        f"/api/announcements/{played['id']}/audio"
    )
    minutes, seconds = label.split(" · ")[1].split(":")
    assert abs(int(minutes) * 60 + int(seconds) - state["duration"]) <= 1.5
    play.click()
    assert card.locator("audio").is_visible() and card.locator("[data-play]").count() == 0

    page.click(f"a[href='/a/{played['id']}']")
    page.wait_for_url(re.compile(f"/a/{played['id']}$"))
    assert page.locator("svg.qr-code").count() == 1
    assert "Các lần đã phát" in page.inner_text("main")
    phone.shot(artifacts, "public-announcement")
    phone.go("/poster")
    page.wait_for_selector("[data-print]:not([hidden])")
    phone.shot(artifacts, "public-poster")
    page.emulate_media(media="print")
    assert page.locator(".site-header").is_hidden() and page.locator(".poster-tools").is_hidden()
    page.set_viewport_size({"width": 794, "height": 1123})  # A4 at 96 dpi
    phone.shot(artifacts, "public-poster-print")


def test_the_public_page_in_english(phone: Phone, played: dict[str, Any], artifacts: Path) -> None:
    page = phone.page
    phone.go("/")
    page.click(".langs a[lang=en]")
    page.wait_for_url(re.compile(r"lang=en"))
    assert page.get_attribute("html", "lang") == "en"
    main = page.inner_text("main")
    assert "Latest announcements" in main and "Upcoming meetings" in main and "Played" in main
    assert "Meeting at 19:30 on Monday 7 Dec" in main  # the meeting's own time
    phone.shot(artifacts, "public-home-en")
    page.click(".langs a[lang=vi]")
    page.wait_for_url(re.compile(r"lang=vi"))
    assert "Thông báo mới nhất" in page.inner_text("main")


def test_the_village_is_named_and_a_loopback_poster_warns(phone: Phone, artifacts: Path) -> None:
    page = phone.page
    phone.go("/")
    brand = page.locator(".brand-site")
    assert brand.inner_text() == "Thôn Đông, xã An Bình" and brand.is_visible()
    # Whole on a 390-px phone, not cut to "Thôn Đ…".
    sizes = brand.evaluate("e => [e.scrollWidth, e.clientWidth, e.scrollHeight, e.clientHeight]")
    assert sizes[0] <= sizes[1] and sizes[2] <= sizes[3], sizes
    assert "t-pubui" not in page.inner_text("header")  # the site id is for machines
    # Opened at 127.0.0.1 (no public address set): the QR code would lead phones nowhere.
    phone.go("/poster")
    warning = page.locator("[data-local-address]")
    assert warning.is_visible() and "127.0.0.1" in warning.inner_text()
    tools = page.locator(".poster-tools").bounding_box()
    box = warning.bounding_box()
    assert tools and box and box["y"] <= tools["y"] + 1  # the first thing above the buttons
    assert "Thôn Đông, xã An Bình" in page.inner_text(".poster-brand")
    phone.shot(artifacts, "public-poster-loopback")


def test_following_the_village_is_explained_not_raw_xml(
    browser: Any, web: PublicHub, artifacts: Path
) -> None:
    phone = Phone(browser, web, permissions=["clipboard-read", "clipboard-write"])
    try:
        page = phone.page
        phone.go("/")
        page.click("a[href='/theo-doi#tin']")
        page.wait_for_url(re.compile(r"/theo-doi#tin$"))
        assert page.locator("#tin").is_visible()
        assert page.locator("#fw-feed-url").inner_text() == f"{web.url}/feed.atom"
        page.click("[data-copy=fw-feed-url]")
        page.wait_for_selector("[data-copied]:not([hidden])")
        assert page.evaluate("navigator.clipboard.readText()") == f"{web.url}/feed.atom"
        webcal = page.get_attribute("[data-webcal]", "href")
        assert webcal == "webcal://" + web.url.split("://", 1)[1] + "/calendar.ics"
        phone.shot(artifacts, "public-follow")
    finally:
        phone.close()


def test_on_air_now_appears_live(
    phone: Phone, web: PublicHub, played: dict[str, Any], artifacts: Path
) -> None:
    page = phone.page
    phone.go("/")
    page.wait_for_selector("[data-live-indicator]:not([hidden]):not(.is-off)")
    assert page.locator("[data-onair-now]").is_hidden()
    assert page.locator("[data-onair-quiet]").is_visible()
    page.evaluate("window.__sameDocument = true")
    r = web.http("head").post(
        "/api/announcements",
        json={
            "title": "Lịch tiêm phòng",
            "text": "Thứ Bảy này tiêm phòng cho trâu bò tại sân nhà văn hóa thôn.",
            "priority": "high",
        },
    )
    assert r.status_code == 201, r.text
    aid = r.json()["id"]
    web.run_until(lambda: web.hub.playout.state.state == "playing", step=0.25, what="on air")
    page.wait_for_selector("[data-onair-now]:not([hidden])", timeout=5000)
    assert page.inner_text("[data-onair-link]") == "Lịch tiêm phòng"
    assert page.get_attribute("[data-onair-link]", "href") == f"/a/{aid}"
    assert page.locator("[data-onair-quiet]").is_hidden()
    phone.shot(artifacts, "public-on-air")
    # When it ends the card says so, and offers the fresh list.
    web.run_until(lambda: web.hub.playout.state.state == "idle", step=0.25, what="off air")
    page.wait_for_selector("[data-onair-quiet]:not([hidden])", timeout=5000)
    page.wait_for_selector("[data-fresh]:not([hidden])", timeout=5000)
    assert page.evaluate("window.__sameDocument") is True


def test_feedback_reaches_the_heads_inbox(
    phone: Phone, browser: Any, web: PublicHub, artifacts: Path
) -> None:
    page = phone.page
    phone.go("/")
    page.click("a[href='/gop-y']")
    page.wait_for_url(re.compile(r"/gop-y$"))
    page.fill("#fb-message", "Cống trước nhà văn hóa bị tắc, nước tràn ra đường.")
    assert "ký tự" in page.inner_text("[data-counter-for]")
    page.select_option("#fb-category", "environment")
    page.fill("#fb-name", "Ông Ba")
    page.fill("#fb-contact", "0912 345 678")
    phone.shot(artifacts, "public-feedback")
    page.click(".fb-form button[type=submit]")
    page.wait_for_selector(".thanks")
    assert "Cảm ơn" in page.inner_text(".thanks")
    # A number to quote when the resident asks about it later.
    ref = page.inner_text("[data-ref]")
    assert re.fullmatch(r"PA-\d+", ref), ref
    phone.shot(artifacts, "public-feedback-thanks")
    # The thank-you cannot be made to show a number this browser did not get.
    phone.go("/gop-y?ok=1&ref=" + ref[3:] + ".0000000000")
    assert page.locator(".thanks").is_visible() and page.locator("[data-ref]").count() == 0

    head = Phone(browser, web)
    try:
        head.sign_in("truong-thon-ui", "head")
        # New reports show on the inbox's tab from any page.
        count = head.page.locator("nav.tabs a[href='/app/feedback'] [data-new-feedback]")
        assert count.is_visible() and count.inner_text() == "1"
        count.click()
        head.page.wait_for_url(re.compile(r"/app/feedback$"))
        report = head.page.locator(".report", has_text="Cống trước nhà văn hóa")
        text = report.inner_text()
        assert "Ông Ba" in text and "Vệ sinh, môi trường" in text and ref in text
        # One tap calls the resident back.
        call = report.locator("a.tel")
        assert call.inner_text() == "0912 345 678"
        assert call.get_attribute("href") == "tel:+84912345678"
        head.shot(artifacts, "inbox")
        report.locator("button", has_text="Đã xử lý xong").click()
        head.page.wait_for_selector(".notice")
        assert "Đã xử lý" in head.page.locator(".report", has_text="Cống trước").inner_text()
        assert head.page.locator("[data-new-feedback]").count() == 0
        head.shot(artifacts, "inbox-done")
    finally:
        head.close()
