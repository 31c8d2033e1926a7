"""Phone numbers in the head's inbox become tap-to-call links; anything else stays text."""

from __future__ import annotations

import pytest

from hub.web.staff_inbox import tel_href


@pytest.mark.parametrize(
    ("contact", "href"),
    [
        ("0912 345 678", "tel:+84912345678"),
        ("0912.345.678", "tel:+84912345678"),
        ("+84 912 345 678", "tel:+84912345678"),
        ("(024) 3825 1234", "tel:+842438251234"),
        ("113", None),  # too short to be anyone's phone here
        ("ông Ba, xóm Nam", None),
        ("ba@example.vn", None),
        ("", None),
        (None, None),
        ("0" * 30, None),
    ],
)
def test_tel_href(contact: str | None, href: str | None) -> None:
    assert tel_href(contact) == href
