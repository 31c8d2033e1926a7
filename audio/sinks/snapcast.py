"""Snapcast sink: a broadcast into snapserver's one stream, which every speaker cluster plays
in step; optionally together with the hub's own sink (the cultural house's amplifier).

snapserver reads the stream from a ``tcp`` source in server mode
(``source = tcp://127.0.0.1:4953?name=langso&mode=server``): the hub connects for each
broadcast and writes raw PCM in the stream's sample format. A tcp source rather than a
pipe: connecting fails at once (and says so) when snapserver is down, where opening a FIFO
without a reader blocks or fails with ENXIO; no file permissions are shared between the
snapserver and langso users; and closing the connection ends the stream cleanly.

:class:`PcmFeed` is that connection, paced at real time (at most ``ahead_s`` ahead, so a
stop is heard within that plus snapserver's buffer). A live source (the head's phone)
writes its PCM through the same :meth:`SnapcastSink.open_feed`: one stream, one writer at
a time, which the playout's one broadcast at a time guarantees.

ffmpeg resamples the rendered WAV (22.05 kHz) to the stream's format on the way, chunk by
chunk: memory stays bounded whatever the length. Threads: one ``snapcast-sink`` thread per
broadcast writes and paces; ``stop()`` from any thread.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from audio.errors import SinkError
from audio.sinks.null import PlaybackBase, wav_seconds
from audio.sinks.timing import Clock, system_clock

if TYPE_CHECKING:
    from audio.sinks import Playback, Sink
    from audio.sinks.streams import PcmStream

__all__ = ["PcmFeed", "SnapcastPlayback", "SnapcastSink", "SnapcastStream"]

log = logging.getLogger(__name__)

#: Each write is this much audio (snapserver reads 20 ms chunks).
CHUNK_S = 0.02
#: How far the writer may run ahead of real time: what still plays after a stop.
AHEAD_S = 0.1
#: Connecting and each send: a snapserver that does not take data within this is down.
IO_TIMEOUT_S = 2.0


class PcmFeed:
    """One connection to snapserver's tcp source, written at real time (raw s16le PCM).

    ``write`` sends and then waits while more than ``ahead_s`` of audio is ahead of the
    wall clock; ``stopping`` (an Event) cuts that wait short. Not thread-safe: one writer.
    """

    def __init__(
        self,
        sock: socket.socket,
        bytes_per_s: int,
        *,
        ahead_s: float = AHEAD_S,
        stopping: threading.Event | None = None,
    ) -> None:
        self._sock = sock
        self.bytes_per_s = bytes_per_s
        self._ahead_s = ahead_s
        self._stopping = stopping or threading.Event()
        self._t0: float | None = None
        self.sent = 0

    @classmethod
    def connect(
        cls, host: str, port: int, bytes_per_s: int, *, stopping: threading.Event | None = None
    ) -> PcmFeed:
        try:
            sock = socket.create_connection((host, port), timeout=IO_TIMEOUT_S)
        except OSError as exc:
            raise SinkError(
                f"snapserver takes no audio on {host}:{port} ({exc}): is it running, with "
                f"source = tcp://{host}:{port}?name=...&mode=server in snapserver.conf?"
            ) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock, bytes_per_s, stopping=stopping)

    @property
    def seconds(self) -> float:
        """Audio written so far, in seconds."""
        return self.sent / self.bytes_per_s

    def write(self, pcm: bytes) -> None:
        """Send ``pcm`` (whole frames); OSError if snapserver went away."""
        if self._t0 is None:
            self._t0 = time.monotonic()
        self._sock.sendall(pcm)
        self.sent += len(pcm)
        ahead = self._t0 + self.seconds - time.monotonic() - self._ahead_s
        if ahead > 0:
            self._stopping.wait(ahead)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()


class SnapcastPlayback(PlaybackBase):
    """One broadcast written into the stream (and played by the local sink, if any)."""

    def __init__(
        self,
        wav: Path,
        feed: PcmFeed | None,
        *,
        local: Playback | None,
        rate: int,
        channels: int,
        buffer_s: float,
        clock: Clock,
        feed_error: str | None = None,
    ) -> None:
        super().__init__(clock(), clock)
        self._wav, self._feed, self._local = wav, feed, local
        self._rate, self._channels, self._buffer_s = rate, channels, buffer_s
        #: Why the clusters did not get (all of) it, even if the local sink played it.
        self.feed_error = feed_error
        self._proc: subprocess.Popen[bytes] | None = None
        threading.Thread(target=self._run, name="snapcast-sink", daemon=True).start()

    def _run(self) -> None:
        error = None
        if self._feed is not None:
            try:
                self._stream(self._feed)
                # The last sample leaves the clusters' speakers a buffer after it was sent.
                self._stop_requested.wait(self._buffer_s)
            except (OSError, SinkError) as exc:
                self.feed_error = f"the stream to the speaker clusters broke: {exc}"
                log.warning("%s", self.feed_error)
            finally:
                self._feed.close()
        if self._local is not None:
            while not self._local.wait(0.05):
                if self._stop_requested.is_set():
                    self._local.stop()
            error = self._local.error
        elif self.feed_error is not None:
            error = self.feed_error  # nobody heard it: the broadcast failed
        self._finish(error=error)

    def _stream(self, feed: PcmFeed) -> None:
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg is None:
            raise SinkError("ffmpeg is not installed: apt install ffmpeg")
        argv = [ffmpeg, "-nostdin", "-v", "error", "-i", str(self._wav), "-f", "s16le"]
        argv += ["-acodec", "pcm_s16le", "-ac", str(self._channels), "-ar", str(self._rate), "-"]
        chunk = int(self._rate * CHUNK_S) * 2 * self._channels
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self._proc = proc
        assert proc.stdout is not None and proc.stderr is not None
        try:
            while not self._stop_requested.is_set():
                data = proc.stdout.read(chunk)
                if not data:
                    break
                feed.write(data)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()
            err = proc.stderr.read().decode("utf-8", "replace").strip()
            proc.stderr.close()
            rc = proc.wait(5)
        if rc != 0 and not self._stop_requested.is_set():
            raise SinkError(f"ffmpeg could not decode {self._wav.name}: {err[-300:]}")

    def stop(self) -> None:
        if self._done.is_set():
            return
        self._stop_requested.set()
        if self._local is not None:
            self._local.stop()
        super().stop()


class SnapcastStream:
    """A live broadcast into the stream (and into the local sink's stream, if any): the
    speaker clusters keep playing if the local output fails, and the other way round."""

    def __init__(self, feed: PcmFeed | None, local: PcmStream | None, *, buffer_s: float) -> None:
        self._feed, self._local, self._buffer_s = feed, local, buffer_s
        #: Why the clusters did not get (all of) it.
        self.feed_error: str | None = None

    def write(self, pcm: bytes) -> None:
        if self._local is not None:
            self._local.write(pcm)  # paced: the feed's own pacing then never waits
        if self._feed is None:
            return
        try:
            self._feed.write(pcm)
        except OSError as exc:
            self.feed_error = f"the stream to the speaker clusters broke: {exc}"
            self._feed.close()
            self._feed = None
            if self._local is None:
                raise SinkError(self.feed_error) from exc
            log.warning("%s: the live broadcast goes on on the local sink", self.feed_error)

    def close(self) -> None:
        if self._feed is not None:
            # The last words leave the clusters' speakers a buffer after they were sent:
            # closing (and muting) earlier would cut them.
            time.sleep(self._buffer_s + AHEAD_S)
            self._feed.close()
            self._feed = None
        if self._local is not None:
            self._local.close()


class SnapcastSink:
    """Plays a WAV into snapserver's stream at ``host:port`` (its tcp source), resampled to
    ``rate``/``channels``; with ``local``, that sink plays it at the same time."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        rate: int = 48000,
        channels: int = 1,
        buffer_ms: int = 600,
        local: Sink | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.host, self.port = host, port
        self.rate, self.channels, self.buffer_s = rate, channels, buffer_ms / 1000
        self.local = local
        self._clock = clock

    @property
    def bytes_per_s(self) -> int:
        return self.rate * 2 * self.channels

    def open_feed(self, stopping: threading.Event | None = None) -> PcmFeed:
        """A connection to the stream for a live source: write s16le PCM at ``rate`` and
        ``channels``, close it at the end. SinkError if snapserver takes nothing."""
        return PcmFeed.connect(self.host, self.port, self.bytes_per_s, stopping=stopping)

    def play(self, wav: Path, *, announcement_id: str, zones: Sequence[str]) -> SnapcastPlayback:
        wav_seconds(wav)  # a missing or broken WAV is refused before anything starts
        feed: PcmFeed | None = None
        feed_error = None
        try:
            feed = self.open_feed()
        except SinkError as exc:
            if self.local is None:
                raise  # no cluster and no local amplifier would hear it
            feed_error = str(exc)
            log.warning("%s: broadcast %s plays on the local sink only", exc, announcement_id)
        local = None
        if self.local is not None:
            try:
                local = self.local.play(wav, announcement_id=announcement_id, zones=zones)
            except SinkError:
                if feed is not None:
                    feed.close()
                raise
        playback = SnapcastPlayback(
            wav,
            feed,
            local=local,
            rate=self.rate,
            channels=self.channels,
            buffer_s=self.buffer_s,
            clock=self._clock,
            feed_error=feed_error,
        )
        return playback

    @property
    def stream_format(self) -> tuple[int, int]:
        """A live source must be decoded to the stream's rate and channels."""
        return self.rate, self.channels

    def open_stream(
        self, *, announcement_id: str, zones: Sequence[str], rate: int, channels: int
    ) -> SnapcastStream:
        """A live broadcast (raw PCM at :attr:`stream_format` as it comes) into the stream
        and, beside it, the local sink's stream. SinkError if neither takes it."""
        if (rate, channels) != self.stream_format:
            raise SinkError(f"the clusters' stream takes {self.rate} Hz x {self.channels}")
        feed: PcmFeed | None = None
        try:
            feed = self.open_feed()
        except SinkError as exc:
            if self.local is None:
                raise
            log.warning("%s: live %s plays on the local sink only", exc, announcement_id)
        local: PcmStream | None = None
        opener = getattr(self.local, "open_stream", None)
        if opener is not None:
            try:
                local = opener(
                    announcement_id=announcement_id, zones=zones, rate=rate, channels=channels
                )
            except SinkError:
                if feed is not None:
                    feed.close()
                raise
        stream = SnapcastStream(feed, local, buffer_s=self.buffer_s)
        if feed is None:
            stream.feed_error = "snapserver took no audio"
        return stream
