"""Browser fixtures: Debian's Chromium, headless, driven by Playwright's Python package.

Playwright's own browser downloads are never used (no ``playwright install``): the
tests launch /usr/bin/chromium. Without it (or without the playwright package) the
tests skip, and fail on CI (``CI=true``), where the Makefile must have installed it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.broker import Broker
from tests.hubtest import hub_settings
from tests.integration.web_fixture import WebHub, seed_village

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"


def _need_chromium() -> None:
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (Debian package chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright Python package (pip install -e '.[dev]')")
    if not missing:
        return
    reason = "browser tests need " + " and ".join(missing)
    if os.environ.get("CI") == "true":
        pytest.fail(reason + ": the Makefile must install it on CI")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def web(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebHub]:
    # The health timer is driven by the tests (web.tick()), not by wall-clock seconds, so
    # moving the fake clock forward never turns the seeded devices silent behind our back.
    h = WebHub(
        hub_settings(
            broker, tmp_path_factory.mktemp("webui"), LANGSO_HEALTH__CHECK_INTERVAL_S="3600"
        )
    )
    try:
        seed_village(h, broker)
        yield h
    finally:
        h.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def media_browser() -> Iterator[Any]:
    """Chromium with a fake microphone that needs no permission prompt (a beep on a loop),
    for the recording tests."""
    _need_chromium()
    from playwright.sync_api import sync_playwright

    fake_media = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=[*ARGS, *fake_media]
        )
        try:
            yield b
        finally:
            b.close()
