"""The device page's charts as a technician sees them: the data fill the
chart on a phone, and on a laptop the axis labels stay the size of the page's small text
(the charts stand two to a row instead of one scaled to the full width)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.phone import Phone
from tests.integration.web_fixture import WebHub

pytestmark = pytest.mark.broker

DEVICE = "/app/devices/ap-nha-van-hoa"


def tick_sizes(page: Any) -> list[float]:
    """Rendered heights of the time labels under the first chart, in CSS pixels."""
    return list(
        page.evaluate(
            "() => [...document.querySelectorAll('svg.chart')[0]"
            ".querySelectorAll('text.chart-tick')].map(t => t.getBoundingClientRect().height)"
        )
    )


def test_charts_fill_a_phone_and_keep_small_labels_on_a_laptop(
    browser: Any, web: WebHub, artifacts: Path
) -> None:
    web.tick()  # the writer's pending device rows (latest metrics) written, as every tick
    phone = Phone(browser, web, prefix="charts-", timeout_ms=15_000)
    try:
        phone.sign_in("charts-tech", "technician")
        phone.go(DEVICE)
        page = phone.page
        page.wait_for_selector("svg.chart polyline", state="attached")
        # A day of data spans the chart (a few minutes of it would too: tests/unit/test_charts).
        # (A flat line has no height, so the widths are compared, not visibility.)
        box = page.locator("svg.chart").first.bounding_box()
        line = page.locator("svg.chart").first.locator("polyline").first.bounding_box()
        assert box and line and line["width"] >= 0.6 * box["width"], (line, box)
        assert all(h <= 16 for h in tick_sizes(page))
        phone.shot(artifacts, "phone")
    finally:
        phone.close()

    laptop = Phone(browser, web, prefix="charts-", timeout_ms=15_000)
    laptop.context.close()
    laptop.context = browser.new_context(viewport={"width": 1366, "height": 768})
    laptop.context.set_default_timeout(15_000)
    laptop.page = laptop.context.new_page()
    try:
        laptop.sign_in("charts-tech-2", "technician")
        laptop.go(DEVICE)
        page = laptop.page
        page.wait_for_selector("svg.chart polyline", state="attached")
        cards = page.locator(".chart-card")
        assert cards.count() >= 2
        first, second = cards.nth(0).bounding_box(), cards.nth(1).bounding_box()
        assert first and second and abs(first["y"] - second["y"]) < 2  # two to a row
        sizes = tick_sizes(page)
        assert sizes and max(sizes) <= 18, sizes  # one chart across 960 px drew them at 30
        laptop.shot(artifacts, "laptop")
    finally:
        laptop.close()
