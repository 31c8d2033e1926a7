"""Live values: an emergency's fixed words rendered ahead, the reading spoken at once.

Its place in the flow: a rule's text "mực nước tại cầu Đông đã lên 350 cm" holds a value
no render ahead foresaw. ``hub/broadcast/rendering.py`` prepares a :class:`Frame` for
every number of an emergency text it renders ahead (the pre-render pass): the words
before and after the number, spoken, trimmed and faded, the chimes at the level the full
render gives them, and the gain (with this module's limiter) that lands the whole program
on the target loudness, measured by ffmpeg. When the rule fires, only the number's words
are spoken (a fraction of a second of speech) and :func:`assemble` joins the parts in
memory: no ffmpeg on the way to the loudspeakers.

What is spoken is decided by the normaliser on the whole text: a frame fits a text only
when its normalised reading starts and ends with the frame's fixed words (a unit read
differently next to another number makes a full render instead).

Pure audio work, any thread; the TTS engine is the caller's.
"""

from __future__ import annotations

import hashlib
import math
import re
import tempfile
import time
import warnings
import wave
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from audio.chimes import chime
from audio.normalize import normalize
from audio.render import RenderSpec, measure_pcm_loudness
from audio.tts import TTSEngine

with warnings.catch_warnings():
    # See audio/chimes.py: pydub's (and audioop's) import-time warnings are not ours.
    warnings.filterwarnings(
        "ignore", message="'audioop' is deprecated", category=DeprecationWarning
    )
    warnings.filterwarnings(
        "ignore", message="invalid escape sequence", category=DeprecationWarning
    )
    warnings.filterwarnings("ignore", message="invalid escape sequence", category=SyntaxWarning)
    import audioop

    from pydub import AudioSegment
    from pydub.silence import detect_leading_silence

__all__ = [
    "Frame",
    "assemble",
    "number_spans",
    "prepare_frame",
    "speak_words",
    "varying_numbers",
    "write_pcm_wav",
]

#: A number as a rule writes a reading (``value_text``: 350, 3,5, -2).
_NUMBER = re.compile(r"(?<![\w.,])-?\d+(?:[.,]\d+)?(?![\w])")
#: Two values whose readings differ from the first word to the last ("bảy", "tám"): the
#: fixed words are what the two readings share around them.
_PROBES = ("7", "8")
_CHIME_PAUSE_MS = 400  # as audio/render.py: between a chime and the words
_JOIN_MS = 70  # between the fixed words and the number: a speaker's breath, not a pause
_EDGE_MS = 25  # kept of the silence trimmed at each end of a piece
_SILENCE_DBFS = -50.0
_BLOCK = 64  # samples per limiter block (~3 ms at 22 050 Hz)
_ATTACK_DB = 2.0  # the limiter's gain falls at most this much per block, ahead of a peak
_RELEASE_DB = 0.25  # and rises at most this much per block after it
_ATTACK_BLOCKS = 4
_LUFS_TOLERANCE = 0.5
_MAX_EXTRA_GAIN_DB = 6.0
_LIMIT_MARGIN_DB = 1.0


def number_spans(text: str) -> list[tuple[str, str, str]]:
    """Each number of ``text`` as (the text before it, the number, the text after it)."""
    return [(text[: m.start()], m.group(), text[m.end() :]) for m in _NUMBER.finditer(text)]


def varying_numbers(texts: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[int]]:
    """For each ``(group, text)``, the positions (in :func:`number_spans`) of the numbers
    that differ among the texts of its group and shape (the same words, other numbers):
    a rule's texts for one device and several values differ at the value only, the
    gauge's number and the alarm level being fixed words. A text alone: every number."""
    pairs = list(texts)
    seen: dict[tuple[str, str], list[list[str]]] = {}
    for group, text in pairs:
        seen.setdefault((group, _NUMBER.sub("#", text)), []).append(_NUMBER.findall(text))
    varying: dict[tuple[str, str], list[int]] = {}
    for shape, numbers in seen.items():
        every = range(len(numbers[0]))
        varying[shape] = (
            [i for i in every if len({ns[i] for ns in numbers}) > 1]
            if len(numbers) > 1
            else list(every)
        )
    return {(g, t): varying[(g, _NUMBER.sub("#", t))] for g, t in pairs}


@dataclass(frozen=True, slots=True)
class Frame:
    """A text's fixed parts around one number, ready to join (mono s16 PCM at ``rate``).

    ``said_before`` / ``said_after``: the normalised words each part speaks, to check that
    a text fits; ``gain_db`` / ``limit_db``: what brings the program to the target."""

    key: str
    said_before: str
    said_after: str
    rate: int
    before_pcm: bytes
    after_pcm: bytes
    chime_before: bytes
    chime_after: bytes
    repeats: int
    gap_ms: int
    gain_db: float
    limit_db: float
    lufs: float
    true_peak_db: float
    #: How long the voice took to speak the sample number (seconds): whether a firing's
    #: number can be said in time, or the text is better rendered whole ahead.
    spoken_s: float = 0.0

    def middle(self, text: str) -> str | None:
        """The words ``text`` says between the fixed parts (its number, read in context),
        or None when the text does not fit this frame."""
        said = normalize(text)
        if not (said.startswith(self.said_before) and said.endswith(self.said_after)):
            return None
        mid = said[len(self.said_before) : len(said) - len(self.said_after)].strip()
        return mid or None


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _split(before: str, after: str) -> tuple[str, str] | None:
    """The normalised words before and after the number: what readings of two different
    values share, cut at a word's edge; None when the normaliser reads them apart."""
    a, b = (normalize(before + p + after) for p in _PROBES)
    head = _common_prefix(a, b)
    tail = _common_prefix(a[::-1], b[::-1])

    def inside_word(i: int) -> bool:  # between two letters of one word
        return 0 < i < len(a) and a[i - 1].isalnum() and a[i].isalnum()

    while inside_word(head):
        head -= 1
    while tail and inside_word(len(a) - tail):
        tail -= 1
    if head + tail >= len(a):
        return None
    return a[:head], a[len(a) - tail :]


def _segment(pcm: bytes, rate: int) -> AudioSegment:
    return AudioSegment(data=pcm, sample_width=2, frame_rate=rate, channels=1)


def _silence(ms: int, rate: int) -> bytes:
    return b"\x00\x00" * (rate * ms // 1000)


def _speakable(words: str) -> bool:
    return any(c.isalnum() for c in words)


def speak_words(engine: TTSEngine, words: str, spec: RenderSpec, tmp: Path) -> bytes:
    """``words`` (already normalised) spoken, at ``spec``'s rate, trimmed of the silence
    the engine leaves around an utterance."""
    out = tmp / f"piece-{hashlib.sha1(words.encode()).hexdigest()[:12]}.wav"
    engine.synthesize(
        words, voice=spec.voice, out_wav=out, rate=spec.rate, pause_s=spec.sentence_pause_s
    )
    with wave.open(str(out), "rb") as w:
        rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        data = w.readframes(w.getnframes())
    if channels != 1:
        data = audioop.tomono(data, width, 0.5, 0.5)
    if width != 2:
        data = audioop.lin2lin(data, width, 2)
    if rate != spec.sample_rate:
        data, _ = audioop.ratecv(data, 2, 1, rate, spec.sample_rate, None)
    seg = _segment(data, spec.sample_rate)
    start = max(0, detect_leading_silence(seg, _SILENCE_DBFS, 5) - _EDGE_MS)
    end = len(seg) - max(0, detect_leading_silence(seg.reverse(), _SILENCE_DBFS, 5) - _EDGE_MS)
    return seg[start:end].raw_data if end > start else b""


def _program(frame: Frame, middle: bytes | None) -> bytes:
    """Chime, the speech ``repeats`` times with the gap between, chime: as render.py does."""
    rate, join = frame.rate, _silence(_JOIN_MS, frame.rate)
    spoken = [p for p in (frame.before_pcm, middle, frame.after_pcm) if p]
    speech = join.join(spoken)
    gap = _silence(frame.gap_ms, rate)
    parts: list[bytes] = []
    if frame.chime_before:
        parts += [frame.chime_before, _silence(_CHIME_PAUSE_MS, rate)]
    parts.append(gap.join([speech] * frame.repeats))
    if frame.chime_after:
        parts += [_silence(_CHIME_PAUSE_MS, rate), frame.chime_after]
    return b"".join(parts)


def limited(pcm: bytes, gain_db: float, limit_db: float) -> bytes:
    """``pcm`` raised by ``gain_db``, its sample peaks held under ``limit_db`` dBFS.

    A block limiter on audioop (C): each ~3 ms block gets the gain its peak allows; the
    gain falls ahead of a peak and recovers after it in small steps, so no block's step
    clicks on a horn. Cheap enough for the moment an emergency fires (milliseconds)."""
    g = 10 ** (gain_db / 20)
    ceiling = 32767 * 10 ** (limit_db / 20)
    size = _BLOCK * 2
    blocks = [pcm[i : i + size] for i in range(0, len(pcm), size)]
    need = [min(g, ceiling / p) if (p := audioop.max(b, 2)) else g for b in blocks]
    attack, release = 10 ** (_ATTACK_DB / 20), 10 ** (_RELEASE_DB / 20)
    out: list[bytes] = []
    current = g
    for i, block in enumerate(blocks):
        ahead = min(need[i + j] * attack**j for j in range(min(_ATTACK_BLOCKS, len(need) - i)))
        current = min(ahead, current * release, g)
        out.append(audioop.mul(block, 2, current))
    return b"".join(out)


def write_pcm_wav(path: Path, pcm: bytes, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


def assemble(frame: Frame, middle: bytes | None) -> bytes:
    """The finished program (PCM at ``frame.rate``): the fixed parts with ``middle``, the
    number's words, between them (None: the fixed text alone, without the value)."""
    return limited(_program(frame, middle), frame.gain_db, frame.limit_db)


def _calibrate(frame: Frame, sample: bytes, spec: RenderSpec) -> Frame:
    """The gain (and limit) that lands the program with ``sample`` on the target: measured
    by ffmpeg's ebur128 as the full render measures, done ahead (through a pipe: a frame
    is measured a few times at every start, and nothing of it needs the card)."""
    raw = _program(frame, sample)
    lufs, _ = measure_pcm_loudness(raw, frame.rate)
    if not math.isfinite(lufs) or lufs <= -60:
        raise ValueError("the fixed parts are silent")
    target, ceiling = spec.target_lufs, spec.true_peak_db
    first = gain = target - lufs
    limit = ceiling - _LIMIT_MARGIN_DB
    peak = ceiling
    for _ in range(4):
        lufs, peak = measure_pcm_loudness(limited(raw, gain, limit), frame.rate)
        if peak > ceiling:
            limit -= peak - ceiling + 0.2  # inter-sample peaks over the sample ceiling
        elif abs(lufs - target) > _LUFS_TOLERANCE:
            # The limiter takes loudness away as it works: ~0.6 LU per dB (audio/render.py).
            step = (target - lufs) / (0.6 if lufs < target else 1.0)
            gain = min(gain + step, first + _MAX_EXTRA_GAIN_DB)
        else:
            break
    return replace(frame, gain_db=gain, limit_db=limit, lufs=lufs, true_peak_db=peak)


def prepare_frame(
    engine: TTSEngine,
    spec: RenderSpec,
    before: str,
    after: str,
    *,
    key: str,
    log_failure: Callable[[str], None] | None = None,
) -> Frame | None:
    """The frame of a text ``before`` + a number + ``after`` (lexicon applied), rendered
    with ``spec``'s voice, rate, chimes, repeats and loudness; None when the normaliser's
    reading of the fixed words depends on the number (such a text renders in full)."""
    split = _split(before, after)
    if split is None:
        return None
    said_before, said_after = split
    rate = spec.sample_rate
    with tempfile.TemporaryDirectory(prefix="langso-frame-") as name:
        tmp = Path(name)
        pieces = [
            speak_words(engine, w, spec, tmp) if _speakable(w) else b""
            for w in (said_before, said_after)
        ]
        sample_words = normalize(before + _PROBES[0] + after)
        sample_words = sample_words[len(said_before) : len(sample_words) - len(said_after)]
        # Twice, the quicker counts: the first may wait on a start-up's busy cores.
        spoken_s = math.inf
        for _ in range(2):
            started = time.monotonic()
            sample = speak_words(engine, sample_words.strip(), spec, tmp)
            spoken_s = min(spoken_s, time.monotonic() - started)
        speech = _segment(b"".join([*pieces, sample]), rate)
        if not speech.raw_data or speech.dBFS == -math.inf:
            return None
        fade = spec.fade_ms
        before_seg, after_seg = (_segment(p, rate) for p in pieces)
        if fade and len(before_seg):
            before_seg = before_seg.fade_in(min(fade, len(before_seg) // 2))
        if fade and len(after_seg):
            after_seg = after_seg.fade_out(min(fade, len(after_seg) // 2))
        chimes = []
        for source, ascending in ((spec.chime_before, True), (spec.chime_after, False)):
            c = chime(source, rate, ascending=ascending)
            # A chime 3 dB (RMS) under the voice, as the full render places it.
            chimes.append(b"" if c is None else c.apply_gain(speech.dBFS - 3.0 - c.dBFS).raw_data)
        frame = Frame(
            key=key,
            said_before=said_before,
            said_after=said_after,
            rate=rate,
            before_pcm=before_seg.raw_data,
            after_pcm=after_seg.raw_data,
            chime_before=chimes[0],
            chime_after=chimes[1],
            repeats=spec.repeats,
            gap_ms=round(spec.gap_s * 1000),
            gain_db=0.0,
            limit_db=spec.true_peak_db - _LIMIT_MARGIN_DB,
            lufs=spec.target_lufs,
            true_peak_db=spec.true_peak_db,
            spoken_s=spoken_s,
        )
        try:
            return _calibrate(frame, sample, spec)
        except ValueError as e:
            if log_failure is not None:
                log_failure(str(e))
            return None
