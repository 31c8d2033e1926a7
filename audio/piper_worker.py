"""Piper worker: one render of one text with one voice model, in its own short-lived process.

Run by ``audio.tts.Piper`` as ``python -m audio.piper_worker MODEL CONFIG OUT_WAV [RATE
[PAUSE_S]]``, with the text on stdin (never on the command line). ``RATE`` is a factor of
the model's normal speed (its ``length_scale`` is divided by it); ``PAUSE_S`` seconds of
silence are written after each sentence but the last (``audio/sentences.py``), on top of
the model's own, as espeak-ng's path does. A medium Piper model takes a few
hundred MB once onnxruntime has loaded it; in this process it is given back to the
system when the render ends, so the hub itself never grows by a model.

On success it writes the WAV (Piper's own rate, mono, 16-bit) and prints one JSON line
on stdout: the sample rate, the seconds of speech, the load and synthesis times and this
process's peak resident memory (for ``langso voice add`` and the benchmark). On failure
it exits non-zero with one line on stderr that says why.
"""

from __future__ import annotations

import json
import re
import resource
import sys
import time
import wave
from pathlib import Path

from audio.sentences import split_sentences

__all__ = ["main"]


def _peak_rss_kib() -> int:
    # Linux reports ru_maxrss in KiB.
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


#: The longest piece of text Piper is given at once (characters). Its memory grows with
#: the length of what it says at once (measured with the stand-in medium model: 145 MB
#: loaded, 260 MB for a 90-character piece, 450 MB for 220 characters), so a long
#: sentence is said clause by clause.
MAX_PIECE = 100
_SENTENCE_END = re.compile(r"(?<=[.!?;:…])\s+|\n+")
_CLAUSE_ENDS = (",", "–", "—")


def pieces(text: str, limit: int | None = None) -> list[str]:
    """The text in pieces of at most ``limit`` characters: whole sentences, else clauses,
    else words (a word longer than the limit is cut)."""
    limit = limit or MAX_PIECE
    out: list[str] = []
    for sentence in filter(None, (s.strip() for s in _SENTENCE_END.split(text))):
        if len(sentence) <= limit:
            out.append(sentence)
            continue
        current = ""
        for word in re.split(r"\s+", sentence):
            for chunk in (word[i : i + limit] for i in range(0, len(word), limit)):
                joined = f"{current} {chunk}" if current else chunk
                if len(joined) <= limit:
                    current = joined
                else:
                    out.append(current)
                    current = chunk
                if current.endswith(_CLAUSE_ENDS) and len(current) > limit // 2:
                    out.append(current)
                    current = ""
        if current:
            out.append(current)
    return out


def main(argv: list[str]) -> int:
    try:
        if not 3 <= len(argv) <= 5:
            raise ValueError("wrong number of arguments")
        rate = float(argv[3]) if len(argv) > 3 else 1.0
        pause_s = float(argv[4]) if len(argv) > 4 else 0.0
        if not (0.1 <= rate <= 10 and 0 <= pause_s <= 60):
            raise ValueError("RATE or PAUSE_S out of range")
    except ValueError as exc:
        print(
            f"usage: python -m audio.piper_worker MODEL CONFIG OUT_WAV [RATE [PAUSE_S]] ({exc})",
            file=sys.stderr,
        )
        return 2
    model, config, out_wav = (Path(a) for a in argv[:3])
    text = sys.stdin.buffer.read().decode("utf-8")
    started = time.perf_counter()
    try:
        from piper import PiperVoice, SynthesisConfig
    except ImportError as exc:
        print(
            f"piper-tts is not installed ({exc}): pip install 'langso-hub[voice]'", file=sys.stderr
        )
        return 3
    # Piper keeps downloaded helper data (some languages only) in the folder given; the
    # output's folder is the render's own temporary folder.
    try:
        voice = PiperVoice.load(model, config_path=config, download_dir=out_wav.parent)
        loaded = time.perf_counter()
        # length_scale is the duration of each phoneme: slower speech is a longer one.
        syn = SynthesisConfig(length_scale=voice.config.length_scale / rate)
        hz = voice.config.sample_rate
        sentences = split_sentences(text) if pause_s > 0 else [text]
        silence = b"\0\0" * round(pause_s * hz)
        with wave.open(str(out_wav), "wb") as wav:
            wav.setnchannels(1)  # what Piper's models produce: mono, 16-bit, their own rate
            wav.setsampwidth(2)
            wav.setframerate(hz)
            for i, sentence in enumerate(sentences):
                if i:
                    wav.writeframes(silence)
                for piece in pieces(sentence):
                    voice.synthesize_wav(piece, wav, syn, set_wav_format=False)
            frames = wav.getnframes()
    except Exception as exc:  # any failure of the model or the engine: one line for the log
        print(f"{type(exc).__name__}: {str(exc)[:400]}", file=sys.stderr)
        return 1
    done = time.perf_counter()
    result = {
        "sample_rate": hz,
        "seconds": round(frames / hz, 3) if hz else 0.0,
        "load_s": round(loaded - started, 3),
        "synth_s": round(done - loaded, 3),
        "peak_rss_kib": _peak_rss_kib(),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
