"""A phone in headless Chromium: its own cookies, a 390×844 screen, console errors kept."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.hubtest import PASSWORD
from tests.integration.web_fixture import WebHub

PHONE = {"width": 390, "height": 844}


class Phone:
    """One browser context; ``close()`` fails the test on any console error (and, with
    ``warnings``, warning) the test did not ``allow``. Screenshots get ``prefix``."""

    def __init__(
        self,
        browser: Any,
        web: WebHub,
        *,
        prefix: str = "",
        timeout_ms: int = 5000,
        warnings: bool = False,
        **options: Any,
    ) -> None:
        self.web = web
        self.prefix = prefix
        self.context = browser.new_context(
            viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, **options
        )
        self.context.set_default_timeout(timeout_ms)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.allowed: list[str] = []
        kinds = ("error", "warning") if warnings else ("error",)
        self.page.on(
            "console",
            lambda m: (
                self.errors.append(f"console {m.type}: {m.text}") if m.type in kinds else None
            ),
        )
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))

    def go(self, path: str) -> Any:
        return self.page.goto(self.web.url + path)

    def sign_in(self, name: str, role: str) -> None:
        self.web.user(name, role)
        self.go("/app/login")
        self.page.fill("#username", name)
        self.page.fill("#password", PASSWORD)
        self.page.click("form.form button[type=submit]")
        self.page.wait_for_url(re.compile(r"/app/$"))

    def tab(self, url: str) -> None:
        """Open a section from the tab bar as a person would: behind "More" when a phone's
        bar holds fewer tabs than the role has sections."""
        link = self.page.locator(f"nav.tabs a[href='{url}']")
        if not link.is_visible():
            self.page.click("nav.tabs label.tab-more")
        link.click()

    def shot(self, artifacts: Path, name: str) -> None:
        self.page.screenshot(path=str(artifacts / f"{self.prefix}{name}.png"), full_page=True)

    def allow(self, text: str) -> None:
        """An error the test causes on purpose (Chromium logs a 4xx page load)."""
        self.allowed.append(text)

    def close(self) -> None:
        self.context.close()
        unexpected = [e for e in self.errors if not any(a in e for a in self.allowed)]
        assert unexpected == [], unexpected
