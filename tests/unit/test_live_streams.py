"""The sinks' live streams: raw PCM as it comes, paced at real time (what is ahead of the
wall clock is latency), into aplay (ALSA's ``null`` device: no sound card needed) and the
file sink's WAV and record."""

from __future__ import annotations

import json
import shutil
import time
import wave
from datetime import UTC, datetime
from pathlib import Path

import pytest

from audio.errors import SinkError
from audio.sinks import AlsaSink, FileSink, NullSink, live_sink, stream_format
from audio.sinks.streams import AHEAD_S

SECOND = bytes(2 * 48000)


def _now() -> datetime:
    return datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


def test_a_burst_is_paced_to_real_time() -> None:
    stream = NullSink().open_stream(announcement_id="a", zones=["all"], rate=48000, channels=1)
    t0 = time.monotonic()
    for _ in range(25):  # half a second, written as fast as it comes
        stream.write(SECOND[: 2 * 960])
    took = time.monotonic() - t0
    assert 0.5 - AHEAD_S - 0.05 <= took <= 0.5, took


def test_the_file_sink_keeps_a_live_broadcast_as_a_broadcast(tmp_path: Path) -> None:
    sink = FileSink(tmp_path, clock=_now)
    assert live_sink(sink) is sink and stream_format(sink) == (48000, 1)
    stream = sink.open_stream(announcement_id="live-1", zones=["xom-tay"], rate=48000, channels=1)
    stream.write(SECOND[:9600])
    assert not list(tmp_path.glob("*.wav"))  # still .partial while on air
    stream.close()
    [wav] = tmp_path.glob("*.wav")
    with wave.open(str(wav), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getnframes()) == (48000, 1, 4800)
    record = json.loads(wav.with_suffix(".json").read_text())
    assert record["zones"] == ["xom-tay"] and record["live"] and record["played_s"] == 0.1


@pytest.mark.skipif(shutil.which("aplay") is None, reason="no aplay (alsa-utils)")
def test_aplay_takes_a_live_stream_and_ends_with_it() -> None:
    stream = AlsaSink("null").open_stream(announcement_id="a", zones=[], rate=48000, channels=1)
    stream.write(SECOND[:9600])
    stream.close()
    with pytest.raises(SinkError, match="aplay"):
        AlsaSink("null", aplay="no-such-aplay").open_stream(
            announcement_id="a", zones=[], rate=48000, channels=1
        )
