"""Chimes: the short tune the renderer puts before (rising) and after (falling) an announcement.

Villagers know a broadcast is starting from the chime before they catch the words, so
the first syllable is not lost in the street noise. The default is generated (three
bell-like notes of a C major triad), or an operator's file from the configuration.
"""

from __future__ import annotations

import tempfile
import warnings
import wave
from functools import lru_cache
from pathlib import Path

from audio.decode import decode_upload

with warnings.catch_warnings():
    # pydub 0.25 imports the stdlib ``audioop`` (DeprecationWarning on 3.11/3.12;
    # audioop-lts replaces it on 3.13) and holds regexes with invalid escapes
    # (DeprecationWarning/SyntaxWarning when its .pyc is compiled). Neither is ours to fix.
    warnings.filterwarnings(
        "ignore", message="'audioop' is deprecated", category=DeprecationWarning
    )
    warnings.filterwarnings(
        "ignore", message="invalid escape sequence", category=DeprecationWarning
    )
    warnings.filterwarnings("ignore", message="invalid escape sequence", category=SyntaxWarning)
    from pydub import AudioSegment
    from pydub.generators import Sine

__all__ = ["chime", "generated_chime"]

# C5, E5, G5: high enough to carry over horn loudspeakers (which roll off below
# ~300 Hz), low enough to stay pleasant.
_NOTES_HZ = (523.25, 659.25, 783.99)
_NOTE_STEP_MS = 300  # onset to onset
_NOTE_RING_MS = 900
_LAST_RING_MS = 1400
_NOTE_DBFS = -12.0
# Partials of a soft bell: (multiple of the fundamental, level relative to it in dB).
_PARTIALS = ((1.0, 0.0), (2.0, -14.0), (3.0, -22.0))
_MAX_CHIME_S = 15.0


@lru_cache(maxsize=16)
def _note(freq: float, ring_ms: int, rate: int) -> AudioSegment:
    note = AudioSegment.silent(duration=ring_ms, frame_rate=rate)
    for multiple, rel_db in _PARTIALS:
        if freq * multiple >= rate / 2:
            continue  # above Nyquist at low PA rates
        tone = Sine(freq * multiple, sample_rate=rate, bit_depth=16).to_audio_segment(
            duration=ring_ms, volume=_NOTE_DBFS + rel_db
        )
        note = note.overlay(tone)
    # A quick attack (no click) and a long linear decay: the ring of a struck bell.
    return note.fade_in(6).fade_out(ring_ms - 6)


@lru_cache(maxsize=8)
def generated_chime(rate: int, *, ascending: bool) -> AudioSegment:
    """Three notes, rising (before the words) or falling (after them), mono 16-bit."""
    notes = _NOTES_HZ if ascending else tuple(reversed(_NOTES_HZ))
    total = _NOTE_STEP_MS * (len(notes) - 1) + _LAST_RING_MS
    out = AudioSegment.silent(duration=total, frame_rate=rate).set_sample_width(2)
    for i, freq in enumerate(notes):
        ring = _LAST_RING_MS if i == len(notes) - 1 else _NOTE_RING_MS
        out = out.overlay(_note(freq, ring, rate), position=i * _NOTE_STEP_MS)
    return out


def chime(source: bool | Path, rate: int, *, ascending: bool) -> AudioSegment | None:
    """The chime to play: None (``False``), the generated one (``True``) or a file's.

    A file goes through the same checks as an upload (any format, at most 15 s).
    """
    if source is False:
        return None
    if source is True:
        return generated_chime(rate, ascending=ascending)
    with tempfile.TemporaryDirectory(prefix="langso-chime-") as tmp:
        wav = Path(tmp) / "chime.wav"
        decode_upload(Path(source), wav, max_seconds=_MAX_CHIME_S, sample_rate=rate)
        # The wave module, not pydub's from_wav (which leaves the file open).
        with wave.open(str(wav), "rb") as w:
            data = w.readframes(w.getnframes())
    return AudioSegment(data=data, sample_width=2, frame_rate=rate, channels=1)
