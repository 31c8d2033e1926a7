"""A live voice, decoded: the phone's PCM (16 kHz mono s16le) through one ffmpeg process into
the sink's format (48 kHz mono s16le for the speaker clusters), and the recording encoded
for the web afterwards.

Why raw PCM from the phone and not MediaRecorder's webm/Opus: no encoder look-ahead, no
container to probe (ffmpeg waits for seconds of webm before its first output unless told
not to, and then guesses), no per-browser format (iOS Safari's MediaRecorder makes MP4/AAC
that cannot be decoded chunk by chunk); an AudioWorklet gives 40 ms of samples at a time in
every current phone browser. It costs 256 kbit/s on the village wifi, nothing beside the
clusters' own 300-400 kbit/s each.

ffmpeg reads its raw input 1024 samples at a time (64 ms at 16 kHz) and flushes every
packet (``-flush_packets 1``): the decoder adds under 100 ms. A reader thread drains its
output at once (``on_pcm`` in ``live-decode`` thread), so ffmpeg never blocks on a pipe.

Threads: ``feed`` from one thread (the hub's live writer); ``live-decode`` reads ffmpeg's
output; ``close`` from any thread: it ends ffmpeg and joins the reader.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from audio.errors import AudioError

__all__ = ["PHONE_RATE", "LiveDecoder", "encode_recording"]

#: What the phone sends: 16 kHz mono s16le (speech; horns play 300 Hz - 7 kHz).
PHONE_RATE = 16000
#: Each read of ffmpeg's output: 20 ms (snapserver's own chunk).
READ_S = 0.02


class LiveDecoder:
    """One ffmpeg: ``feed`` the phone's PCM, get ``rate``/``channels`` PCM in ``on_pcm``."""

    def __init__(
        self,
        on_pcm: Callable[[bytes], None],
        *,
        rate: int,
        channels: int,
        on_end: Callable[[str | None], None] | None = None,
    ) -> None:
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg is None:
            raise AudioError("ffmpeg is not installed: apt install ffmpeg")
        argv = [
            ffmpeg, "-nostdin", "-hide_banner", "-v", "error",
            "-fflags", "nobuffer", "-probesize", "32", "-analyzeduration", "0",
            "-f", "s16le", "-ar", str(PHONE_RATE), "-ac", "1", "-i", "pipe:0",
            "-f", "s16le", "-acodec", "pcm_s16le", "-ar", str(rate), "-ac", str(channels),
            "-flush_packets", "1", "pipe:1",
        ]  # fmt: skip
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0
        )
        self._on_pcm, self._on_end = on_pcm, on_end
        self._chunk = max(2 * channels, int(rate * READ_S) * 2 * channels)
        self._closing = False
        self._reader = threading.Thread(target=self._read, name="live-decode", daemon=True)
        self._reader.start()

    def feed(self, pcm: bytes) -> None:
        """The phone's audio; AudioError if ffmpeg is gone."""
        stdin = self._proc.stdin
        assert stdin is not None
        try:
            stdin.write(pcm)
            stdin.flush()
        except (BrokenPipeError, ValueError, OSError) as exc:
            raise AudioError(f"the live decoder stopped: {exc}") from exc

    def _read(self) -> None:
        out = self._proc.stdout
        assert out is not None
        error = None
        try:
            # os.read: what is there now, up to a chunk (a buffered read would wait for
            # a full one).
            while data := os.read(out.fileno(), self._chunk):
                self._on_pcm(data)
        except (OSError, ValueError) as exc:
            error = f"reading the live decoder failed: {exc}"
        rc = self._proc.wait()
        if rc != 0 and not self._closing and error is None:
            err = b""
            if self._proc.stderr is not None:
                with contextlib.suppress(OSError, ValueError):
                    err = self._proc.stderr.read()
            error = f"ffmpeg exited with {rc}: {err.decode('utf-8', 'replace').strip()[-300:]}"
        if self._on_end is not None:
            self._on_end(error)

    def close(self) -> None:
        """End of input: ffmpeg flushes what it holds and exits; bounded."""
        self._closing = True
        if self._proc.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                self._proc.stdin.close()
        try:
            self._proc.wait(3)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(3)
        self._reader.join(3)
        for pipe in (self._proc.stdout, self._proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def encode_recording(src: Path, wav: Path, web: Path, *, pa_rate: int, web_args: list[str]) -> None:
    """The kept recording of a live broadcast: ``wav`` at the PA's rate (what a replay would
    play) and ``web`` for the pages (``web_args``: the renderer's web format), in one ffmpeg
    run. AudioError with ffmpeg's words if it fails."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise AudioError("ffmpeg is not installed: apt install ffmpeg")
    argv = [
        ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-y", "-i", f"file:{src}",
        "-ac", "1", "-ar", str(pa_rate), "-acodec", "pcm_s16le", f"file:{wav}",
        *web_args, f"file:{web}",
    ]  # fmt: skip
    try:
        done = subprocess.run(argv, capture_output=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AudioError(f"cannot encode the live recording: {exc}") from exc
    if done.returncode != 0:
        raise AudioError(
            f"cannot encode the live recording: {done.stderr.decode('utf-8', 'replace')[-300:]}"
        )
