"""File sink: "plays" a WAV by copying it in real time to a directory, with a JSON record.

For tests, demos and a hub without a sound card: each broadcast leaves
``<started_at>_<announcement_id>.wav`` (what went out, cut short if stopped) and a
sidecar ``.json`` ``{announcement_id, zones, started_at, ended_at, stopped}``.
The copy is paced at ``speed`` times real time (1 by default; 0 copies at once) by the
monotonic clock, so a stop mid-way truncates the file as it would cut the speakers.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import time
import wave
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from audio.errors import SinkError
from audio.sinks.null import PlaybackBase, wav_seconds
from audio.sinks.streams import FileStream
from audio.sinks.timing import Clock, system_clock, utc

__all__ = ["FilePlayback", "FileSink"]

_CHUNK_MS = 20  # stop() lands within one chunk of audio


def _iso(dt: datetime) -> str:
    return utc(dt).strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace(".000000Z", "Z")


def _safe_name(announcement_id: str) -> str:
    # An id is the hub's, but a file name must never climb out of out_dir.
    return re.sub(r"[^A-Za-z0-9._-]", "_", announcement_id)[:80].lstrip(".") or "announcement"


class FilePlayback(PlaybackBase):
    def __init__(
        self,
        src: Path,
        dst: Path,
        *,
        announcement_id: str,
        zones: Sequence[str],
        speed: float,
        started_at: datetime,
        clock: Clock,
    ) -> None:
        super().__init__(started_at, clock)
        self.wav_path = dst
        self.json_path = dst.with_suffix(".json")
        self._src, self._speed = src, speed
        self._announcement_id, self._zones = announcement_id, list(zones)
        threading.Thread(target=self._run, name="file-sink", daemon=True).start()

    def _run(self) -> None:
        partial = self.wav_path.with_name(self.wav_path.name + ".partial")
        try:
            played_s = self._copy(partial)
            os.replace(partial, self.wav_path)
        except (OSError, wave.Error, EOFError) as exc:
            partial.unlink(missing_ok=True)
            self._finish(error=f"file sink cannot write {self.wav_path}: {exc}")
            return
        # The record is written before waiters wake, so it is there when wait() returns.
        ended, stopped = utc(self._clock()), self._stop_requested.is_set()
        error = None
        try:
            self._write_record(played_s, ended, stopped)
        except OSError as exc:
            error = f"file sink cannot write {self.json_path}: {exc}"
        self._finish(error=error, ended_at=ended, stopped=stopped)

    def _copy(self, partial: Path) -> float:
        """Copy chunk by chunk, keeping pace; returns the seconds of audio written."""
        with wave.open(str(self._src), "rb") as r, wave.open(str(partial), "wb") as w:
            w.setparams(r.getparams())
            rate = r.getframerate()
            per_chunk = max(1, rate * _CHUNK_MS // 1000)
            t0, frames = time.monotonic(), 0
            while not self._stop_requested.is_set():
                data = r.readframes(per_chunk)
                if not data:
                    break
                w.writeframes(data)
                frames += len(data) // (r.getsampwidth() * r.getnchannels())
                if self._speed > 0:
                    # Wait on the stop event, not sleep: stop() takes effect at once.
                    due = t0 + frames / rate / self._speed - time.monotonic()
                    if due > 0 and self._stop_requested.wait(due):
                        break
        return frames / rate

    def _write_record(self, played_s: float, ended: datetime, stopped: bool) -> None:
        record = {
            "announcement_id": self._announcement_id,
            "zones": self._zones,
            "started_at": _iso(self.started_at),
            "ended_at": _iso(ended),
            "stopped": stopped,
            "played_s": round(played_s, 3),
            "wav": self.wav_path.name,
        }
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".json.tmp", dir=self.json_path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f, ensure_ascii=False, indent=1)
        os.replace(tmp, self.json_path)


class FileSink:
    """Writes each broadcast to ``out_dir``, paced at ``speed`` x real time (0 = at once)."""

    def __init__(
        self, out_dir: Path | str, *, speed: float = 1.0, clock: Clock = system_clock
    ) -> None:
        if speed < 0:
            raise SinkError(f"speed {speed}: use 1 for real time, 0 for instantaneous")
        self.out_dir = Path(out_dir)
        self._speed, self._clock = speed, clock

    def play(self, wav: Path, *, announcement_id: str, zones: Sequence[str]) -> FilePlayback:
        wav_seconds(wav)  # refuse a missing or broken WAV now, not in the thread
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError(f"file sink cannot create {self.out_dir}: {exc}") from exc
        started = utc(self._clock())
        stem = f"{_iso(started).replace(':', '-')}_{_safe_name(announcement_id)}"
        return FilePlayback(
            wav,
            self.out_dir / f"{stem}.wav",
            announcement_id=announcement_id,
            zones=zones,
            speed=self._speed,
            started_at=started,
            clock=self._clock,
        )

    def open_stream(
        self, *, announcement_id: str, zones: Sequence[str], rate: int, channels: int
    ) -> FileStream:
        """A live broadcast (raw PCM as it comes) into the same directory."""
        stem = f"{_iso(utc(self._clock())).replace(':', '-')}_{_safe_name(announcement_id)}"
        return FileStream(
            self.out_dir,
            announcement_id=announcement_id,
            zones=zones,
            rate=rate,
            channels=channels,
            clock=self._clock,
            stem=stem,
        )
