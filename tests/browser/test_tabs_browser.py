"""Every staff section is reachable on a 360-px phone, whatever the role: four tabs and
"More" when a role has more than five sections; every tab in one row on a laptop."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.store.users import User
from hub.web.render import NAV
from tests.browser.phone import Phone
from tests.integration.web_fixture import WebHub

pytestmark = pytest.mark.broker

SMALL_PHONE = {"width": 360, "height": 740}
LAPTOP = {"width": 1366, "height": 768}


def sections(role: str) -> list[str]:
    """The URLs of the sections ``role`` may open, as the tab bar lists them."""
    probe = User(id=0, username="probe", role=role, disabled=False)  # type: ignore[arg-type]
    return [url for _, url, _, roles in NAV if not roles or probe.has(*roles)]


@pytest.fixture
def small(browser: Any, web: WebHub) -> Iterator[Phone]:
    p = Phone(browser, web, prefix="tabs-")
    p.context.close()  # the same phone, narrower
    p.context = browser.new_context(
        viewport=SMALL_PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    p.page = p.context.new_page()
    try:
        yield p
    finally:
        p.close()


@pytest.mark.parametrize("role", ["admin", "head", "technician"])
def test_every_section_is_reachable_on_a_360_px_phone(
    small: Phone, web: WebHub, role: str, artifacts: Path
) -> None:
    page = small.page
    small.sign_in(f"tabs-{role}", role)
    urls = sections(role)
    assert len(urls) >= 5
    opened_more = False
    for url in urls:
        small.go("/app/")
        link = page.locator(f"nav.tabs a[href='{url}']")
        assert link.count() == 1, url  # each section once in the bar
        if not link.is_visible():
            # Not in the row: behind "More", which says so and opens above the bar.
            more = page.locator("nav.tabs label.tab-more")
            assert more.is_visible() and more.inner_text().strip() == "Thêm"
            more.click()
            opened_more = True
            assert link.is_visible()
            if url == urls[-1]:
                small.shot(artifacts, f"more-{role}")
        box = link.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= SMALL_PHONE["width"] + 0.5
        assert box["y"] >= 0 and box["y"] + box["height"] <= SMALL_PHONE["height"] + 0.5
        link.click()
        page.wait_for_url(re.compile(re.escape(url) + r"(\?.*)?$"))
        # Where the page is, the bar says so (on "More" when the page is behind it).
        current = page.locator("nav.tabs [aria-current=page], nav.tabs [data-current]")
        assert current.count() >= 1 and current.first.is_visible()
    assert opened_more == (len(urls) > 5)


def test_every_tab_stands_in_one_row_on_a_laptop(browser: Any, web: WebHub) -> None:
    p = Phone(browser, web)
    p.context.close()
    p.context = browser.new_context(viewport=LAPTOP)
    p.page = p.context.new_page()
    try:
        p.sign_in("tabs-wide", "admin")
        links = p.page.locator("nav.tabs a")
        assert links.count() == len(sections("admin"))
        tops = {round(links.nth(i).bounding_box()["y"]) for i in range(links.count())}  # type: ignore[index]
        assert len(tops) == 1 and all(links.nth(i).is_visible() for i in range(links.count()))
        assert not p.page.locator("nav.tabs label.tab-more").is_visible()
    finally:
        p.close()
