"""Sinks for a live source: raw PCM written as it comes (the head's voice from a phone),
where a rendered broadcast is a WAV played from the start.

Each sink's ``open_stream(announcement_id=..., zones=..., rate=..., channels=...)`` returns a
:class:`PcmStream`: ``write`` s16le PCM (whole frames) in the given format, ``close`` at the
end. Writes are paced at real time (at most ``AHEAD_S`` ahead of the wall clock since the
first write), so that a burst (the opening chime, written at once) never piles up in a
pipe or a socket buffer ahead of the voice that follows: what is ahead is latency.

- :class:`FileStream` (the file sink): ``<started_at>_<id>.wav`` and its ``.json`` record,
  as the file sink writes a broadcast (tests read it back).
- :class:`AlsaStream` (the ALSA sink): ``aplay -t raw`` from a pipe, with a 200 ms buffer
  (aplay's default of 500 ms is latency a live voice does not need).
- :class:`NullStream`: takes the audio, plays nothing.

Threads: one writer (the live broadcast's thread); ``close`` from that thread.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import wave
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

from audio.errors import SinkError
from audio.sinks.timing import Clock, utc

__all__ = ["AHEAD_S", "AlsaStream", "FileStream", "NullStream", "Pacer", "PcmStream"]

#: How far a stream's writer may run ahead of real time (what is buffered is latency).
AHEAD_S = 0.1
#: aplay's buffer for a live stream, in microseconds (its default is 500 ms).
APLAY_BUFFER_US = 200_000


class PcmStream(Protocol):
    """Raw s16le PCM to an output, written as it comes."""

    def write(self, pcm: bytes) -> None:
        """Send ``pcm`` (whole frames); SinkError if the output is gone."""
        ...

    def close(self) -> None:
        """The end: what was written plays out; nothing is left running."""
        ...


class Pacer:
    """Keeps a writer at most ``ahead_s`` ahead of real time; ``stopping`` cuts a wait."""

    def __init__(
        self, bytes_per_s: int, *, ahead_s: float = AHEAD_S, stopping: threading.Event | None = None
    ) -> None:
        self.bytes_per_s, self._ahead_s = bytes_per_s, ahead_s
        self._stopping = stopping or threading.Event()
        self._t0: float | None = None
        self.sent = 0

    def wrote(self, n: int) -> None:
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        self.sent += n
        due = self._t0 + self.sent / self.bytes_per_s
        if due < now - 1.0:
            # The source fell behind (a gap in the phone's audio): start the clock again
            # from now, or the next burst would be let through unpaced.
            self._t0, self.sent = now - n / self.bytes_per_s, n
            return
        ahead = due - now - self._ahead_s
        if ahead > 0:
            self._stopping.wait(ahead)


def _iso(dt: datetime) -> str:
    return utc(dt).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class NullStream:
    """Plays nothing (a hub without speakers); paced like the others."""

    def __init__(self, rate: int, channels: int) -> None:
        self._pacer = Pacer(rate * 2 * channels)

    def write(self, pcm: bytes) -> None:
        self._pacer.wrote(len(pcm))

    def close(self) -> None:
        """Nothing to release."""


class FileStream:
    """A live broadcast into ``out_dir`` as the file sink writes a broadcast: the WAV (kept
    ``.partial`` until closed) and its JSON record."""

    def __init__(
        self,
        out_dir: Path,
        *,
        announcement_id: str,
        zones: Sequence[str],
        rate: int,
        channels: int,
        clock: Clock,
        stem: str,
    ) -> None:
        self._clock = clock
        self.started_at = utc(clock())
        self.wav_path = out_dir / f"{stem}.wav"
        self.json_path = self.wav_path.with_suffix(".json")
        self._partial = self.wav_path.with_name(self.wav_path.name + ".partial")
        self._aid, self._zones = announcement_id, list(zones)
        self._rate, self._channels = rate, channels
        self._pacer = Pacer(rate * 2 * channels)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            self._w = wave.open(str(self._partial), "wb")  # noqa: SIM115 (closed in close)
        except OSError as exc:
            raise SinkError(f"file sink cannot write {self.wav_path}: {exc}") from exc
        self._w.setnchannels(channels)
        self._w.setsampwidth(2)
        self._w.setframerate(rate)
        self._frames = 0
        self._closed = False

    def write(self, pcm: bytes) -> None:
        try:
            self._w.writeframes(pcm)
        except OSError as exc:
            raise SinkError(f"file sink cannot write {self.wav_path}: {exc}") from exc
        self._frames += len(pcm) // (2 * self._channels)
        self._pacer.wrote(len(pcm))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        ended = utc(self._clock())
        try:
            self._w.close()
            os.replace(self._partial, self.wav_path)
            record = {
                "announcement_id": self._aid,
                "zones": self._zones,
                "started_at": _iso(self.started_at),
                "ended_at": _iso(ended),
                "stopped": False,
                "played_s": round(self._frames / self._rate, 3),
                "wav": self.wav_path.name,
                "live": True,
            }
            fd, tmp = tempfile.mkstemp(prefix=".", suffix=".json.tmp", dir=self.json_path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(record, f, ensure_ascii=False, indent=1)
            os.replace(tmp, self.json_path)
        except OSError as exc:
            raise SinkError(f"file sink cannot finish {self.wav_path}: {exc}") from exc


class AlsaStream:
    """``aplay -t raw`` reading the live PCM from a pipe."""

    def __init__(self, device: str, aplay: str, *, rate: int, channels: int) -> None:
        binary = shutil.which(aplay)
        if binary is None:
            raise SinkError(f"{aplay} is not installed: apt install alsa-utils")
        argv = [
            binary, "-q", "-D", device, "-t", "raw", "-f", "S16_LE", "-r", str(rate),
            "-c", str(channels), f"--buffer-time={APLAY_BUFFER_US}", "-",
        ]  # fmt: skip
        try:
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        except OSError as exc:
            raise SinkError(f"cannot start {aplay}: {exc}") from exc
        self._device = device
        self._pacer = Pacer(rate * 2 * channels)

    def write(self, pcm: bytes) -> None:
        stdin = self._proc.stdin
        assert stdin is not None
        try:
            stdin.write(pcm)
            stdin.flush()
        except (BrokenPipeError, ValueError, OSError) as exc:
            err = self._stderr()
            raise SinkError(f"aplay on {self._device!r} stopped: {err or exc}") from exc
        self._pacer.wrote(len(pcm))

    def _stderr(self) -> str:
        if self._proc.poll() is None or self._proc.stderr is None:
            return ""
        return self._proc.stderr.read().decode("utf-8", "replace").strip()[-300:]

    def close(self) -> None:
        if self._proc.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                self._proc.stdin.close()
        try:
            # What is in aplay's 200 ms buffer plays out, then it exits.
            self._proc.wait(2)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(2)
        if self._proc.stderr is not None:
            self._proc.stderr.close()
