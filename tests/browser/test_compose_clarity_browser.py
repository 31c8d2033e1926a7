"""The compose page on a phone (390×844, headless Chromium): the voice select lists the
installed voices (what GET /api/voices lists, the default chosen), and the listen preview
is what the loudspeakers will say: "Chậm" and "2 lần" picked, the length the page shows
is two slow readings, the gap between them and the chimes around them."""

from __future__ import annotations

import re
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from audio.chimes import chime
from audio.normalize_vi import normalize
from audio.tts import EspeakNG
from tests.broker import Broker
from tests.browser.phone import Phone
from tests.hubtest import hub_settings
from tests.integration.voice_fixture import VOICE, voice_folder
from tests.integration.web_fixture import WebHub

pytestmark = pytest.mark.broker

TEXT = "Bà con chú ý. Sáng mai họp dân ở nhà văn hóa."


@pytest.fixture(scope="module")
def web(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebHub]:
    """A hub of its own with the stand-in Piper voice installed, chimes as broadcast, and
    the rules' emergencies not pre-rendered."""
    data = tmp_path_factory.mktemp("clarityweb")
    voice_folder(data / "voices")
    h = WebHub(hub_settings(broker, data, LANGSO_AUDIO__PRERENDER_MAX="0"))
    try:
        yield h
    finally:
        h.stop()


def one_reading(settings: Any, rate: float, tmp: Path) -> float:
    """Seconds of one slow reading of TEXT, with its sentence pauses, by espeak-ng itself."""
    out = tmp / "once.wav"
    pause = settings.audio.sentence_pause_s
    EspeakNG().synthesize(normalize(TEXT), voice="north", out_wav=out, rate=rate, pause_s=pause)
    with wave.open(str(out), "rb") as w:
        return w.getnframes() / w.getframerate()


def test_the_preview_is_said_as_chosen_and_the_voices_are_the_installed_ones(
    browser: Any, web: WebHub, artifacts: Path, tmp_path: Path
) -> None:
    phone = Phone(browser, web, prefix="clarity-", timeout_ms=20000)
    try:
        phone.sign_in("truongthon-clar", "head")
        page = phone.page
        phone.go("/app/compose")
        listed = page.evaluate(
            "fetch('/api/voices', {credentials: 'same-origin'}).then(r => r.json())"
        )
        options = page.locator("#voice option")
        assert options.evaluate_all("os => os.map(o => o.value)") == [v["id"] for v in listed]
        assert VOICE in [v["id"] for v in listed]
        default = next(v["id"] for v in listed if v["default"])
        assert page.locator("#voice").input_value() == default
        assert page.locator("#rate").input_value() == ""  # the voice's own rate

        page.fill("#text", TEXT)
        page.select_option("#rate", label="Chậm")
        page.select_option("#repeat", "2")
        page.click("[data-listen]")
        length = page.locator("[data-listen-length]")
        length.wait_for(state="visible")
        shown = length.inner_text()
        assert "đọc 2 lần" in shown, shown
        m = re.search(r"(\d+,\d) giây", shown)
        assert m is not None, shown
        seconds = float(m.group(1).replace(",", "."))
        box = length.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 390
        phone.shot(artifacts, "preview")
    finally:
        phone.close()

    a = web.settings.audio
    once = one_reading(web.settings, 0.8, tmp_path)
    chimes = sum(len(c) for c in (chime(True, a.sample_rate, ascending=up) for up in (True, False)))
    expected = 2 * once + a.repeat_gap_s + (chimes + 2 * 400) / 1000
    assert seconds == pytest.approx(expected, abs=0.15), (seconds, once, chimes)
    # Slower than the voice's own: the same reading at rate 1 is shorter by far.
    assert one_reading(web.settings, 1.0, tmp_path) < once / 1.15
