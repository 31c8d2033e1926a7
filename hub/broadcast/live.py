"""Broadcast stage, live from the phone: the head speaks into the page and the chosen zones
hear it, through the one playout (amplifier and relays, chimes, clusters, preemption).

The path of the voice: the page's AudioWorklet (16 kHz mono s16le, 40 ms a message) → the
WebSocket (:mod:`hub.api.live`) → :meth:`LiveSession.offer` → the ``live-in`` thread →
one ffmpeg (:class:`audio.live_decode.LiveDecoder`) → the decoded queue → the playout's
live job (:class:`hub.broadcast.live_playback.LivePlayback`) → the sink's stream (the
Snapcast feed, the local sink) and the recording.

A live broadcast is an announcement of category ``live`` created when it starts (so the
residents' history says "Phát trực tiếp"), played as a job of priority ``high`` that quiet
hours and the daily cap do not hold (the head is speaking now); an emergency preempts it
(the phone is told, and the job is not rebooked). One at a time: a second is refused
(:class:`hub.errors.Conflict`, 409). When it is over its recording (WAV at the PA's rate
and the web copy) becomes the announcement's audio: playable from the history, the
staff announcement page and, if published, the residents' page.

Threads: ``start``/``offer``/``end`` from the HTTP side (``offer`` on the asyncio loop:
it only queues); the playout thread calls ``play`` and ``finished``; ``live-in`` feeds
ffmpeg; ``live-decode`` queues its output; ``live-finish`` encodes the recording and
writes the announcement. ``on_message`` is called from any of them and must only hand over.
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audio.chimes import chime
from audio.errors import AudioError, SinkError
from audio.live_decode import PHONE_RATE, LiveDecoder
from audio.sinks import Playback, Sink, live_sink, stream_format
from hub.broadcast.live_playback import LivePlayback
from hub.broadcast.live_record import CATEGORY, LiveRecords
from hub.broadcast.models import Actor
from hub.broadcast.playout import Job, Playout
from hub.clock import Clock
from hub.errors import Conflict, Forbidden, Invalid
from hub.events import Dispatcher
from hub.settings import Settings
from hub.store import Store
from hub.store.announcements import AnnouncementTable

log = logging.getLogger(__name__)

__all__ = ["CATEGORY", "LiveBroadcasts", "LiveSession"]


#: Who may go live.
ROLES = ("head", "admin")
#: Why a live broadcast ended, as the page says it (hub/words/live.json ``live.end.*``).
REASONS = ("stopped", "lost", "cap", "preempted", "stopped_elsewhere", "error", "shutdown")
#: The phone's audio waiting for ffmpeg, beyond ``live.burst_s``: more is a stuck decoder.
INBOX_SPARE_S = 1.0
#: Decoded audio kept before the voice is on air (what is said during the chime is dropped).
BACKLOG_S = 0.2

#: A chime's longest (audio/chimes.py takes a file of at most 15 s).
CHIME_MAX_S = 15.0

Send = Callable[[dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class OnAir:
    """What ``GET /api/live`` says of the live broadcast going on (None: none)."""

    id: str
    by: str
    zones: tuple[str, ...]
    state: str
    since: str


class LiveSession:
    """One live broadcast, from the phone's first message to its recording."""

    def __init__(
        self,
        service: LiveBroadcasts,
        aid: str,
        actor: Actor,
        zones: Sequence[str],
        *,
        rate: int,
        channels: int,
        send: Send,
        opened_at: float | None = None,
    ) -> None:
        self.service, self.id, self.actor, self.zones = service, aid, actor, tuple(zones)
        self.rate, self.channels = rate, channels
        self._send = send
        self.state = "connecting"
        self.reason: str | None = None
        self.detail: str | None = None
        self.voice_s = 0.0
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._decoded: deque[bytes] = deque()
        self._decoded_bytes = 0
        self._on_air = False
        self._opened = False
        self._decoder_done = False
        self._last_audio = time.monotonic()
        self._received = 0
        #: When the phone could first send (the socket's accept): the rate is counted from it.
        self._t0 = opened_at if opened_at is not None else time.monotonic()
        self._inbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._queued = 0  # bytes in the inbox (the loop adds, live-in takes away)
        burst = service.settings.live.burst_s + INBOX_SPARE_S
        self._inbox_max = int(burst * 2 * PHONE_RATE)
        self._finished = threading.Event()
        self._playback: LivePlayback | None = None
        self.recording = service.live_dir / f"{aid}.voice.wav"
        self._decoder = LiveDecoder(self._decoded_pcm, rate=rate, channels=channels,
                                    on_end=self._decoder_ended)  # fmt: skip
        threading.Thread(target=self._feed, name="live-in", daemon=True).start()

    # -- the HTTP side ------------------------------------------------------------------------
    def offer(self, pcm: bytes) -> str | None:
        """The phone's audio (asyncio loop: only queued). Why it is refused, else None."""
        if self.reason is not None:
            return None
        limit = self.service.settings.live.max_message_bytes
        if not pcm or len(pcm) > limit or len(pcm) % 2:
            return f"an audio message must be 2 to {limit} bytes of 16-bit samples"
        now = time.monotonic()
        self._received += len(pcm)
        # The hub's clock, not the phone's: audio faster than real time is a flood.
        ahead = self._received / (2 * PHONE_RATE) - (now - self._t0)
        if ahead > self.service.settings.live.burst_s:
            return f"audio is coming {ahead:.1f} s faster than real time"
        self._last_audio = now
        if self._queued + len(pcm) > self._inbox_max:
            return "the hub cannot keep up with the audio"
        with self._lock:
            self._queued += len(pcm)
        self._inbox.put(pcm)
        return None

    def end(self, reason: str, detail: str | None = None) -> None:
        """The voice is over: the closing chime follows what was said (the first reason
        given is kept). Before it went on air, the job is taken off the queue instead."""
        with self._lock:
            if self.reason is not None:
                return
            self.reason, self.detail = reason, detail
            opened = self._opened
            self._ready.notify_all()
        self._inbox.put(None)  # the writer closes ffmpeg's input after what is queued
        if not opened:
            self.service.playout.cancel(self.id)

    # -- live-in / live-decode threads ------------------------------------------------------
    def _feed(self) -> None:
        while True:
            pcm = self._inbox.get()
            if pcm is None:
                break
            with self._lock:
                self._queued -= len(pcm)
            try:
                self._decoder.feed(pcm)
            except AudioError as e:
                self.end("error", str(e))
                break
        self._decoder.close()

    def _decoded_pcm(self, pcm: bytes) -> None:
        with self._lock:
            self._decoded.append(pcm)
            self._decoded_bytes += len(pcm)
            if not self._on_air:
                keep = int(BACKLOG_S * self.rate) * 2 * self.channels
                while self._decoded and self._decoded_bytes - len(self._decoded[0]) >= keep:
                    self._decoded_bytes -= len(self._decoded.popleft())
            self._ready.notify_all()

    def _decoder_ended(self, error: str | None) -> None:
        if error is not None:
            self.end("error", error)
        with self._lock:
            self._decoder_done = True
            self._ready.notify_all()

    # -- the playback (live-on-air) -----------------------------------------------------------
    def on_air(self) -> None:
        with self._lock:
            self._on_air = True
            self._decoded.clear()
            self._decoded_bytes = 0

    def next_pcm(self, timeout: float) -> bytes | None:
        with self._lock:
            if not self._decoded and not self._decoder_done:
                self._ready.wait(timeout)
            if not self._decoded:
                return None
            pcm = self._decoded.popleft()
            self._decoded_bytes -= len(pcm)
            return pcm

    @property
    def over(self) -> bool:
        with self._lock:
            return self.reason is not None and self._decoder_done and not self._decoded

    @property
    def silent_for(self) -> float:
        return time.monotonic() - self._last_audio

    def state_changed(self, state: str) -> None:
        self.state = state
        self.send({"type": "state", "state": state, "id": self.id})

    def send(self, message: dict[str, Any]) -> None:
        try:
            self._send(message)
        except Exception:
            log.exception("telling the phone of live %s failed", self.id)

    # -- the playout thread -------------------------------------------------------------------
    def play(self, sink: Sink) -> Playback:
        """Start on air (after the lead-in): the live job's playback."""
        with self._lock:
            self._opened = True
        live = live_sink(sink)
        if live is None:
            raise SinkError("this audio sink cannot play a live broadcast")
        stream = live.open_stream(
            announcement_id=self.id, zones=self.zones, rate=self.rate, channels=self.channels
        )
        s = self.service
        opening, closing = s.chimes(self.rate, self.channels)
        self._playback = LivePlayback(
            self,
            stream,
            rate=self.rate,
            channels=self.channels,
            opening=opening,
            closing=closing,
            max_s=s.settings.live.max_s,
            idle_s=s.settings.live.idle_s,
            recording=self.recording,
            clock=s.clock.now,
            on_state=self.state_changed,
        )
        return self._playback

    def note(self) -> str:
        """The as-run row's words: how long, and how it ended."""
        seconds = self._playback.voice_s if self._playback is not None else 0.0
        return f"live {seconds:.1f} s; ended: {self.reason or 'by the playout'}"

    def finished(self, status: str, detail: str | None) -> None:
        """The playout is done with it (played, cut, cancelled, failed): the rest in the
        ``live-finish`` thread, so that what follows on air is not held."""
        if self._finished.is_set():
            return
        self._finished.set()
        if self.reason is None:
            if status == "preempted":
                self.end("preempted", detail)
            elif detail and "shutdown" in detail:
                self.end("shutdown", detail)
            elif status == "cancelled":
                self.end("stopped_elsewhere", detail)
            else:
                self.end("error", detail)
        self.voice_s = self._playback.voice_s if self._playback is not None else 0.0
        self.service.release(self)
        threading.Thread(target=self._wrap_up, name="live-finish", daemon=True).start()

    def _wrap_up(self) -> None:
        self._inbox.put(None)
        recording = None
        try:
            recording = self.service.records.keep(self)
        except Exception:
            log.exception("keeping the recording of live %s failed", self.id)
        self.send(
            {
                "type": "ended",
                "id": self.id,
                "reason": self.reason,
                "detail": self.detail,
                "seconds": round(self.voice_s, 1),
                "recording": recording,
            }
        )


class LiveBroadcasts:
    """The service: who may go live, one at a time, and what is kept of each."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Clock,
        *,
        table: AnnouncementTable,
        playout: Playout,
        events: Dispatcher,
    ) -> None:
        self.settings, self.store, self.clock = settings, store, clock
        self.table, self.playout, self.events = table, playout, events
        self.live_dir = settings.data_dir / "live"
        self._lock = threading.Lock()
        self._current: LiveSession | None = None
        self._chimes: dict[tuple[int, int], tuple[bytes, bytes]] = {}
        self.records = LiveRecords(settings, store, clock, table=table, events=events)
        # Rendered now, in the background: going live does not wait for pydub.
        threading.Thread(
            target=self._warm, args=stream_format(playout.sink), name="live-chimes", daemon=True
        ).start()

    def _warm(self, rate: int, channels: int) -> None:
        try:
            self.chimes(rate, channels)
        except Exception:
            log.exception("the live broadcasts' chimes cannot be made (audio.chime)")

    @property
    def current(self) -> OnAir | None:
        s = self._current
        if s is None:
            return None
        return OnAir(s.id, s.actor.name, s.zones, s.state, self._since(s))

    def _since(self, s: LiveSession) -> str:
        row = self.table.row(s.id)
        return "" if row is None else str(row["start_local"])

    def start(
        self,
        actor: Actor,
        zones: Sequence[str],
        send: Send,
        *,
        title: str | None = None,
        published: bool = True,
        opened_at: float | None = None,
    ) -> LiveSession:
        """Go live: the announcement, the session, the job. Forbidden for other roles,
        Conflict while another live broadcast is on, Invalid for an unknown zone."""
        if not self.settings.live.enabled:
            raise Forbidden("live broadcasts are switched off (live.enabled)")
        if actor.role not in ROLES:
            raise Forbidden("only the village head (or an admin) may broadcast live")
        zones = self._check_zones(zones)
        title = (title or "").strip()[:200] or "Phát trực tiếp"
        rate, channels = stream_format(self.playout.sink)
        with self._lock:
            cur = self._current
            if cur is not None:
                raise Conflict(f"{cur.actor.name} is already broadcasting live: one at a time")
            aid = f"live-{secrets.token_hex(5)}"
            session = LiveSession(
                self, aid, actor, zones, rate=rate, channels=channels, send=send,
                opened_at=opened_at,
            )  # fmt: skip
            self._current = session
        try:
            self.records.begin(session, title, published)
        except Exception:
            self.release(session)
            session.end("error", "the announcement could not be written")
            raise
        cap = self.settings.live.max_s
        busy = self.playout.state.state == "playing"
        self.playout.submit(
            Job(
                aid,
                self.clock.now(),
                "high",
                session.recording,
                cap + 2 * CHIME_MAX_S + self.settings.live.idle_s,
                tuple(zones),
                title,
                live=session,
            )
        )
        session.state_changed("waiting" if busy else "connecting")
        return session

    def release(self, session: LiveSession) -> None:
        with self._lock:
            if self._current is session:
                self._current = None

    def stop_all(self) -> None:
        """The hub is stopping: the live broadcast (if any) ends."""
        s = self._current
        if s is not None:
            s.end("shutdown")

    def chimes(self, rate: int, channels: int) -> tuple[bytes, bytes]:
        """The opening and closing chimes as raw PCM (audio.chime; none if switched off)."""
        key = (rate, channels)
        if key not in self._chimes:
            c = self.settings.audio.chime
            source: bool | Path = {"generated": True, "none": False}.get(c, Path(c))
            if not self.settings.live.chimes:
                source = False
            pair = []
            for ascending in (True, False):
                seg = chime(source, rate, ascending=ascending)
                pcm = b"" if seg is None else seg.set_channels(channels).raw_data
                pair.append(bytes(pcm))
            self._chimes[key] = (pair[0], pair[1])
        return self._chimes[key]

    def _check_zones(self, zones: Sequence[str]) -> list[str]:
        known = set(self.settings.gpio.zones)
        if not zones or "all" in zones:
            return ["all"]
        bad = [z for z in zones if z not in known]
        if bad:
            raise Invalid(
                f"zones: unknown zone {bad[0]!r}; zones are all, {', '.join(sorted(known))}"
            )
        return sorted(set(zones))
