"""The households page on a phone (390×844, headless Chromium): the head adds a household
with a wrong number (the error is said next to the field, the form keeps what was typed),
then with a right one (listed, normalised to +84, counted in its zone); a technician reads
the list without the form."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.phone import Phone
from tests.integration.web_fixture import WebHub

pytestmark = pytest.mark.broker


def test_head_adds_a_household_wrong_number_then_right(
    browser: Any, web: WebHub, artifacts: Path
) -> None:
    phone = Phone(browser, web, prefix="households-")
    try:
        phone.sign_in("truongthon-hh", "head")
        page = phone.page
        phone.go("/app/households")
        # No SMS channel on this hub: the page says the list sends nothing yet.
        assert page.locator("[data-sms-off]").is_visible()
        assert "chưa hộ nào nhận được tin" in page.inner_text("[data-sms-off]")
        page.fill("#hh-name", "Nhà ông Bảy")
        page.fill("#hh-phone", "0123 45")
        page.select_option("#hh-zone", "xom-tay")
        phone.allow("422")  # Chromium logs the refused form's status
        page.click(".hh-form button[type=submit]")
        error = page.locator("#hh-phone-err")
        error.wait_for()
        assert "không phải số di động Việt Nam" in error.inner_text()
        assert page.get_attribute("#hh-phone", "aria-invalid") == "true"
        assert page.get_attribute("#hh-phone", "aria-describedby") == "hh-phone-err"
        assert page.input_value("#hh-name") == "Nhà ông Bảy"  # nothing typed is lost
        assert page.input_value("#hh-zone") == "xom-tay"
        # The error sits right under its field, inside the phone's width.
        field, err = page.locator("#hh-phone").bounding_box(), error.bounding_box()
        assert field is not None and err is not None
        assert 0 <= err["y"] - (field["y"] + field["height"]) < 40
        assert err["x"] + err["width"] <= 390
        phone.shot(artifacts, "1-wrong-number")

        page.fill("#hh-phone", "0912.777.888")
        page.click(".hh-form button[type=submit]")
        page.wait_for_url(re.compile(r"/app/households\?ok=added$"))
        card = page.locator("[data-household='+84912777888']")
        assert "Nhà ông Bảy" in card.inner_text()
        assert page.locator("#hh-phone-err").count() == 0
        assert "Xóm Tây: 1" in page.locator("[data-zone='xom-tay']").inner_text()
        phone.shot(artifacts, "2-added")
    finally:
        phone.close()

    tech = Phone(browser, web, prefix="households-tech-")
    try:
        tech.sign_in("kythuat-hh", "technician")
        tech.go("/app/households")
        assert tech.page.locator("[data-household='+84912777888']").count() == 1
        assert tech.page.locator(".hh-form").count() == 0  # read-only
    finally:
        tech.close()
