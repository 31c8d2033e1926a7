"""Broadcast stage, a live broadcast on air: the opening chime, the head's voice as it comes,
the closing chime, into the sink's stream (the speaker clusters, the local amplifier), and
the recording of what was said.

The playout starts it as it starts a rendered broadcast's playback (after the lead-in, the
amplifier and relays on, the clusters routed) and waits on it, stops it, reads it, through
the same :class:`audio.sinks.Playback` protocol. It ends by itself when the voice does (the
head pressed stop, the connection was lost, the time cap came): the closing chime, then
done. A stop from the playout (an emergency preempting it, the stop button) cuts it at once,
without the closing chime.

The cap and the silence check run on the monotonic clock: they measure audio that flows in
real time (as the sinks pace it), never the phone's idea of time.

Threads: ``live-on-air`` writes the stream and the recording; ``stop`` from any thread.
"""

from __future__ import annotations

import logging
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from audio.errors import AudioError, SinkError
from audio.sinks import PcmStream, Playback, Sink
from audio.sinks.null import PlaybackBase
from audio.sinks.timing import Clock

log = logging.getLogger(__name__)

__all__ = ["LivePlayback", "LiveSource", "VoiceSource"]

#: Each chime write: 20 ms, so that a stop lands within one.
CHUNK_S = 0.02


class LiveSource(Protocol):
    """A live broadcast's voice (hub.broadcast.live.LiveSession), as the playout
    plays it: instead of a WAV."""

    def play(self, sink: Sink) -> Playback:
        """Start on air through ``sink`` (after the lead-in); ends when the voice does."""
        ...

    def note(self) -> str:
        """What the as-run row says of it (its length, how it ended)."""
        ...

    def finished(self, status: str, detail: str | None) -> None:
        """The playout is done with it: logged with ``status`` (the phone is told)."""
        ...


class VoiceSource(Protocol):
    """What the playback needs of the live session (hub.broadcast.live.LiveSession)."""

    def on_air(self) -> None:
        """The opening chime is over: from now the voice goes out (older audio is dropped)."""
        ...

    def next_pcm(self, timeout: float) -> bytes | None:
        """Decoded voice, or None if none came within ``timeout``."""
        ...

    @property
    def over(self) -> bool:
        """The voice has ended (stop, lost, cap) and what was decoded has been taken."""
        ...

    def end(self, reason: str, detail: str | None = None) -> None: ...

    @property
    def silent_for(self) -> float:
        """Seconds since the phone last sent audio."""
        ...


class LivePlayback(PlaybackBase):
    def __init__(
        self,
        voice: VoiceSource,
        stream: PcmStream,
        *,
        rate: int,
        channels: int,
        opening: bytes,
        closing: bytes,
        max_s: float,
        idle_s: float,
        recording: Path,
        clock: Clock,
        on_state: Callable[[str], None],
    ) -> None:
        super().__init__(clock(), clock)
        self._voice, self._stream = voice, stream
        self._rate, self._channels = rate, channels
        self._opening, self._closing = opening, closing
        self._max_s, self._idle_s = max_s, idle_s
        self._recording_path = recording
        self._on_state = on_state
        #: Seconds of voice sent out (the recording's length).
        self.voice_s = 0.0
        threading.Thread(target=self._run, name="live-on-air", daemon=True).start()

    @property
    def bytes_per_s(self) -> int:
        return self._rate * 2 * self._channels

    def _run(self) -> None:
        error = None
        try:
            with _Recorder(self._recording_path, self._rate, self._channels) as rec:
                self._on_state("opening")
                if self._write_all(self._opening):
                    self._voice.on_air()
                    self._on_state("on_air")
                    self._voice_loop(rec)
                    if not self._stop_requested.is_set():
                        self._write_all(self._closing)
        except (SinkError, AudioError, OSError) as exc:
            error = f"live broadcast: {exc}"
            self._voice.end("error", str(exc))
        finally:
            try:
                self._stream.close()
            except (SinkError, OSError) as exc:
                error = error or f"live broadcast: {exc}"
        self._finish(error=error)

    def _write_all(self, pcm: bytes) -> bool:
        """Write a chime chunk by chunk; False if stopped before its end."""
        step = max(2 * self._channels, int(self._rate * CHUNK_S) * 2 * self._channels)
        for i in range(0, len(pcm), step):
            if self._stop_requested.is_set():
                return False
            self._stream.write(pcm[i : i + step])
        return not self._stop_requested.is_set()

    def _voice_loop(self, rec: _Recorder) -> None:
        t0 = time.monotonic()
        while not self._stop_requested.is_set():
            pcm = self._voice.next_pcm(0.1)
            if pcm:
                self._stream.write(pcm)
                rec.write(pcm)
                self.voice_s += len(pcm) / self.bytes_per_s
            elif self._voice.over:
                return
            if time.monotonic() - t0 >= self._max_s:
                self._voice.end("cap")
                return
            if self._voice.silent_for >= self._idle_s:
                self._voice.end("lost", f"no audio from the phone for {self._idle_s:g} s")
                return


class _Recorder:
    """The voice as it went out, to a WAV (encoded for the web when the broadcast is over)."""

    def __init__(self, path: Path, rate: int, channels: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._w = wave.open(str(path), "wb")  # noqa: SIM115 (closed in __exit__)
        self._w.setnchannels(channels)
        self._w.setsampwidth(2)
        self._w.setframerate(rate)

    def __enter__(self) -> _Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self._w.close()

    def write(self, pcm: bytes) -> None:
        self._w.writeframes(pcm)
