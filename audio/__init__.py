"""Audio: text-to-speech, rendering and sinks (imports nothing from hub).

The path of an announcement, in the order the modules run:

- ``normalize_vi``: Vietnamese text to speakable words (19h30, 50.000đ, UBND...);
- ``tts``: the speech engine (espeak-ng; Piper with a local model);
- ``decode``: an uploaded recording checked and decoded to mono WAV;
- ``chimes``: the rising/falling chime around an announcement;
- ``render``: assembly, loudness (-16 LUFS, -1 dBTP), PA WAV + web file, cache;
- ``sinks``: ALSA (aplay), file, null; what the playout plays through.

Every error raised on purpose is an ``errors.AudioError`` with an HTTP ``status``.
TTS, decoding and rendering block (subprocesses with timeouts): call them from a worker
thread, never the event loop. A sink's ``play`` returns at once; ``wait`` and ``stop`` block.
"""
