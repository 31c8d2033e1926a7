"""Vietnamese text normaliser: the entry point ``audio.render`` calls before any TTS engine.

The rules live in the package :mod:`audio.normalize` (one module per topic); this
module keeps the historical import path ``audio.normalize_vi.normalize``.
"""

from __future__ import annotations

from audio.normalize import normalize, read_digits, read_number

__all__ = ["normalize", "read_digits", "read_number"]
