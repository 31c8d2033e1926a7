"""The web page in a real browser on a phone-sized screen: sign in, live dashboard,
English, every page without a console error, a screenshot of each."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.broker import Broker
from tests.browser.phone import Phone
from tests.hubtest import wait_for
from tests.integration.web_fixture import WebHub, publish_many, status_of

pytestmark = pytest.mark.broker


@pytest.fixture
def phone(browser: Any, web: WebHub) -> Iterator[Phone]:
    p = Phone(browser, web)
    try:
        yield p
    finally:
        p.close()


def test_the_residents_page_in_vietnamese_then_english(phone: Phone, artifacts: Path) -> None:
    page = phone.page
    phone.go("/")
    assert page.get_attribute("html", "lang") == "vi"
    assert "Chào mừng" in page.inner_text("main")
    phone.shot(artifacts, "public-vi")
    page.click(".langs a[lang=en]")
    page.wait_for_url(re.compile(r"lang=en"))
    assert page.get_attribute("html", "lang") == "en"
    assert "Welcome" in page.inner_text("main")
    # The cookie keeps the choice without the query.
    phone.go("/")
    assert page.get_attribute("html", "lang") == "en"
    phone.shot(artifacts, "public-en")
    page.click(".langs a[lang=vi]")
    page.wait_for_url(re.compile(r"lang=vi"))
    assert page.get_attribute("html", "lang") == "vi"


def test_sign_in_then_the_dashboard_counts_change_live(
    phone: Phone, web: WebHub, broker: Broker, artifacts: Path
) -> None:
    page = phone.page
    phone.go("/app/")
    page.wait_for_url(re.compile(r"/app/login"))
    phone.shot(artifacts, "login")
    phone.sign_in("tech-live", "technician")
    # The stream is open once the first heartbeat lit the live indicator.
    page.wait_for_selector("[data-live-indicator]:not([hidden]):not(.is-off)")
    offline = int(page.inner_text("[data-count=offline]"))
    online = int(page.inner_text("[data-count=online]"))
    page.evaluate("window.__sameDocument = true")
    site = web.settings.site
    publish_many(broker, [(f"village/{site}/ap/ap-xom-bac/status", "offline", True)])
    page.wait_for_function(
        "n => document.querySelector('[data-count=offline]').textContent === String(n)",
        arg=offline + 1,
        timeout=5000,
    )
    assert int(page.inner_text("[data-count=online]")) == online - 1
    # The alert appeared too, and the page was never reloaded.
    page.wait_for_selector("[data-alert-list=open] [data-alert-id]")
    assert "ap-xom-bac" in page.inner_text("[data-alert-list=open]")
    assert page.evaluate("window.__sameDocument") is True
    phone.shot(artifacts, "dashboard")


def _make_degraded(web: WebHub, broker: Broker) -> None:
    """A busy AP: CPU over 90 % for longer than its 300 s tolerance."""
    site = web.settings.site
    topic = f"village/{site}/ap/ap-xom-nam/state"
    publish_many(broker, [(topic, json.dumps({"clients": 31, "cpu_pct": 97}), False)])
    wait_for(
        lambda: web.hub.store.one("SELECT 1 FROM devices WHERE id='ap-xom-nam'"), 5, "ap-xom-nam"
    )
    web.clock.advance(301)  # type: ignore[attr-defined]
    fresh = [
        (topic, json.dumps({"clients": 33, "cpu_pct": 98, "signal_dbm": -71}), False),
        (f"village/{site}/ap/ap-nha-van-hoa/state", json.dumps({"clients": 9}), False),
        (f"village/{site}/sensor/muc-nuoc-song/state", json.dumps({"water_level_cm": 171}), False),
    ]
    publish_many(broker, fresh)
    wait_for(lambda: status_of(web, "ap-xom-nam") == "degraded", 5, "ap-xom-nam degraded")


def test_every_staff_page_on_a_phone(
    phone: Phone, web: WebHub, broker: Broker, artifacts: Path
) -> None:
    _make_degraded(web, broker)
    page = phone.page
    phone.sign_in("tech-pages", "technician")
    phone.shot(artifacts, "dashboard-degraded")

    phone.tab("/app/devices")
    page.wait_for_selector(".device-card")
    assert page.locator(".device-card").count() >= 3
    phone.shot(artifacts, "devices")
    # The search box filters as you type (and the kind chips filter on the server).
    page.fill("#q", "song")
    assert page.locator(".device-card:not([hidden])").count() == 1
    page.fill("#q", "")

    page.click(".device-card a[href='/app/devices/ap-nha-van-hoa']")
    page.wait_for_selector("svg.chart polyline", state="attached")
    assert page.locator("svg.chart").count() >= 4
    phone.shot(artifacts, "device-24h")
    page.click(".segmented a[href='?range=7d']")
    page.wait_for_url(re.compile(r"range=7d"))
    phone.shot(artifacts, "device-7d")

    phone.tab("/app/alerts")
    page.wait_for_selector(".alert")
    phone.shot(artifacts, "alerts")
    page.locator(".ack-form button").first.click()
    page.wait_for_selector(".notice")
    assert "tech-pages" in page.inner_text("[data-alert-list=open]")
    phone.shot(artifacts, "alerts-acked")

    # A technician has no users page: the tab is not there and the URL says 403.
    assert page.locator("nav.tabs a[href='/app/users']").count() == 0
    phone.allow("status of 403")
    response = phone.go("/app/users")
    assert response.status == 403
    phone.shot(artifacts, "forbidden")


def test_the_admin_manages_users_in_english(phone: Phone, artifacts: Path) -> None:
    page = phone.page
    phone.sign_in("admin-ui", "admin")
    phone.go("/app/users?lang=en")
    assert page.get_attribute("html", "lang") == "en"
    assert page.inner_text("h1") == "Users"
    page.fill("#nu-name", "truong-thon")
    page.select_option("#nu-role", "head")
    page.fill("#nu-pw", "a-long-enough-password")
    page.click("form[action='/app/users'] button[type=submit]")
    page.wait_for_selector(".notice")
    assert "truong-thon" in page.inner_text(".cards")
    phone.shot(artifacts, "users-en")
    # Too short a password: the form says why, in English.
    page.fill("#nu-name", "someone")
    page.fill("#nu-pw", "short")
    page.eval_on_selector("#nu-pw", "el => el.removeAttribute('minlength')")
    phone.allow("status of 422")
    page.click("form[action='/app/users'] button[type=submit]")
    page.wait_for_selector(".error")
    assert "at least 10" in page.inner_text(".error")
    # Staff pages in English: the tabs too.
    phone.go("/app/")
    assert "Overview" in page.inner_text("nav.tabs")
    phone.shot(artifacts, "dashboard-admin-en")
