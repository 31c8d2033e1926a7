"""Clarity on a horn speaker, through the real parts: espeak-ng, the Piper worker (the
stand-in voice), ffmpeg, and a hub over HTTP. A slower rate is a longer reading, a pause
after each sentence is silence one can measure, and an announcement's own rate is kept,
shown, changed (the audio rendered again) and refused out of range; the compose
preview says it the number of times asked."""

from __future__ import annotations

import re
import subprocess
import wave
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from audio.render import RenderSpec
from audio.tts import EspeakNG, Piper
from tests.broker import Broker
from tests.hubtest import InProcessHub, hub_settings
from tests.integration.voice_fixture import joe_pair

TEXT = "Bà con chú ý. Chiều nay mất điện từ mười bốn giờ. Xin cảm ơn bà con."


def silences(path: Path) -> list[float]:
    """The silent stretches ffmpeg's silencedetect finds (s), in order."""
    err = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostats", "-i", str(path), "-af",
         "silencedetect=n=-45dB:d=0.15", "-f", "null", "-"],
        capture_output=True, check=True, timeout=60,
    ).stderr.decode()  # fmt: skip
    return [float(s) for s in re.findall(r"silence_duration: ([\d.]+)", err)]


def seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


def test_a_slower_rate_is_a_longer_reading_and_pauses_are_silence(tmp_path: Path) -> None:
    engine = EspeakNG()

    def spoken(rate: float = 1.0, pause_s: float = 0.0) -> tuple[float, list[float]]:
        out = tmp_path / f"{rate}-{pause_s}.wav"
        engine.synthesize(TEXT, voice="north", out_wav=out, rate=rate, pause_s=pause_s)
        return seconds(out), silences(out)

    normal, normal_quiet = spoken()
    slow, _ = spoken(rate=0.7)
    # espeak-ng's words per minute times 0.7: ~1/0.7 as long (its own pauses grow too).
    assert 1.3 < slow / normal < 1.65, (slow, normal)
    paused, paused_quiet = spoken(pause_s=1.0)
    # Three sentences: a second of silence added after each of the first two, nowhere else.
    assert paused - normal == pytest.approx(2.0, abs=0.05)
    assert len(paused_quiet) == len(normal_quiet) == 3
    added = [p - n for p, n in zip(paused_quiet, normal_quiet, strict=True)]
    assert added == pytest.approx([1.0, 1.0, 0.0], abs=0.06), (paused_quiet, normal_quiet)


def test_piper_reads_slower_with_its_pauses_in_one_worker(tmp_path: Path) -> None:
    model, config = joe_pair()
    text = "Hello everyone. The meeting starts at seven."
    # Two workers side by side (each loads the model: most of its time).
    with ThreadPoolExecutor(2) as pool:
        done = [
            pool.submit(Piper(model=model, config=config).synthesize, text, voice=None, **kw)
            for kw in (
                {"out_wav": tmp_path / "a.wav"},
                {"out_wav": tmp_path / "b.wav", "rate": 0.7, "pause_s": 0.8},
            )
        ]
        for f in done:
            f.result()
    normal, slow = seconds(tmp_path / "a.wav"), seconds(tmp_path / "b.wav")
    # length_scale / 0.7 stretches the speech; 0.8 s of silence between the two sentences.
    assert 1.2 < (slow - 0.8) / normal < 1.6, (slow, normal)
    assert max(silences(tmp_path / "b.wav")) > 0.8


@pytest.fixture(scope="module")
def hub(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessHub]:
    h = InProcessHub(
        hub_settings(
            broker,
            tmp_path_factory.mktemp("clarity"),
            LANGSO_AUDIO__CHIME="none",
            LANGSO_AUDIO__PRERENDER_MAX="0",
            LANGSO_AUDIO__RATES__SOUTH="0.9",
        )
    )
    try:
        yield h
    finally:
        h.stop()


@pytest.mark.broker
def test_an_announcements_own_rate_round_trips_and_renders_again(hub: InProcessHub) -> None:
    head = hub.http("head")
    later = (hub.clock.now() + timedelta(hours=3)).replace(microsecond=0).isoformat()
    body = {"title": "Mất điện", "text": TEXT, "start_at": later, "rate": 0.8}
    made = head.post("/api/announcements", json=body)
    assert made.status_code == 201, made.text
    a = made.json()
    assert a["rate"] == 0.8 and a["sentence_pause_s"] is None
    assert head.get(f"/api/announcements/{a['id']}").json()["rate"] == 0.8
    # Said twice in the preview, as it will be broadcast: twice the reading and the gap.
    preview = head.post("/api/tts/preview", json={"text": TEXT, "rate": 0.8, "repeat": 2})
    assert preview.status_code == 200, preview.text
    gap = hub.settings.audio.repeat_gap_s
    twice = float(preview.headers["X-Duration-S"])
    assert twice == pytest.approx(2 * a["duration_s"] + gap, abs=0.05)

    faster = head.patch(f"/api/announcements/{a['id']}", json={"rate": 1.2}).json()
    assert faster["rate"] == 1.2
    assert faster["duration_s"] < a["duration_s"] / 1.3  # rendered again, 1.5x as fast
    row = hub.hub.store.one("SELECT render_sha, rate FROM announcements WHERE id=?", (a["id"],))
    assert row is not None and row["rate"] == 1.2

    for rate, limit in ((2.0, "1.4"), (0.2, "0.6")):
        r = head.post("/api/announcements", json=body | {"rate": rate})
        assert r.status_code == 422, r.text
        assert "rate" in r.json()["detail"] and limit in r.json()["detail"], r.text
    r = head.patch(f"/api/announcements/{a['id']}", json={"rate": 1.5})
    assert r.status_code == 422 and "rate" in r.json()["detail"], r.text
    r = head.post("/api/announcements", json=body | {"voice": "piper:nowhere"})
    assert r.status_code == 422 and "piper:nowhere" in r.json()["detail"], r.text
    r = head.post("/api/tts/preview", json={"text": TEXT, "repeat": 9})
    assert r.status_code == 422, r.text


@pytest.mark.broker
def test_the_voices_rate_multiplies_the_announcements(hub: InProcessHub) -> None:
    renderer = hub.hub.announcements.renderer

    def spec(voice: str | None, rate: float | None) -> RenderSpec:
        return renderer.spec(
            text="x", source_wav=None, voice=voice, priority="normal", repeat=1, rate=rate
        )

    assert spec("south", 0.8).rate == pytest.approx(0.72)  # audio.rates.south = 0.9
    assert spec("south", None).rate == pytest.approx(0.9)
    assert spec(None, 1.2).rate == pytest.approx(1.2)  # north: not set, 1
    assert spec(None, None).sentence_pause_s == hub.settings.audio.sentence_pause_s == 0.6
