"""Sentences: where a spoken text has its pauses, and the speech of each joined with them.

Between the normaliser and the engines (``audio.tts``): a horn speaker in a village
square echoes, and a listener who missed a word catches up in the silence after a
sentence. The renderer asks an engine for ``pause_s`` of silence after each sentence
(``audio.sentence_pause_s``, or the announcement's own); espeak-ng says each sentence in
its own process and :func:`join_wavs` puts the silence between them; the Piper worker
says them in one process and writes the silence itself. Either way the pause comes on
top of the engine's own sentence-final pause, so ``0`` keeps the engine's reading.

A sentence ends at ``.``, ``!``, ``?`` or ``…`` (closing quotes and brackets go with it)
followed by a space and the start of a sentence (a capital, a digit, an opening quote),
and at every line break (notices list their items on lines). Not at a decimal or a time
(``2,5``, ``7.30``: no space follows), nor after an abbreviation (``TP.``, ``ThS.``, an
initial), nor after a list number at the start of a line (``1. Họp dân``).
"""

from __future__ import annotations

import re
import wave
from collections.abc import Sequence
from pathlib import Path

from audio.errors import TTSError

__all__ = ["ABBREVIATIONS", "join_wavs", "split_sentences"]

#: Words written with a full stop that does not end a sentence: places, titles, degrees.
#: (A single capital, an initial or ``P.``/``Q.``/``X.``, is handled as a rule.)
ABBREVIATIONS = frozenset(
    {
        "TP", "Tp", "tp", "TX", "Tx", "TT", "Th", "ThS", "Ths", "TS", "Ts", "PGS", "GS",
        "BS", "Bs", "KS", "Ks", "St", "Mr", "Mrs", "Ms", "Dr", "No", "Tel", "tel",
    }
)  # fmt: skip
_BOUNDARY = re.compile(r"[.!?…]+[\"”’»)\]]*(?=\s)")
_OPENERS = '"“‘«([-–—•*'


def _starts_sentence(rest: str) -> bool:
    c = rest[0]
    return c.isupper() or c.isdigit() or c in _OPENERS


def _keeps_going(before: str, ender: str) -> bool:
    """Whether the full stop after ``before`` (the sentence so far) is not an end."""
    if ender != ".":
        return False
    words = before.split()
    if not words:
        return True
    word = words[-1].lstrip('"“‘«([')
    # A capital alone is an initial (Nguyễn V. An); a small one is a word ("chú ý.").
    if word in ABBREVIATIONS or (len(word) == 1 and word.isupper()):
        return True
    return len(words) == 1 and word.isdigit() and len(word) <= 2  # "1. Họp dân"


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``, each stripped, none empty, in order."""
    out: list[str] = []
    for line in text.splitlines():  # a line break always ends a sentence
        start = 0
        for m in _BOUNDARY.finditer(line):
            rest = line[m.end() :].lstrip()
            if rest and not _starts_sentence(rest):
                continue
            ender = m.group(0).rstrip('"”’»)]')
            if _keeps_going(line[start : m.start()], ender):
                continue
            piece = line[start : m.end()].strip()
            if piece:
                out.append(piece)
            start = m.end()
        tail = line[start:].strip()
        if tail:
            out.append(tail)
    return out


def join_wavs(parts: Sequence[Path], out: Path, pause_s: float) -> None:
    """Write ``parts`` (PCM WAVs of one format) one after the other into ``out``, with
    ``pause_s`` of silence between each two."""
    if not parts:
        raise TTSError("nothing to say: no sentence was spoken")
    with wave.open(str(parts[0]), "rb") as first:
        channels, width, rate = first.getnchannels(), first.getsampwidth(), first.getframerate()
    silence = b"\0" * (round(pause_s * rate) * channels * width)
    with wave.open(str(out), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        for i, part in enumerate(parts):
            with wave.open(str(part), "rb") as r:
                if (r.getnchannels(), r.getsampwidth(), r.getframerate()) != (
                    channels,
                    width,
                    rate,
                ):
                    raise TTSError(f"sentence {i + 1} came out in another audio format")
                if i:
                    w.writeframes(silence)
                w.writeframes(r.readframes(r.getnframes()))
