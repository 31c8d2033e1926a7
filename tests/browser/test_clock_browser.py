"""The dashboard's clock card on a phone (headless Chromium, 390×844): while the hub's clock
is not trusted the head sees the hub's time beside the phone's and sets it with one press
(the phone's Date.now() goes to the hub); a technician sees the warning without the button."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.clock import FakeClock
from hub.services.clock import ClockTrust
from tests.broker import Broker
from tests.browser.phone import Phone
from tests.hubtest import hub_settings
from tests.integration.web_fixture import WebHub

pytestmark = pytest.mark.broker

#: The hub believes it is two hours earlier than the phone (whose clock is this machine's):
#: near enough that the head's session, stamped by the hub's clock, outlives the change.
T0 = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)


class ClockWeb:
    def __init__(self, broker: Broker, data: Path) -> None:
        tree = data.parent / "sys"
        (tree / "rtc").mkdir(parents=True)
        self.boot = tree / "boot_id"
        settings = hub_settings(
            broker,
            data,
            LANGSO_CLOCK__RTC_SYSFS=str(tree / "rtc"),
            LANGSO_CLOCK__BOOT_ID_FILE=str(self.boot),
            LANGSO_CLOCK__FAKE_HWCLOCK_FILE=str(tree / "fake-hwclock.data"),
            LANGSO_HEALTH__CHECK_INTERVAL_S="3600",
        )
        self.web = WebHub(settings, FakeClock(T0))
        self.set_to: list[float] = []
        self.new_boot()

    def new_boot(self) -> None:
        """A hub in a new boot whose NTP is not synchronised; the setter records."""
        self.boot.write_text(str(uuid.uuid4()))
        hub = self.web.hub
        # build_hub does not make the trust yet: the hub gets this one (see the lead's notes).
        hub.clock_trust = ClockTrust(  # type: ignore[attr-defined]
            hub.settings.clock, hub.store, hub.clock, ntp=lambda: False, setter=self.record
        )

    def record(self, ts: float) -> None:
        self.set_to.append(ts)
        clock = self.web.clock
        assert isinstance(clock, FakeClock)
        clock.set(datetime.fromtimestamp(ts, UTC))


@pytest.fixture(scope="module")
def hub(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClockWeb]:
    h = ClockWeb(broker, tmp_path_factory.mktemp("clockweb") / "hub")
    yield h
    h.web.stop()


def phone(browser: Any, hub: ClockWeb) -> Phone:
    return Phone(browser, hub.web, prefix="clock-", locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")


def test_the_head_sets_the_hubs_clock_from_the_phone(
    browser: Any, hub: ClockWeb, artifacts: Path
) -> None:
    hub.new_boot()
    p = phone(browser, hub)
    try:
        p.sign_in("truong-thon", "head")
        page = p.page
        card = page.locator("[data-clock]")
        assert "Giờ của hub" in card.inner_text()
        hub_time = datetime.strptime(page.inner_text("[data-hub-time]"), "%H:%M:%S %d/%m/%Y")
        village = (T0 + timedelta(hours=7)).replace(tzinfo=None)
        assert timedelta(0) <= hub_time - village < timedelta(minutes=1)
        page.wait_for_selector("[data-phone]:not([hidden])")
        shown = page.inner_text("[data-phone-time]")
        assert re.fullmatch(r"\d\d:\d\d:\d\d \d\d/\d\d/\d{4}", shown), shown
        assert not page.is_visible("[data-manual]")  # the phone's clock is read, not typed
        p.shot(artifacts, "untrusted")
        before = time.time()
        page.click("[data-clock-set-button]")
        page.wait_for_url(re.compile(r"/app/\?ok=clock$"))
        after = time.time()
        assert len(hub.set_to) == 1 and before - 2 <= hub.set_to[0] <= after + 2
        assert page.is_visible("[data-clock-set]")
        assert page.locator("[data-clock]").count() == 0
        p.shot(artifacts, "set")
    finally:
        p.close()


def test_a_technician_sees_the_warning_without_the_button(browser: Any, hub: ClockWeb) -> None:
    hub.new_boot()
    p = phone(browser, hub)
    try:
        p.sign_in("ky-thuat", "technician")
        assert p.page.is_visible("[data-clock]")
        assert p.page.locator("[data-clock-form]").count() == 0
        assert p.page.is_visible("[data-clock-ask]")
    finally:
        p.close()
