"""Sinks: where a rendered WAV goes at the scheduled second (ALSA, a file, nowhere, or
snapserver's stream to the remote speaker clusters, with one of the others beside it).

The playout switches the amplifier and the zone relays (GPIO) and then calls
``sink.play(...)``; ``play`` returns at once with a ``Playback`` that the playout waits
on (from a worker thread), stops on preemption or on the stop button, and reads for the
broadcast log: ``started_at``, ``ended_at``, ``stopped``, ``error``. Every sink takes
``clock: Callable[[], datetime]`` so that tests and benchmarks decide what time it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from audio.errors import SinkError
from audio.sinks.alsa import AlsaSink
from audio.sinks.file import FileSink
from audio.sinks.null import NullSink
from audio.sinks.snapcast import PcmFeed, SnapcastSink
from audio.sinks.streams import PcmStream

__all__ = [
    "LIVE_FORMAT",
    "AlsaSink",
    "FileSink",
    "LiveSink",
    "NullSink",
    "PcmFeed",
    "PcmStream",
    "Playback",
    "Sink",
    "SnapcastSink",
    "live_sink",
    "make_sink",
    "stream_format",
]

#: A live source's format for a sink that takes any: 48 kHz mono s16le.
LIVE_FORMAT = (48000, 1)


class Playback(Protocol):
    """One announcement being played. Safe to use from any thread."""

    @property
    def started_at(self) -> datetime:
        """UTC time of the first sample (read from the sink's clock)."""
        ...

    @property
    def ended_at(self) -> datetime | None:
        """UTC time playing ended (finished, stopped or failed); None while playing."""
        ...

    @property
    def done(self) -> bool: ...

    @property
    def stopped(self) -> bool:
        """True when ``stop()`` cut it short."""
        ...

    @property
    def error(self) -> str | None:
        """Why it failed (e.g. aplay's message), or None."""
        ...

    def wait(self, timeout: float | None = None) -> bool:
        """Block until done or ``timeout`` seconds; True when done."""
        ...

    def stop(self) -> None:
        """Stop now; returns once the output has stopped (within 200 ms)."""
        ...

    def raise_for_error(self) -> None:
        """Raise SinkError if playing failed."""
        ...


class Sink(Protocol):
    def play(self, wav: Path, *, announcement_id: str, zones: Sequence[str]) -> Playback:
        """Start playing ``wav``; returns at once. SinkError if it cannot even start."""
        ...


class LiveSink(Protocol):
    """A sink that also plays a live source (every sink here is one)."""

    def open_stream(
        self, *, announcement_id: str, zones: Sequence[str], rate: int, channels: int
    ) -> PcmStream:
        """Start taking raw s16le PCM in that format; SinkError if it cannot."""
        ...


def live_sink(sink: Sink) -> LiveSink | None:
    """``sink`` as a sink for a live source, or None if it plays only files."""
    return sink if callable(getattr(sink, "open_stream", None)) else None  # type: ignore[return-value]


def stream_format(sink: Sink) -> tuple[int, int]:
    """The (rate, channels) a live source must be decoded to for ``sink``."""
    fmt = getattr(sink, "stream_format", None)
    return fmt if isinstance(fmt, tuple) else LIVE_FORMAT


def make_sink(kind: str, **opts: Any) -> Sink:
    """``alsa`` (the PA), ``file`` (tests, demos: WAV + JSON per broadcast), ``null``, or
    ``snapcast`` (``host``, ``port``, ``rate``, ``channels``, ``buffer_ms``, and ``local``:
    one of the others, built first, that plays beside the clusters)."""
    if kind == "alsa":
        return AlsaSink(**opts)
    if kind == "file":
        return FileSink(**opts)
    if kind == "null":
        return NullSink(**opts)
    if kind == "snapcast":
        return SnapcastSink(**opts)
    raise SinkError(f"unknown audio sink {kind!r}: set audio.sink to alsa, file or null")
