"""Audio on the real tools: espeak-ng voices, uploads from phones, render, and the sinks."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import itertools
import json
import math
import os
import re
import shutil
import struct
import subprocess
import threading
import time
import wave
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from audio.decode import AudioInfo, decode_upload, probe
from audio.errors import (
    AudioTooLarge,
    InvalidAudio,
    InvalidSpec,
    SinkError,
    TTSError,
    UnknownVoice,
    UnsupportedAudio,
)
from audio.render import RenderSpec, measure_loudness, render
from audio.sinks import AlsaSink, FileSink, NullSink, Playback, make_sink
from audio.tts import EspeakNG, Piper, make_engine

SHORT = "Xin mời bà con thôn Đông đến họp lúc 19h30 tại nhà văn hóa."


def _need(binary: str) -> None:
    if shutil.which(binary):
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{binary} is missing on CI: the Makefile must install it")
    pytest.skip(f"{binary} is not installed")


@pytest.fixture(scope="module", autouse=True)
def _tools() -> None:
    for binary in ("espeak-ng", "ffmpeg", "ffprobe"):
        _need(binary)


# --- helpers independent of the code under test ----------------------------------------


def ebur128(path: Path) -> tuple[float, float]:
    """Integrated LUFS and true peak dBTP measured here, not by audio.render."""
    out = subprocess.run(
        [
            *("ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-i", str(path)),
            *("-af", "ebur128=peak=true", "-f", "null", "-"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stderr.split("Summary:")[-1]
    lufs = re.search(r"I:\s+(-?[\d.]+) LUFS", out)
    peak = re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", out)
    assert lufs and peak, out
    return float(lufs.group(1)), float(peak.group(1))


def wav_info(path: Path) -> tuple[int, int, int, float]:
    with wave.open(str(path), "rb") as w:
        return (
            w.getframerate(),
            w.getnchannels(),
            w.getsampwidth(),
            w.getnframes() / w.getframerate(),
        )


def frames(path: Path) -> bytes:
    with wave.open(str(path), "rb") as w:
        return w.readframes(w.getnframes())


def ffmpeg(*args: str) -> None:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
        check=True,
        timeout=60,
    )


def make_tone(path: Path, seconds: float, *, amplitude: float = 0.3, rate: int = 22050) -> Path:
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        f"aevalsrc={amplitude}*sin(2*PI*440*t)*(0.6+0.4*sin(2*PI*3*t)):s={rate}:d={seconds}",
        "-c:a",
        "pcm_s16le",
        str(path),
    )
    return path


class CountingEngine:
    """The real espeak-ng, counting how often it is asked to speak."""

    def __init__(self, inner: EspeakNG) -> None:
        self.inner, self.calls = inner, 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def identity(self) -> str:
        return self.inner.identity

    def synthesize(
        self,
        text: str,
        *,
        voice: str | None,
        out_wav: Path,
        rate: float = 1.0,
        pause_s: float = 0.0,
    ) -> None:
        self.calls += 1
        self.inner.synthesize(text, voice=voice, out_wav=out_wav, rate=rate, pause_s=pause_s)


@pytest.fixture(scope="module")
def engine() -> EspeakNG:
    return EspeakNG()


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory: pytest.TempPathFactory, engine: EspeakNG) -> Path:
    """About 3 s of real speech: the material for uploads."""
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    engine.synthesize("Xin mời bà con đến nhà văn hóa thôn.", voice="north", out_wav=path)
    return path


# --- TTS -------------------------------------------------------------------------------


@pytest.mark.parametrize("voice", ["north", "central", "south"])
def test_each_voice_speaks(engine: EspeakNG, tmp_path: Path, voice: str) -> None:
    out = tmp_path / f"{voice}.wav"
    engine.synthesize("Thông báo của thôn Đông về lịch tiêm phòng.", voice=voice, out_wav=out)
    rate, channels, width, seconds = wav_info(out)
    assert (rate, channels, width) == (22050, 1, 2)
    # 11 syllables at 150 words per minute: about 3 s, never a blip nor a minute.
    assert 1.5 < seconds < 8.0
    assert ebur128(out)[0] > -40.0  # speech, not silence


def test_voices_differ(engine: EspeakNG, tmp_path: Path) -> None:
    sizes = set()
    for voice in ("north", "south"):
        out = tmp_path / f"{voice}.wav"
        engine.synthesize("Bà con chú ý", voice=voice, out_wav=out)
        sizes.add(out.read_bytes())
    assert len(sizes) == 2


def test_raw_espeak_voice_name_is_accepted(engine: EspeakNG, tmp_path: Path) -> None:
    out = tmp_path / "raw.wav"
    engine.synthesize("Bà con chú ý", voice="vi-vn-x-central", out_wav=out)
    assert wav_info(out)[3] > 0.3


def test_text_starting_with_dash_is_spoken_not_parsed(engine: EspeakNG, tmp_path: Path) -> None:
    out, elsewhere = tmp_path / "dash.wav", tmp_path / "elsewhere.wav"
    engine.synthesize(f"--version -w {elsewhere}", voice=None, out_wav=out)
    assert wav_info(out)[3] > 1.0  # the words were read out
    assert not elsewhere.exists()


def test_unknown_voice(engine: EspeakNG, tmp_path: Path) -> None:
    with pytest.raises(UnknownVoice) as info:
        engine.synthesize("Bà con chú ý", voice="thon-dong", out_wav=tmp_path / "x.wav")
    assert isinstance(info.value, TTSError)
    assert info.value.status == 422
    assert "north, central or south" in str(info.value)


def test_engine_factory_and_missing_piper(tmp_path: Path) -> None:
    assert make_engine("espeak-ng", voice="south").name == "espeak-ng"
    with pytest.raises(TTSError, match="unknown TTS engine"):
        make_engine("festival")
    with pytest.raises(TTSError, match="does not exist"):
        Piper(model=tmp_path / "missing.onnx")


# --- loudness meter --------------------------------------------------------------------


def test_measure_loudness_on_a_reference_sine(tmp_path: Path) -> None:
    # EBU Tech 3341: a 1 kHz sine at -20 dBFS in one channel reads -23 LUFS (3 dB under
    # the stereo case), and its true peak is its amplitude.
    ref = tmp_path / "ref.wav"
    ffmpeg("-f", "lavfi", "-i", "aevalsrc=0.1*sin(2*PI*1000*t):s=48000:d=5", str(ref))
    lufs, peak = measure_loudness(ref)
    assert lufs == pytest.approx(-23.0, abs=0.2)
    assert peak == pytest.approx(-20.0, abs=0.2)


# --- render ----------------------------------------------------------------------------


def test_render_meets_loudness_and_peak(engine: EspeakNG, tmp_path: Path) -> None:
    r = render(RenderSpec(text=SHORT, voice="north"), engine, tmp_path)
    lufs, peak = ebur128(r.wav_path)
    assert lufs == pytest.approx(-16.0, abs=1.0)
    assert peak <= -1.0
    assert r.lufs == pytest.approx(lufs, abs=0.15)  # the renderer's claim is the truth
    assert r.true_peak_db == pytest.approx(peak, abs=0.15)
    rate, channels, width, seconds = wav_info(r.wav_path)
    assert (rate, channels, width) == (22050, 1, 2)
    assert seconds == pytest.approx(r.duration_s, abs=0.001)
    # The web file: Opus (or MP3 without libopus), decodable, and far smaller.
    assert r.web_path.exists()
    assert r.web_path.stat().st_size * 5 < r.wav_path.stat().st_size
    web = probe(r.web_path)
    assert web.codec in {"opus", "mp3"}
    assert web.duration_s == pytest.approx(r.duration_s, abs=0.1)
    # Nothing half-written is left behind.
    assert sorted(p.suffix for p in tmp_path.iterdir()) == sorted(
        [".json", ".wav", r.web_path.suffix]
    )


def test_chimes_lengthen_and_open_with_a_tone(engine: EspeakNG, tmp_path: Path) -> None:
    bare = render(RenderSpec(text=SHORT, chime_before=False, chime_after=False), engine, tmp_path)
    chimed = render(RenderSpec(text=SHORT), engine, tmp_path)
    # Two chimes of 2.0 s and a 0.4 s pause each between chime and words.
    assert chimed.duration_s - bare.duration_s == pytest.approx(4.8, abs=0.02)
    # The first 250 ms hold only the first note (C5, 523 Hz): count zero crossings.
    with wave.open(str(chimed.wav_path), "rb") as w:
        n = w.getframerate() // 4
        samples = struct.unpack(f"<{n}h", w.readframes(n))
    crossings = sum(1 for a, b in itertools.pairwise(samples) if (a < 0) != (b < 0))
    assert crossings == pytest.approx(2 * 523.25 / 4, rel=0.1)
    assert max(abs(s) for s in samples) > 1000  # audible, not a silent lead-in


def test_repeats_with_a_gap(engine: EspeakNG, tmp_path: Path) -> None:
    one = RenderSpec(text=SHORT, chime_before=False, chime_after=False, repeats=1)
    three = RenderSpec(text=SHORT, chime_before=False, chime_after=False, repeats=3, gap_s=1.5)
    d1 = render(one, engine, tmp_path).duration_s
    r3 = render(three, engine, tmp_path)
    assert r3.duration_s == pytest.approx(3 * d1 + 2 * 1.5, abs=0.01)
    lufs, peak = ebur128(r3.wav_path)
    assert lufs == pytest.approx(-16.0, abs=1.0)
    assert peak <= -1.0


def test_cache_hit_does_not_speak_again(engine: EspeakNG, tmp_path: Path) -> None:
    counting = CountingEngine(engine)
    spec = RenderSpec(text=SHORT, voice="south")
    first = render(spec, counting, tmp_path)
    mtime = first.wav_path.stat().st_mtime_ns
    meta = tmp_path / f"{first.key}.json"
    os.utime(meta, (1e9, 1e9))  # last used in 2001
    second = render(spec, counting, tmp_path)
    assert counting.calls == 1
    assert (second.sha256, second.wav_path, second.cached) == (first.sha256, first.wav_path, True)
    assert second.wav_path.stat().st_mtime_ns == mtime
    assert meta.stat().st_mtime > 1e9 + 86_400  # a hit renews the entry (retention reads it)
    # Another voice is another render; an equivalent text spelling is the same one.
    render(RenderSpec(text=SHORT, voice="north"), counting, tmp_path)
    assert counting.calls == 2
    same = render(
        RenderSpec(text=SHORT.replace("19h30", "19:30"), voice="south"), counting, tmp_path
    )
    assert counting.calls == 2 and same.sha256 == first.sha256


def test_damaged_cache_entry_is_rendered_again(engine: EspeakNG, tmp_path: Path) -> None:
    counting = CountingEngine(engine)
    first = render(RenderSpec(text="Bà con chú ý."), counting, tmp_path)
    with first.wav_path.open("r+b") as f:  # an SD card flipping bytes
        f.seek(1000)
        f.write(b"\x7f" * 64)
    again = render(RenderSpec(text="Bà con chú ý."), counting, tmp_path)
    assert counting.calls == 2 and not again.cached and again.sha256 == first.sha256


def test_render_an_uploaded_recording(speech_wav: Path, tmp_path: Path) -> None:
    # A quiet phone recording at 44.1 kHz stereo, as uploaded.
    upload = tmp_path / "quiet.m4a"
    ffmpeg("-i", str(speech_wav), "-af", "volume=-18dB", "-ar", "44100", "-ac", "2",
           "-c:a", "aac", str(upload))  # fmt: skip
    decoded = tmp_path / "decoded.wav"
    decode_upload(upload, decoded)
    r = render(RenderSpec(source_wav=decoded, chime_after=False), None, tmp_path / "cache")
    lufs, peak = ebur128(r.wav_path)
    assert lufs == pytest.approx(-16.0, abs=1.0)
    assert peak <= -1.0
    # A recording at another rate is converted, not refused.
    r48 = render(RenderSpec(source_wav=speech_wav, sample_rate=48000), None, tmp_path / "c48")
    assert wav_info(r48.wav_path)[0] == 48000


def test_render_refuses_silence_and_bad_specs(tmp_path: Path) -> None:
    silent = tmp_path / "silent.wav"
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=22050:cl=mono", "-t", "2", "-c:a", "pcm_s16le",
           str(silent))  # fmt: skip
    with pytest.raises(InvalidAudio, match="silent"):
        render(RenderSpec(source_wav=silent), None, tmp_path / "cache")
    for bad in (
        {"text": "a", "repeats": 0},
        {"text": "a", "repeats": 6},
        {"text": "a", "source_wav": silent},
        {},
        {"text": "   "},
        {"text": "a", "sample_rate": 96000},
        {"text": "a", "target_lufs": -3.0},
    ):
        with pytest.raises(InvalidSpec):
            RenderSpec(**bad)


# --- uploads ---------------------------------------------------------------------------


def _make_amr_nb(speech_wav: Path, out: Path) -> None:
    """AMR-NB at 12.2 kbit/s without DTX, as a phone's voice recorder writes it.

    Debian's ffmpeg has no AMR encoder (libopencore_amrnb is decode-only there), but
    the codec library itself is usually installed: call its encoder directly. (sox can
    write AMR too, but with DTX on, and ffmpeg's decoder skips DTX comfort-noise frames.)
    """
    encoders = subprocess.run(
        ["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True, check=True
    ).stdout
    if "libopencore_amrnb" in encoders:
        ffmpeg("-i", str(speech_wav), "-ar", "8000", "-ac", "1", "-c:a", "libopencore_amrnb",
               "-b:a", "12.2k", str(out))  # fmt: skip
        return
    name = ctypes.util.find_library("opencore-amrnb")
    if name is None:
        pytest.skip("no AMR-NB encoder: ffmpeg lacks libopencore_amrnb, no libopencore-amrnb")
    lib = ctypes.CDLL(name)
    lib.Encoder_Interface_init.restype = ctypes.c_void_p
    lib.Encoder_Interface_init.argtypes = [ctypes.c_int]
    lib.Encoder_Interface_Encode.restype = ctypes.c_int
    lib.Encoder_Interface_Encode.argtypes = [
        ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_short),
        ctypes.c_char_p, ctypes.c_int,
    ]  # fmt: skip
    lib.Encoder_Interface_exit.argtypes = [ctypes.c_void_p]
    pcm = subprocess.run(
        [
            *("ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(speech_wav)),
            *("-ar", "8000", "-ac", "1", "-f", "s16le", "-"),
        ],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    state = lib.Encoder_Interface_init(0)  # 0: no DTX
    mr122 = 7
    body, frame_bytes = bytearray(b"#!AMR\n"), 320  # 160 samples of 20 ms
    pcm += b"\0" * (-len(pcm) % frame_bytes)
    for i in range(0, len(pcm), frame_bytes):
        samples = (ctypes.c_short * 160).from_buffer_copy(pcm[i : i + frame_bytes])
        buf = ctypes.create_string_buffer(64)
        n = lib.Encoder_Interface_Encode(state, mr122, samples, buf, 0)
        body += buf.raw[:n]
    lib.Encoder_Interface_exit(state)
    out.write_bytes(bytes(body))


FORMATS = {
    # name: (file name, ffmpeg output options, codec ffprobe reports)
    "mp3": ("rec.mp3", ["-c:a", "libmp3lame", "-b:a", "64k"], "mp3"),
    "m4a-aac": ("rec.m4a", ["-c:a", "aac", "-b:a", "64k"], "aac"),
    "ogg-opus": ("rec.ogg", ["-c:a", "libopus", "-b:a", "24k"], "opus"),
    # As Chrome's MediaRecorder writes it: live WebM, no duration in the header.
    "webm-opus": (
        "rec.webm",
        ["-c:a", "libopus", "-b:a", "24k", "-live", "1", "-f", "webm"],
        "opus",
    ),
    "wav": ("rec.wav", ["-c:a", "pcm_s16le", "-ar", "44100", "-ac", "2"], "pcm_s16le"),
    "amr-nb": ("rec.amr", [], "amr_nb"),
}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_phone_and_browser_formats_decode(fmt: str, speech_wav: Path, tmp_path: Path) -> None:
    name, opts, codec = FORMATS[fmt]
    src = tmp_path / name
    if fmt == "amr-nb":
        _make_amr_nb(speech_wav, src)
    else:
        ffmpeg("-i", str(speech_wav), *opts, str(src))
    dst = tmp_path / "out" / "decoded.wav"
    info = decode_upload(src, dst)
    assert isinstance(info, AudioInfo)
    assert info.codec == codec
    expected = wav_info(speech_wav)[3]
    assert info.duration_s == pytest.approx(expected, abs=0.15)
    rate, channels, width, seconds = wav_info(dst)
    assert (rate, channels, width) == (22050, 1, 2)
    assert seconds == pytest.approx(info.duration_s, abs=0.001)
    assert ebur128(dst)[0] > -40.0
    assert [p.name for p in dst.parent.iterdir()] == ["decoded.wav"]  # no temporary left


def test_mediarecorder_webm_has_no_duration_until_decoded(speech_wav: Path, tmp_path: Path) -> None:
    src = tmp_path / "live.webm"
    ffmpeg("-i", str(speech_wav), "-c:a", "libopus", "-live", "1", "-f", "webm", str(src))
    assert probe(src).duration_s is None
    # ...so "too long" is found after decoding, not before.
    with pytest.raises(InvalidAudio, match="limit is 1 s"):
        decode_upload(src, tmp_path / "x.wav", max_seconds=1)


def test_random_bytes_are_not_audio(tmp_path: Path) -> None:
    src = tmp_path / "upload.bin"
    src.write_bytes(os.urandom(200_000))
    with pytest.raises(UnsupportedAudio) as info:
        decode_upload(src, tmp_path / "x.wav")
    assert info.value.status == 415
    assert not (tmp_path / "x.wav").exists()


def test_text_renamed_mp3_is_not_audio(tmp_path: Path) -> None:
    src = tmp_path / "thong-bao.mp3"
    src.write_text("Thông báo họp thôn lúc 19h30 tối nay.\n" * 50, encoding="utf-8")
    with pytest.raises(UnsupportedAudio):
        decode_upload(src, tmp_path / "x.wav")


def test_playlist_pointing_elsewhere_is_refused(speech_wav: Path, tmp_path: Path) -> None:
    # ffmpeg would happily follow a concat script to any file on the Pi.
    src = tmp_path / "sneaky.mp3"
    src.write_text(f"ffconcat version 1.0\nfile '{speech_wav}'\n", encoding="utf-8")
    with pytest.raises(UnsupportedAudio):
        decode_upload(src, tmp_path / "x.wav")


def test_too_large_too_long_empty_silent(speech_wav: Path, tmp_path: Path) -> None:
    mp3 = tmp_path / "rec.mp3"
    ffmpeg("-i", str(speech_wav), "-c:a", "libmp3lame", "-b:a", "64k", str(mp3))
    with pytest.raises(AudioTooLarge) as large:
        decode_upload(mp3, tmp_path / "x.wav", max_bytes=1000)
    assert large.value.status == 413 and "MiB" in str(large.value)
    with pytest.raises(InvalidAudio, match="limit is 1 s") as long_:
        decode_upload(mp3, tmp_path / "x.wav", max_seconds=1)
    assert long_.value.status == 422
    empty = tmp_path / "empty.m4a"
    empty.write_bytes(b"")
    with pytest.raises(InvalidAudio, match="empty"):
        decode_upload(empty, tmp_path / "x.wav")
    silent = tmp_path / "silent.ogg"
    ffmpeg(
        "-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", "2", "-c:a", "libopus", str(silent)
    )
    with pytest.raises(InvalidAudio, match="silent"):
        decode_upload(silent, tmp_path / "x.wav")
    assert not (tmp_path / "x.wav").exists()


# --- sinks -----------------------------------------------------------------------------


class StepClock:
    """A wall clock that moves one second per reading, from 2026-12-01 12:30 UTC."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 12, 30, tzinfo=UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            now, self.now = self.now, self.now + timedelta(seconds=1)
            return now


@pytest.fixture
def tone3(tmp_path: Path) -> Path:
    return make_tone(tmp_path / "tone3.wav", 3.0)


def _timed_stop(playback: Playback) -> float:
    """Seconds from stop() until the playback reports done."""
    t0 = time.monotonic()
    playback.stop()
    assert playback.wait(1.0)
    return time.monotonic() - t0


def test_file_sink_writes_wav_and_record(tone3: Path, tmp_path: Path) -> None:
    out = tmp_path / "played"
    sink = FileSink(out, speed=0, clock=StepClock())
    pb = sink.play(tone3, announcement_id="ann-42", zones=["all"])
    assert pb.wait(5) and pb.done and pb.error is None and not pb.stopped
    assert pb.started_at == datetime(2026, 12, 1, 12, 30, tzinfo=UTC)
    wav = out / "2026-12-01T12-30-00Z_ann-42.wav"
    assert frames(wav) == frames(tone3)
    record = json.loads(wav.with_suffix(".json").read_text())
    assert record == {
        "announcement_id": "ann-42",
        "zones": ["all"],
        "started_at": "2026-12-01T12:30:00Z",
        "ended_at": "2026-12-01T12:30:01Z",
        "stopped": False,
        "played_s": 3.0,
        "wav": wav.name,
    }
    assert sorted(p.name for p in out.iterdir()) == [wav.with_suffix(".json").name, wav.name]


def test_file_sink_plays_in_real_time_and_stops_fast(tone3: Path, tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "played", clock=StepClock())
    pb = sink.play(tone3, announcement_id="../../etc/x", zones=["xom-1", "xom-2"])
    assert not pb.wait(0.5)  # 3 s of audio at 1x is still playing
    assert _timed_stop(pb) < 0.2
    assert pb.stopped and pb.error is None
    [wav] = (tmp_path / "played").glob("*.wav")
    assert wav.parent == tmp_path / "played"  # the id could not climb out
    seconds = wav_info(wav)[3]
    assert 0.4 <= seconds <= 0.8  # truncated where it was stopped
    record = json.loads(wav.with_suffix(".json").read_text())
    assert record["stopped"] is True and record["zones"] == ["xom-1", "xom-2"]


def test_null_sink_paces_and_stops(tone3: Path) -> None:
    fast = NullSink(speed=10).play(tone3, announcement_id="a", zones=[])
    assert not fast.wait(0.1) and fast.wait(1.0) and not fast.stopped
    slow = NullSink(clock=StepClock()).play(tone3, announcement_id="b", zones=[])
    assert not slow.wait(0.3)
    assert _timed_stop(slow) < 0.2
    assert slow.stopped and slow.ended_at == datetime(2026, 12, 1, 12, 30, 1, tzinfo=UTC)


def test_missing_wav_is_a_sink_error(tmp_path: Path) -> None:
    for sink in (AlsaSink(), FileSink(tmp_path), NullSink()):
        with pytest.raises(SinkError, match="does not exist"):
            sink.play(tmp_path / "gone.wav", announcement_id="a", zones=["all"])


def test_make_sink(tmp_path: Path) -> None:
    assert isinstance(make_sink("alsa", device="null"), AlsaSink)
    assert isinstance(make_sink("file", out_dir=tmp_path), FileSink)
    assert isinstance(make_sink("null"), NullSink)
    with pytest.raises(SinkError, match="alsa, file or null"):
        make_sink("bluetooth")


@pytest.fixture
def aplay() -> None:
    _need("aplay")


def _has_sound_card() -> bool:
    out = subprocess.run(["aplay", "-l"], capture_output=True, text=True, timeout=10)
    return "card " in out.stdout


@pytest.mark.usefixtures("aplay")
def test_alsa_without_sound_card_reports_error(tone3: Path) -> None:
    if _has_sound_card():
        pytest.skip("this machine has a sound card: `aplay -D default` would really play")
    pb = AlsaSink(device="default", clock=StepClock()).play(tone3, announcement_id="a", zones=[])
    assert pb.wait(5.0), "aplay hung instead of failing"
    assert pb.error is not None and "aplay exited with 1" in pb.error
    assert "aplay -l" in pb.error  # tells the technician where to look
    assert not pb.stopped
    with pytest.raises(SinkError, match="aplay exited"):
        pb.raise_for_error()


@pytest.mark.usefixtures("aplay")
def test_alsa_null_device_plays(tone3: Path) -> None:
    # ALSA's null PCM accepts samples without hardware (and without pacing).
    pb = AlsaSink(device="null").play(tone3, announcement_id="a", zones=["all"])
    assert pb.wait(5.0)
    assert pb.error is None and not pb.stopped
    pb.raise_for_error()


@pytest.fixture
def paced_alsa_device(tmp_path: Path) -> Iterator[str]:
    """A real ALSA device that consumes samples at the real rate, with no hardware.

    ALSA's ``file`` plugin (slave ``null``) writes the PCM into a FIFO; this fixture
    reads it at 22050 frames/s, as a sound card would, so aplay blocks mid-stream.
    """
    fifo = tmp_path / "pcm.fifo"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    done = threading.Event()

    def consume() -> None:
        t0, taken = time.monotonic(), 0
        while not done.is_set():
            allowed = int((time.monotonic() - t0) * 22050 * 2) - taken
            if allowed > 0:
                with contextlib.suppress(BlockingIOError):  # nothing written yet
                    taken += len(os.read(fd, allowed))
            done.wait(0.02)

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    yield f"file:'{fifo}',raw"
    done.set()
    reader.join(2)
    os.close(fd)


@pytest.mark.usefixtures("aplay")
def test_alsa_stop_takes_effect_within_200_ms(tone3: Path, paced_alsa_device: str) -> None:
    pb = AlsaSink(device=paced_alsa_device).play(tone3, announcement_id="a", zones=["all"])
    assert not pb.wait(0.5), pb.error  # really playing: 3 s at the real rate
    assert _timed_stop(pb) < 0.2
    assert pb.stopped and pb.error is None and pb.ended_at is not None
    assert pb._proc.poll() is not None  # aplay is gone, not orphaned


def test_tone_helper_is_what_it_says(tone3: Path) -> None:
    # Guard for the sink tests above: 3 s, mono, 16-bit, far from silent.
    rate, channels, width, seconds = wav_info(tone3)
    assert (rate, channels, width, seconds) == (22050, 1, 2, 3.0)
    assert not math.isinf(ebur128(tone3)[0])
