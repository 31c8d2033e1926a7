"""Audio errors: what can go wrong from an upload or a text to the loudspeaker, with an HTTP status.

Each error also subclasses the builtin it resembles (as gpiozero's do), and carries the
``status`` the API answers with, so ``hub/api`` maps them without knowing each one.
"""

from __future__ import annotations


class AudioError(Exception):
    """Base of every error the audio package raises on purpose."""

    status: int = 500


class AudioTooLarge(AudioError, ValueError):
    """The uploaded file is bigger than the limit (checked before anything reads it)."""

    status = 413


class UnsupportedAudio(AudioError, ValueError):
    """Not an audio file, or a container this hub does not accept."""

    status = 415


class InvalidAudio(AudioError, ValueError):
    """Audio that is recognised but unusable: empty, too long, undecodable or silent."""

    status = 422


class InvalidSpec(AudioError, ValueError):
    """A render request out of range (repeats, gap, sample rate, text length...)."""

    status = 422


class TTSError(AudioError, RuntimeError):
    """The speech engine is missing, failed or timed out."""

    status = 500


class UnknownVoice(TTSError, LookupError):
    """The voice asked for is neither an alias (north/central/south) nor installed."""

    status = 422


class SinkError(AudioError, RuntimeError):
    """The loudspeaker output failed: no sound card, aplay missing, file not writable."""

    status = 503
