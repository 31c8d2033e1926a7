"""The pronunciation page on a phone (390×844, headless Chromium): the head hears a new
entry before saving it ("Đ.Đông" said "xóm Đồng Đông"), saves it, finds it in the list,
and the coming announcement that uses the word is rendered again, saying it that way.
(The page without JavaScript, and a technician's read-only view: tests/integration/
test_lexicon.py.)"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.broadcast.models import Actor, AnnouncementIn
from tests.broker import Broker
from tests.browser.phone import Phone
from tests.hubtest import hub_settings, wait_for
from tests.integration.web_fixture import WebHub

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def web(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebHub]:
    """A hub of its own, without the seeded village (this page needs no devices), short
    renders (no chimes), and the rules' emergencies not pre-rendered."""
    h = WebHub(
        hub_settings(
            broker,
            tmp_path_factory.mktemp("lexweb"),
            LANGSO_AUDIO__CHIME="none",
            LANGSO_AUDIO__PRERENDER_MAX="0",
        )
    )
    # What build_hub wires; said here too, whichever way the renderer was built.
    try:
        yield h
    finally:
        h.stop()


def test_head_listens_saves_and_the_announcement_is_rendered_again(
    browser: Any, web: WebHub, artifacts: Path
) -> None:
    hub = web.hub
    tonight = (web.clock.now() + timedelta(hours=2)).replace(microsecond=0).isoformat()
    # Set up through the service (no second account's password hash to wait for).
    body = AnnouncementIn.model_validate(
        {"title": "Họp xóm", "text": "Mời bà con Đ.Đông họp.", "start_at": tonight}
    )
    aid = hub.announcements.create(body, Actor("truongthon-lex", "head"))["id"]

    def row() -> dict[str, Any]:
        found = hub.store.one("SELECT * FROM announcements WHERE id=?", (aid,))
        assert found is not None
        return dict(found)

    before = row()["render_sha"]

    phone = Phone(browser, web, prefix="lexicon-")
    try:
        phone.sign_in("truongthon-lex", "head")
        page = phone.page
        phone.go("/app/lexicon")
        page.fill("#lex-word", "Đ.Đông")
        page.fill("#lex-say", "xóm Đồng Đông")
        # Listen first: the audio plays in the page, the entry is not saved yet.
        page.click("#lex-add [data-lex-listen]")
        player = page.locator("[data-lex-player][data-played='Đ.Đông']")
        player.wait_for(state="attached")
        assert page.locator("[data-lex-status]").get_attribute("class") == "status-line is-ok"
        duration = player.evaluate(
            "a => new Promise((ok, no) => { if (a.readyState >= 1) ok(a.duration);"
            " a.addEventListener('loadedmetadata', () => ok(a.duration));"
            " a.addEventListener('error', no); })"
        )
        assert 0.3 < duration < 10
        assert hub.store.one("SELECT 1 FROM lexicon") is None

        page.click("#lex-add [data-lex-save]")
        page.wait_for_url(re.compile(r"/app/lexicon\?ok=saved#e-"))
        entry = page.locator("[data-lex-entry][data-word='Đ.Đông']")
        assert entry.is_visible()
        assert entry.locator("[data-lex-say]").inner_text() == "xóm Đồng Đông"
        box = entry.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 390
        # The search filters as one types.
        page.fill("#lex-q", "zzz")
        assert not entry.is_visible()
        page.fill("#lex-q", "đồng")
        assert entry.is_visible()
        phone.shot(artifacts, "saved")
    finally:
        phone.close()

    wait_for(lambda: row()["render_sha"] != before, 30, "the announcement rendered again")
    meta = json.loads(Path(row()["render_wav"]).with_suffix(".json").read_text())
    assert "xóm Đồng Đông" in meta["text"]
