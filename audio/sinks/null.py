"""Null sink: plays nothing, for as long as the WAV lasts (benchmarks, a hub without speakers).

Also home of what every sink's playback shares: the done/stop events, the timestamps
from the injected clock, the error.
"""

from __future__ import annotations

import threading
import wave
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from audio.errors import SinkError
from audio.sinks.streams import NullStream
from audio.sinks.timing import Clock, system_clock, utc

__all__ = ["NullPlayback", "NullSink", "PlaybackBase", "wav_seconds"]

# stop() returns once the playback thread has finished; this only bounds a wedged one.
_STOP_JOIN_S = 1.0


def wav_seconds(wav: Path) -> float:
    """The WAV's duration, or SinkError saying why it cannot be played."""
    try:
        with wave.open(str(wav), "rb") as w:
            return w.getnframes() / float(w.getframerate())
    except FileNotFoundError as exc:
        raise SinkError(f"nothing to play: {wav} does not exist (render it again)") from exc
    except (OSError, wave.Error, EOFError, ZeroDivisionError) as exc:
        raise SinkError(f"{wav} is not a playable PCM WAV: {exc}") from exc


class PlaybackBase:
    """State of one playback; a worker thread (or a process watcher) calls ``_finish``."""

    def __init__(self, started_at: datetime, clock: Clock) -> None:
        self._clock = clock
        self._started_at = utc(started_at)
        self._ended_at: datetime | None = None
        self._error: str | None = None
        self._stopped = False
        self._stop_requested = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()

    @property
    def started_at(self) -> datetime:
        return self._started_at

    @property
    def ended_at(self) -> datetime | None:
        with self._lock:
            return self._ended_at

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def stopped(self) -> bool:
        with self._lock:
            return self._stopped

    @property
    def error(self) -> str | None:
        with self._lock:
            return self._error

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def raise_for_error(self) -> None:
        error = self.error
        if error is not None:
            raise SinkError(error)

    def stop(self) -> None:
        if self._done.is_set():
            return
        self._stop_requested.set()
        self._done.wait(_STOP_JOIN_S)

    def _finish(
        self,
        *,
        error: str | None = None,
        ended_at: datetime | None = None,
        stopped: bool | None = None,
    ) -> None:
        """Record the end (now, unless given) and wake every waiter."""
        ended = utc(ended_at if ended_at is not None else self._clock())
        if stopped is None:
            stopped = self._stop_requested.is_set()
        with self._lock:
            self._ended_at = ended
            self._error = error
            self._stopped = stopped and error is None
        self._done.set()


class NullPlayback(PlaybackBase):
    def __init__(self, seconds: float, speed: float, started_at: datetime, clock: Clock) -> None:
        super().__init__(started_at, clock)
        self._wall_s = seconds / speed if speed > 0 else 0.0
        threading.Thread(target=self._run, name="null-sink", daemon=True).start()

    def _run(self) -> None:
        # Waiting on the stop event, not sleeping: stop() takes effect at once.
        self._stop_requested.wait(self._wall_s)
        self._finish()


class NullSink:
    """Takes as long as the WAV (divided by ``speed``; 0 = at once) and outputs nothing."""

    def __init__(self, *, speed: float = 1.0, clock: Clock = system_clock) -> None:
        if speed < 0:
            raise SinkError(f"speed {speed}: use 1 for real time, 0 for instantaneous")
        self._speed, self._clock = speed, clock

    def play(self, wav: Path, *, announcement_id: str, zones: Sequence[str]) -> NullPlayback:
        seconds = wav_seconds(wav)
        return NullPlayback(seconds, self._speed, self._clock(), self._clock)

    def open_stream(
        self, *, announcement_id: str, zones: Sequence[str], rate: int, channels: int
    ) -> NullStream:
        """A live broadcast that plays nowhere."""

        return NullStream(rate, channels)
