"""Render: an announcement (text or recording) to the WAV for the PA and the file residents replay.

Runs when an announcement is saved, in a worker thread, so that at the scheduled
second the playout only starts the sink. The steps:

1. speech: ``normalize_vi.normalize`` then the TTS engine (text) at the spec's ``rate``,
   with ``sentence_pause_s`` of silence after each sentence; or the decoded upload;
2. assembly with pydub at one rate, mono, 16-bit: rising chime, the speech ``repeats``
   times with ``gap_s`` between, falling chime, short fades against clicks;
3. loudness, with ffmpeg: ``ebur128`` measures the assembly; when the gain to the target
   would push the peaks over the ceiling, an ``alimiter`` follows the gain, and since
   limiting takes some loudness away, two trial gains are measured side by side to find
   the gain that lands on the target; the final pass writes the WAV through the same
   chain and measures it with ``ebur128=peak=true`` (what is written is what is checked;
   out of bounds, it is redone with a lower limit);
4. exports: the PA WAV (PCM s16) and, in a second process during the final pass, the
   web file (Opus in Ogg, 32 kbit/s mono, or MP3 when ffmpeg lacks libopus).

Everything is cached (``audio/cache.py``) by a hash of whatever changes the output, so an
identical render is stored once; files are written atomically (temporary file, then
rename), so a crash never leaves half a file.

Why 22050 Hz: village horn loudspeakers reproduce roughly 300 Hz to 7 kHz, so 11 kHz
of bandwidth is more than they can play; it is espeak-ng's own rate (no resampling of
the speech) and halves the work of a 44.1 kHz render on a Raspberry Pi.

Why not ``loudnorm``: it resamples to 192 kHz internally and, in linear mode, silently
falls back to dynamic mode when the true peak would exceed the ceiling; ``volume`` +
``alimiter`` + ``ebur128`` is faster and says what it did.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import subprocess
import tempfile
import warnings
import wave
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from audio.cache import RenderCache, Rendered, file_sha256
from audio.chimes import chime
from audio.decode import MAX_SECONDS, decode_upload, wav_duration
from audio.errors import AudioError, InvalidAudio, InvalidSpec
from audio.normalize_vi import normalize
from audio.tts import TTSEngine

with warnings.catch_warnings():
    # See audio/chimes.py: pydub's import-time warnings are not ours to fix.
    warnings.filterwarnings(
        "ignore", message="'audioop' is deprecated", category=DeprecationWarning
    )
    warnings.filterwarnings(
        "ignore", message="invalid escape sequence", category=DeprecationWarning
    )
    warnings.filterwarnings("ignore", message="invalid escape sequence", category=SyntaxWarning)
    from pydub import AudioSegment

__all__ = ["RENDER_VERSION", "RenderSpec", "Rendered", "measure_loudness", "render"]

# Bump when a change here alters the rendered audio, so that old cache entries are not served.
RENDER_VERSION = 1

MAX_TEXT_CHARS = 20_000
_CHIME_PAUSE_MS = 400  # between a chime and the words
_LUFS_TOLERANCE = 0.5  # accepted |integrated - target|, in LU
_LIMIT_MARGIN_DB = 1.0  # alimiter works on sample peaks; true peaks sit up to ~0.7 dB above
_MAX_EXTRA_GAIN_DB = 6.0  # never limit harder than this to reach the target loudness
_MAX_PASSES = 4
_SILENT_LUFS = -60.0
_FFMPEG_TIMEOUT_S = 120.0
#: The speaking rates a render takes (the voice's setting times the announcement's choice).
RATE_MIN, RATE_MAX = 0.3, 2.5


@dataclass(frozen=True, slots=True)
class RenderSpec:
    """What to render. Exactly one of ``text`` and ``source_wav``.

    ``chime_before`` / ``chime_after``: True for the generated chime, False for none, or
    a path to an audio file. ``source_wav`` is a WAV from ``decode.decode_upload``.
    ``rate`` (a factor of the engine's normal speed) and ``sentence_pause_s`` (silence
    added after each sentence) shape the speech of a text; a recording plays as it is.
    """

    text: str | None = None
    source_wav: Path | None = None
    voice: str | None = None
    sample_rate: int = 22050
    target_lufs: float = -16.0
    true_peak_db: float = -1.0
    chime_before: bool | Path = True
    chime_after: bool | Path = True
    repeats: int = 1
    gap_s: float = 2.0
    fade_ms: int = 20
    rate: float = 1.0
    sentence_pause_s: float = 0.0

    def __post_init__(self) -> None:
        if (self.text is None) == (self.source_wav is None):
            raise InvalidSpec("give either a text or a recording, not both nor neither")
        if self.text is not None and not self.text.strip():
            raise InvalidSpec("the announcement text is empty")
        if self.text is not None and len(self.text) > MAX_TEXT_CHARS:
            raise InvalidSpec(f"the text is longer than {MAX_TEXT_CHARS} characters: split it")
        if not 8000 <= self.sample_rate <= 48000:
            raise InvalidSpec(f"sample rate {self.sample_rate} Hz: use 8000 to 48000 (22050)")
        if not 1 <= self.repeats <= 5:
            raise InvalidSpec(f"repeats {self.repeats}: say it 1 to 5 times")
        if not 0.0 <= self.gap_s <= 30.0:
            raise InvalidSpec(f"gap {self.gap_s} s between repeats: use 0 to 30 s")
        if not RATE_MIN <= self.rate <= RATE_MAX:
            raise InvalidSpec(f"speaking rate {self.rate:g}: use {RATE_MIN:g} to {RATE_MAX:g}")
        if not 0.0 <= self.sentence_pause_s <= 5.0:
            raise InvalidSpec(f"pause {self.sentence_pause_s:g} s after sentences: use 0 to 5 s")
        if not 0 <= self.fade_ms <= 1000:
            raise InvalidSpec(f"fade {self.fade_ms} ms: use 0 to 1000 ms")
        if not -40.0 <= self.target_lufs <= -5.0:
            raise InvalidSpec(f"target loudness {self.target_lufs} LUFS: use -40 to -5")
        if not -20.0 <= self.true_peak_db <= 0.0:
            raise InvalidSpec(f"true-peak ceiling {self.true_peak_db} dBTP: use -20 to 0")


# --- measuring -------------------------------------------------------------------------

_SUMMARY_I = re.compile(rb"\bI:\s+(-?[\d.]+|-?inf|nan) LUFS")
_SUMMARY_PEAK = re.compile(rb"\bPeak:\s+(-?[\d.]+|-?inf|nan) dBFS")


def _parse_ebur128(stderr: bytes) -> tuple[float, float]:
    """The summary ebur128 prints when the stream ends: integrated LUFS, peak in dB.

    The peak is the true peak (dBTP) with ``peak=true``, the sample peak with ``peak=sample``.
    """
    summary = stderr.rpartition(b"Summary:")[2]
    i, peak = _SUMMARY_I.search(summary), _SUMMARY_PEAK.search(summary)
    if i is None or peak is None:
        raise AudioError("ffmpeg's ebur128 printed no summary: is this ffmpeg ≥ 4?")
    return float(i.group(1)), float(peak.group(1))


def _ffmpeg(*argvs: list[str], feed: bytes | None = None) -> list[bytes]:
    """Run ffmpeg commands side by side (the Pi has 4 cores); return each one's stderr.
    ``feed``: what a single command reads as its input ``pipe:0``.

    stderr is where filters report; at the default log level it stays a few kB, so
    reading the pipes one after the other cannot stall a process.
    """
    assert feed is None or len(argvs) == 1
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for argv in argvs:
            procs.append(
                subprocess.Popen(
                    ["ffmpeg", "-nostdin", "-hide_banner", "-nostats", *argv],
                    stdin=subprocess.DEVNULL if feed is None else subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
            )
        errs = [p.communicate(feed, timeout=_FFMPEG_TIMEOUT_S)[1] for p in procs]
    except subprocess.TimeoutExpired as exc:
        raise AudioError(f"ffmpeg took longer than {_FFMPEG_TIMEOUT_S:g} s") from exc
    except OSError as exc:
        raise AudioError(f"ffmpeg cannot run ({exc}): apt install ffmpeg") from exc
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, err in zip(procs, errs, strict=True):
        if p.returncode != 0:
            lines = err.decode("utf-8", "replace").strip().splitlines()
            raise AudioError(f"ffmpeg failed: {lines[-1] if lines else 'no message'}")
    return errs


def _file(path: Path) -> str:
    return "file:" + str(path.resolve())


def measure_loudness(path: Path) -> tuple[float, float]:
    """(integrated loudness in LUFS, true peak in dBTP) of a file, by ffmpeg ``ebur128``."""
    [stderr] = _ffmpeg(
        ["-i", _file(path), "-map", "0:a:0", "-af", "ebur128=peak=true", "-f", "null", "-"]
    )
    return _parse_ebur128(stderr)


def measure_pcm_loudness(pcm: bytes, rate: int) -> tuple[float, float]:
    """:func:`measure_loudness` of mono s16 PCM in memory, fed to ffmpeg through a pipe:
    nothing written to the card (the emergency frames are measured this way, a few times
    each, at every start)."""
    argv = ["-f", "s16le", "-ar", str(rate), "-ac", "1", "-i", "pipe:0",
            "-af", "ebur128=peak=true", "-f", "null", "-"]  # fmt: skip
    [stderr] = _ffmpeg(argv, feed=pcm)
    return _parse_ebur128(stderr)


def _gain_chain(gain_db: float, limit_db: float | None) -> str:
    filters = [f"volume={gain_db:.3f}dB"]
    if limit_db is not None:
        # level=false: no automatic make-up gain; latency=true: no lookahead delay.
        limit = min(1.0, max(0.0625, 10 ** (limit_db / 20)))
        filters.append(f"alimiter=limit={limit:.6f}:level=false:latency=true")
    return ",".join(filters)


def _measure_argv(src: Path, gain_db: float, limit_db: float | None) -> list[str]:
    # Sample peak only: the true-peak meter oversamples 4x and costs twice the rest of
    # the pass; the final pass measures the true peak of what it writes.
    chain = f"{_gain_chain(gain_db, limit_db)},ebur128=peak=sample"
    return ["-i", _file(src), "-af", chain, "-f", "null", "-"]


def _measure(src: Path, *gains: float, limit_db: float | None) -> list[tuple[float, float]]:
    """(integrated LUFS, sample peak) after each gain (and the limiter), side by side."""
    errs = _ffmpeg(*(_measure_argv(src, g, limit_db) for g in gains))
    return [_parse_ebur128(e) for e in errs]


def _final_pass(
    src: Path, gain_db: float, limit_db: float | None, pa_wav: Path, web: Path
) -> tuple[float, float]:
    """Write the PA WAV (measured: LUFS, true peak) and, alongside, the web file.

    Both processes run the same deterministic filter chain at once: one core writes
    and measures the WAV while another encodes the web file.
    """
    chain = _gain_chain(gain_db, limit_db)
    pa_argv = ["-i", _file(src), "-af", f"{chain},ebur128=peak=true",
               "-c:a", "pcm_s16le", "-f", "wav", "-y", _file(pa_wav)]  # fmt: skip
    web_argv = ["-i", _file(src), "-af", chain, *web_format()[1], "-y", _file(web)]
    pa_err, _ = _ffmpeg(pa_argv, web_argv)
    return _parse_ebur128(pa_err)


def _search_gain(src: Path, gain: float, limit: float, target: float) -> float:
    """The gain that, through the limiter, lands on the target loudness.

    The limiter takes loudness away, the more the harder it works (espeak-ng speech
    gains ~0.6 LU per dB once limited, measured). Two trial gains measured side by side
    give the slope; one more step interpolates.
    """
    low, high = gain + 1.0, gain + 2.5
    (l_low, _), (l_high, _) = _measure(src, low, high, limit_db=limit)
    slope = min(1.0, max(0.2, (l_high - l_low) / (high - low)))
    best = low + (target - l_low) / slope
    return min(max(best, gain), gain + _MAX_EXTRA_GAIN_DB)


def _normalise_loudness(
    src: Path, spec: RenderSpec, pa_wav: Path, web: Path
) -> tuple[float, float]:
    """Write ``pa_wav`` and ``web`` at the target loudness, true peak under the ceiling."""
    [(lufs, sample_peak)] = _measure(src, 0.0, limit_db=None)
    if lufs <= _SILENT_LUFS:
        raise InvalidAudio("the announcement is silent: nothing to put on the loudspeakers")
    target, ceiling = spec.target_lufs, spec.true_peak_db
    first_gain = gain = target - lufs
    limit: float | None = None
    if sample_peak + gain > ceiling - _LIMIT_MARGIN_DB:
        limit = ceiling - _LIMIT_MARGIN_DB
        gain = _search_gain(src, gain, limit, target)
    for _ in range(_MAX_PASSES):
        lufs, peak = _final_pass(src, gain, limit, pa_wav, web)
        if peak > ceiling:
            # Inter-sample peaks above the limiter's sample-peak ceiling: limit lower.
            base = ceiling - _LIMIT_MARGIN_DB if limit is None else limit
            limit = base - (peak - ceiling) - 0.2
        elif abs(lufs - target) > _LUFS_TOLERANCE and gain - first_gain < _MAX_EXTRA_GAIN_DB:
            gain = min(gain + (target - lufs) / 0.6, first_gain + _MAX_EXTRA_GAIN_DB)
            limit = ceiling - _LIMIT_MARGIN_DB if limit is None else limit
        else:
            return lufs, peak  # on target, or as close as the ceiling allows (reported)
    if peak <= ceiling:
        return lufs, peak  # the file written last is within the ceiling, a little off target
    # Last resort: plain gain down until the peak fits (quieter, and reported as such).
    return _final_pass(src, gain - (peak - ceiling) - 0.5, limit, pa_wav, web)


# --- exports ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def web_format() -> tuple[str, tuple[str, ...]]:
    """(extension, ffmpeg output options) of the residents' file."""
    try:
        encoders = subprocess.run(
            ["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, timeout=10, check=False
        ).stdout
    except (subprocess.SubprocessError, OSError):
        encoders = b""
    if b"libopus" in encoders:
        # Complexity 5: a third of the encoding time of the default 10 for speech at
        # 32 kbit/s, at no audible cost (measured: 0.27 s vs 0.81 s for one minute).
        return ".ogg", (
            "-c:a", "libopus", "-b:a", "32k", "-vbr", "constrained",
            "-compression_level", "5", "-ar", "24000", "-ac", "1", "-f", "ogg",
        )  # fmt: skip
    return ".mp3", ("-c:a", "libmp3lame", "-b:a", "32k", "-ac", "1", "-f", "mp3")


# --- assembly --------------------------------------------------------------------------


def _load_pcm_wav(path: Path, rate: int, tmp: Path) -> AudioSegment:
    """A mono 16-bit segment at ``rate``; other WAVs are converted by ffmpeg first."""
    try:
        with wave.open(str(path), "rb") as w:
            fits = (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (rate, 1, 2)
    except (wave.Error, EOFError):
        fits = False  # not a PCM WAV (or a damaged header): let ffmpeg make one
    if not fits:
        converted = tmp / "converted.wav"
        decode_upload(path, converted, max_seconds=MAX_SECONDS, sample_rate=rate)
        path = converted
    # Read with the wave module rather than pydub's from_wav, which leaves the file open.
    with wave.open(str(path), "rb") as w:
        data = w.readframes(w.getnframes())
    return AudioSegment(data=data, sample_width=2, frame_rate=rate, channels=1)


def _speech(
    spec: RenderSpec, engine: TTSEngine | None, text: str | None, tmp: Path
) -> AudioSegment:
    if text is not None:
        if engine is None:
            raise InvalidSpec("a text announcement needs a TTS engine")
        tts_wav = tmp / "tts.wav"
        pause = spec.sentence_pause_s
        engine.synthesize(text, voice=spec.voice, out_wav=tts_wav, rate=spec.rate, pause_s=pause)
        return _load_pcm_wav(tts_wav, spec.sample_rate, tmp)
    assert spec.source_wav is not None
    if not spec.source_wav.exists():
        raise InvalidAudio(f"the recording {spec.source_wav.name} is missing")
    return _load_pcm_wav(spec.source_wav, spec.sample_rate, tmp)


def _assemble(speech: AudioSegment, spec: RenderSpec) -> AudioSegment:
    rate = spec.sample_rate
    if speech.dBFS == -math.inf:
        raise InvalidAudio("the announcement is silent: nothing to put on the loudspeakers")
    if spec.fade_ms:
        fade = min(spec.fade_ms, len(speech) // 2)
        speech = speech.fade_in(fade).fade_out(fade)
    pause = AudioSegment.silent(duration=_CHIME_PAUSE_MS, frame_rate=rate)
    gap = AudioSegment.silent(duration=round(spec.gap_s * 1000), frame_rate=rate)
    parts: list[AudioSegment] = []
    before = chime(spec.chime_before, rate, ascending=True)
    if before is not None:
        parts += [_match_level(before, speech), pause]
    for i in range(spec.repeats):
        parts += [gap, speech] if i else [speech]
    after = chime(spec.chime_after, rate, ascending=False)
    if after is not None:
        parts += [pause, _match_level(after, speech)]
    # One join instead of repeated "+": each "+" copies everything before it.
    data = b"".join(p.raw_data for p in parts)
    return AudioSegment(data=data, sample_width=2, frame_rate=rate, channels=1)


def _match_level(chime_seg: AudioSegment, speech: AudioSegment) -> AudioSegment:
    # A chime 3 dB (RMS) under the voice: heard clearly, never louder than the words.
    return chime_seg.apply_gain(speech.dBFS - 3.0 - chime_seg.dBFS)


def _write_wav(path: Path, segment: AudioSegment) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(segment.frame_rate)
        w.writeframes(segment.raw_data)


# --- cache key (the cache itself: audio/cache.py) ------------------------------------


def _chime_id(source: bool | Path) -> str | None:
    if source is False:
        return None
    if source is True:
        return "generated"
    return "file:" + file_sha256(Path(source))


def cache_key(spec: RenderSpec, engine: TTSEngine | None, text: str | None) -> str:
    """A hash of everything that changes the output (not of what merely names it)."""
    material: dict[str, Any] = {
        "version": RENDER_VERSION,
        "sample_rate": spec.sample_rate,
        "target_lufs": spec.target_lufs,
        "true_peak_db": spec.true_peak_db,
        "chime_before": _chime_id(spec.chime_before),
        "chime_after": _chime_id(spec.chime_after),
        "repeats": spec.repeats,
        "gap_s": spec.gap_s,
        "fade_ms": spec.fade_ms,
        "web": web_format()[0],
    }
    if text is not None:
        material |= {
            "text": text,  # the normalised text: what is actually spoken
            "voice": spec.voice,
            "rate": spec.rate,
            "sentence_pause_s": spec.sentence_pause_s,
            "engine": None if engine is None else [engine.name, engine.identity],
        }
    else:
        assert spec.source_wav is not None
        material["source"] = file_sha256(spec.source_wav) if spec.source_wav.exists() else None
    blob = json.dumps(material, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


# --- the entry point -------------------------------------------------------------------


def render(
    spec: RenderSpec,
    engine: TTSEngine | None,
    cache: Path | RenderCache,
    *,
    emergency: bool = False,
) -> Rendered:
    """Render ``spec`` (or find it in the cache). Blocking: call it from a worker thread.

    ``cache`` is a :class:`RenderCache` or its folder; ``emergency`` marks the entry as
    emergency audio, which the cache never evicts. Evicting to the budget is the caller's
    (``RenderCache.trim``): only it knows what its announcements still need.

    Raises InvalidSpec, InvalidAudio (silent or missing recording), TTSError, AudioError.
    """
    if not isinstance(cache, RenderCache):
        cache = RenderCache.at(cache)
    cache_dir = cache.directory
    text = normalize(spec.text) if spec.text is not None else None
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = cache_key(spec, engine, text)
    cached = cache.lookup(key, emergency=emergency)
    if cached is not None:
        return cached
    ext = web_format()[0]
    with tempfile.TemporaryDirectory(prefix=".render-", dir=cache_dir) as tmp_name:
        tmp = Path(tmp_name)
        program = _assemble(_speech(spec, engine, text, tmp), spec)
        src, pa_wav, web = tmp / "program.wav", tmp / "pa.wav", tmp / f"web{ext}"
        _write_wav(src, program)
        lufs, peak = _normalise_loudness(src, spec, pa_wav, web)
        duration_s, sha256 = wav_duration(pa_wav), file_sha256(pa_wav)
        wav_path, web_path = cache.put(
            key,
            wav=pa_wav,
            web=web,
            meta={
                "duration_s": duration_s,
                "sha256": sha256,
                "lufs": lufs,
                "true_peak_db": peak,
                "text": text,
            },
            emergency=emergency,
        )
    return Rendered(
        wav_path=wav_path,
        web_path=web_path,
        duration_s=duration_s,
        sha256=sha256,
        lufs=lufs,
        true_peak_db=peak,
        key=key,
    )
