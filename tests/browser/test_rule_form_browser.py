"""The rule's edit form on a 390×844 phone in Chromium (issue #11, item 6): the head opens a
flood rule, types a limit that is no number (the reason under the field, in Vietnamese,
what was typed kept), then a good one and a zone, watches the preview follow the text, and
saves: back on the rule with what changed and its state. A technician's change to what the
loudspeakers say waits for the head. No horizontal scrolling, big tap targets."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.broker import Broker
from tests.browser.phone import PHONE, Phone
from tests.integration.test_rule_form import rule_form_hub
from tests.integration.web_fixture import WebHub

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def web(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebHub]:
    h = rule_form_hub(broker, tmp_path_factory.mktemp("ruleformui"))
    yield h
    h.stop()


def phone_of(browser: Any, web: WebHub) -> Phone:
    p = Phone(
        browser,
        web,
        prefix="rule-form-",
        timeout_ms=8000,
        warnings=True,
        locale="vi-VN",
        timezone_id="Asia/Ho_Chi_Minh",
    )
    p.allow("status of 422")  # Chromium logs the refused form's answer
    return p


def fits_the_phone(page: Any) -> None:
    """Nothing wider than the screen; every field full width and at least a finger high."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width
    for sel in (
        "#f-value",
        "#f-for",
        "#f-clear",
        "#f-a1-template",
        "[data-rule-form] [type=submit]",
    ):
        box = page.locator(sel).bounding_box()
        assert box is not None and box["height"] >= 44 and box["width"] >= 120, (sel, box)
    template = page.locator("#f-a1-template").bounding_box()
    assert template["width"] >= PHONE["width"] - 90, template


@pytest.fixture
def head_phone(browser: Any, web: WebHub) -> Iterator[Phone]:
    p = phone_of(browser, web)
    try:
        yield p
    finally:
        p.close()


def test_the_head_edits_a_flood_rule_on_a_phone(
    head_phone: Phone, web: WebHub, artifacts: Path
) -> None:
    phone, page = head_phone, head_phone.page
    phone.sign_in("truong-thon", "head")
    phone.go("/app/rules")
    page.click("#r-lu-1 a.rule-name")
    page.wait_for_url(re.compile(r"/app/rules/lu-1$"))
    page.click("#edit > summary")
    assert page.input_value("#f-value") == "180"
    fits_the_phone(page)
    phone.shot(artifacts, "open")

    # A typo: the letter O for a zero. The reason under the field; what was typed stays.
    page.fill("#f-value", "18O")
    page.click("[data-rule-form] [type=submit]")
    page.wait_for_selector("#err-value")
    assert page.inner_text("#err-value").strip() == "⚠ Hãy nhập một số, ví dụ 180 hoặc 1,5."
    assert page.input_value("#f-value") == "18O"
    assert page.get_attribute("#f-value", "aria-invalid") == "true"
    assert page.is_visible("#err-value")  # the form stays open at the field
    assert "Input should" not in page.inner_text("main")
    fits_the_phone(page)
    phone.shot(artifacts, "refused")

    # A good limit and one zone; the preview follows what is typed, before any save.
    page.fill("#f-value", "200")
    page.fill("#f-clear", "190")
    page.click("label:has([name='a1.zones'][value=xom-dong])")
    assert not page.is_checked("[name='a1.zones'][value=all]")  # one or the other
    page.fill("#f-a1-template", "Mực nước tại {device} đã lên {value} cm. Bà con chú ý.")
    assert page.inner_text("#pv-f-a1-template") == (
        "Mực nước tại Cầu Đông đã lên 180 cm. Bà con chú ý."
    )
    page.click("[data-rule-form] [type=submit]")
    page.wait_for_url(re.compile(r"/app/rules/lu-1\?ok=saved"))
    notice = " ".join(page.inner_text(".notice").split())  # a no-break space before "cm"
    assert notice.startswith("Đã lưu: ngưỡng báo (nay ≥ 200 cm), mức hết báo (nay dưới 190 cm)")
    assert "khu phát loa (nay Xóm Đông)" in notice and "lời phát loa" in notice
    assert notice.endswith("Quy tắc đang bật.")
    said = " ".join(page.inner_text(".rule-words").split())
    assert "Mực nước ≥ 200 cm liên tục 1 phút; hết khi xuống dưới 190 cm" in said
    assert "Phát loa (mức ưu tiên, Xóm Đông)" in said
    page.click("#edit > summary")
    assert page.input_value("#f-value") == "200"
    assert page.is_checked("[name='a1.zones'][value=xom-dong]")
    phone.shot(artifacts, "saved")
    assert web.hub.rules.rules["lu-1"].trigger.value == 200  # type: ignore[union-attr]


def test_a_technicians_change_waits_for_the_head(
    browser: Any, web: WebHub, artifacts: Path
) -> None:
    phone = phone_of(browser, web)
    try:
        page = phone.page
        phone.sign_in("ky-thuat", "technician")
        phone.go("/app/rules/lu-1")
        page.click("#edit > summary")
        page.fill("#f-a1-template", "Thông báo: nước lên {value} cm tại {device}.")
        page.click("[data-rule-form] [type=submit]")
        page.wait_for_url(re.compile(r"/app/rules/lu-1\?ok=awaiting"))
        assert page.inner_text(".notice").endswith("Quy tắc đang tắt, chờ trưởng thôn duyệt.")
        assert "Chờ trưởng thôn duyệt" in page.inner_text(".rule-approval")
        page.click("#edit > summary")
        assert page.is_disabled("[name=enabled]")
        assert "chỉ trưởng thôn bật được" in page.inner_text("#enabled-wait")
        phone.shot(artifacts, "awaiting")
        assert not web.hub.rules.rules["lu-1"].enabled
    finally:
        phone.close()
