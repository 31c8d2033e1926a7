"""ALSA sink: the rendered WAV to the PA amplifier through ``aplay`` (alsa-utils).

One aplay process per broadcast, so a wedged driver cannot take the hub with it and
stopping is a signal. Zones are not ALSA's business: the playout switches the zone
relays (GPIO) before calling ``play``.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from audio.errors import SinkError
from audio.sinks.null import PlaybackBase, wav_seconds
from audio.sinks.streams import AlsaStream
from audio.sinks.timing import Clock, system_clock

__all__ = ["AlsaPlayback", "AlsaSink"]

# SIGTERM first, so aplay drops the PCM cleanly (dmix, USB DACs). aplay's handler uses
# SA_RESTART, so an aplay blocked in a read or write (not in poll) ignores it: SIGKILL
# after this grace keeps stop() under 200 ms in every case.
_TERM_GRACE_S = 0.08


class AlsaPlayback(PlaybackBase):
    def __init__(
        self, proc: subprocess.Popen[bytes], device: str, started_at: datetime, clock: Clock
    ) -> None:
        super().__init__(started_at, clock)
        self._proc, self._device = proc, device
        # Watcher thread: drains aplay's stderr (so it can never block on a full pipe),
        # then reaps it and records the outcome.
        threading.Thread(target=self._watch, name="alsa-sink", daemon=True).start()

    def _watch(self) -> None:
        assert self._proc.stderr is not None
        stderr = self._proc.stderr.read()
        self._proc.stderr.close()
        rc = self._proc.wait()
        if rc == 0 or self._stop_requested.is_set():
            self._finish()
            return
        self._finish(error=self._explain(rc, stderr.decode("utf-8", "replace")))

    def _explain(self, rc: int, stderr: str) -> str:
        lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
        detail = " | ".join(lines[-3:]) if lines else "no message"
        hint = ""
        if "audio open error" in stderr or "cannot find card" in stderr:
            hint = f" (no sound card for ALSA device {self._device!r}: check `aplay -l`)"
        return f"aplay exited with {rc}{hint}: {detail}"

    def stop(self) -> None:
        if self._done.is_set():
            return
        self._stop_requested.set()
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(_TERM_GRACE_S)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        super().stop()  # waits for the watcher to record the end


class AlsaSink:
    """Plays through ``aplay -q -D <device>``; ``device`` as in ``aplay -L`` (e.g. ``hw:1,0``)."""

    def __init__(
        self, device: str = "default", aplay: str = "aplay", *, clock: Clock = system_clock
    ) -> None:
        self.device, self.aplay = device, aplay
        self._clock = clock

    def play(self, wav: Path, *, announcement_id: str, zones: Sequence[str]) -> AlsaPlayback:
        wav_seconds(wav)  # refuse a missing or broken WAV before touching the amplifier
        binary = shutil.which(self.aplay)
        if binary is None:
            raise SinkError(f"{self.aplay} is not installed: apt install alsa-utils")
        argv = [binary, "-q", "-D", self.device, "--", str(wav)]
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        except OSError as exc:
            raise SinkError(f"cannot start {self.aplay}: {exc}") from exc
        # aplay opens the device and writes the first period within milliseconds.
        return AlsaPlayback(proc, self.device, self._clock(), self._clock)

    def open_stream(
        self, *, announcement_id: str, zones: Sequence[str], rate: int, channels: int
    ) -> AlsaStream:
        """A live broadcast: ``aplay -t raw`` from a pipe, as the PCM comes."""
        return AlsaStream(self.device, self.aplay, rate=rate, channels=channels)
