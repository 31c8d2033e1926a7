"""Broadcast stage, ahead of time: an announcement's audio rendered when it is saved.

So that at the scheduled second the playout only switches the amplifier and starts
the sink. Renders run in the caller's thread (an API worker, the ``announce-cmd``
worker, the ``prerender`` thread), one at a time.

The render cache (``audio/cache.py``) stays within ``audio.render_cache_mb``: after each
render the least recently used audio nothing needs goes first; emergency audio never
goes; what the caller (the announcements service) says a future occurrence needs goes
last. Emergency texts pre-rendered ahead count as emergency audio, so their pass stops
once emergencies hold half the budget.

The village's own words (``audio/lexicon.py``, kept by :mod:`hub.services.lexicon`) are
applied to a text here, before ``audio.render`` normalises it: the text the render cache
keys on is the lexicon-applied one, so an edited entry makes a new render.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from audio.cache import MIB, Keep, RenderCache
from audio.errors import (
    AudioTooLarge,
    InvalidAudio,
    InvalidSpec,
    UnknownVoice,
    UnsupportedAudio,
)
from audio.lexicon import EMPTY, Lexicon
from audio.render import Rendered, RenderSpec, render
from audio.tts import TTSEngine
from hub.broadcast.models import AnnouncementError
from hub.errors import TooLarge, Unsupported
from hub.settings import Settings

log = logging.getLogger(__name__)

#: Media types of the audio the hub serves (rendered announcements, recordings).
AUDIO_TYPES = {".ogg": "audio/ogg", ".opus": "audio/ogg", ".mp3": "audio/mpeg", ".wav": "audio/wav"}


@contextmanager
def audio_refusals() -> Iterator[None]:
    """The audio package's refusals of what it was given, as the hub's domain errors.

    Its failures (no speech engine, a broken sink) are the hub's, not the request's:
    they propagate as they are."""
    try:
        yield
    except AudioTooLarge as e:
        raise TooLarge(str(e)) from e
    except UnsupportedAudio as e:
        raise Unsupported(str(e)) from e
    except (InvalidAudio, InvalidSpec, UnknownVoice) as e:
        raise AnnouncementError(str(e)) from e


class Renderer:
    """Text or a recording -> the normalised WAV (and web copy) the playout plays."""

    def __init__(
        self,
        settings: Settings,
        engine_factory: Callable[[], TTSEngine],
        *,
        lexicon: Callable[[], Lexicon] | None = None,
    ) -> None:
        self.settings = settings
        self._engine_factory = engine_factory
        #: The village's own words, read at every render (cheap: compiled once per change).
        self.lexicon_source: Callable[[], Lexicon] = lexicon or (lambda: EMPTY)
        self._last_lexicon = EMPTY
        self._engine: TTSEngine | None = None
        self.cache_dir = settings.data_dir / "render"
        #: Shared with the retention sweep (the same folder is the same object).
        self.cache = RenderCache.at(self.cache_dir)
        self.cache.budget_bytes = round(settings.audio.render_cache_mb * MIB)
        #: One render at a time; retention takes it too before it prunes the cache.
        self.render_lock = threading.Lock()
        self._closed = threading.Event()

    @property
    def engine(self) -> TTSEngine:
        if self._engine is None:
            self._engine = self._engine_factory()
        return self._engine

    def close(self) -> None:
        """Stop a pre-render in progress after the item it is on (the hub is stopping)."""
        self._closed.set()

    @property
    def closed(self) -> bool:
        """The hub is stopping: passes over many renders end after the one they are on."""
        return self._closed.is_set()

    def _chime(self) -> bool | Path:
        c = self.settings.audio.chime
        return {"generated": True, "none": False}.get(c, Path(c))

    def spec(
        self,
        *,
        text: str | None,
        source_wav: Path | None,
        voice: str | None,
        priority: str,
        repeat: int,
        rate: float | None = None,
        sentence_pause_s: float | None = None,
    ) -> RenderSpec:
        """What to render for an announcement: ``rate`` (its own, a factor of its voice's
        ``audio.rates``) and ``sentence_pause_s`` None follow the settings."""
        a = self.settings.audio
        emergency = priority == "emergency"
        voice = voice or a.voice
        pause = a.sentence_pause_s if sentence_pause_s is None else sentence_pause_s
        return RenderSpec(
            text=text,
            source_wav=source_wav,
            voice=voice,
            rate=round(a.rates.get(voice, 1.0) * (rate or 1.0), 3),
            sentence_pause_s=pause,
            sample_rate=a.sample_rate,
            target_lufs=a.emergency_lufs if emergency else a.target_lufs,
            true_peak_db=a.true_peak_db,
            chime_before=self._chime(),
            chime_after=self._chime(),
            repeats=max(repeat, self.settings.announcements.emergency_repeats)
            if emergency
            else repeat,
            gap_s=a.repeat_gap_s,
        )

    def lexicon(self) -> Lexicon:
        """The lexicon now; the last one read when it cannot be read (a storage that
        refuses reads must not keep an emergency off the loudspeakers)."""
        try:
            self._last_lexicon = self.lexicon_source()
        except Exception:
            log.exception("the lexicon cannot be read: the last one read is used")
        return self._last_lexicon

    def spoken(self, text: str, lexicon: Lexicon | None = None) -> str:
        """``text`` with the village's own words said their way (``lexicon``: instead of
        the current one, e.g. with an entry being typed)."""
        return (lexicon if lexicon is not None else self.lexicon()).apply(text)

    def render(
        self,
        spec: RenderSpec,
        *,
        emergency: bool = False,
        keep: Keep | None = None,
        lexicon: Lexicon | None = None,
    ) -> Rendered:
        """Render (or find) ``spec``, its text said with the lexicon (``lexicon``: instead
        of the current one), then evict to the budget, sparing what ``keep`` names and
        what was just rendered. ``emergency``: the audio is never evicted."""
        if spec.text is not None:
            with audio_refusals():  # a lexicon-lengthened text past the limit: a 422
                spec = dataclasses.replace(spec, text=self.spoken(spec.text, lexicon))
        # One render at a time: two espeak-ng + ffmpeg pipelines at once would starve the
        # ingest writer on a 2-core Pi.
        with self.render_lock, audio_refusals():
            r = render(spec, self.engine if spec.text else None, self.cache, emergency=emergency)
            self.cache.trim((keep or Keep()).with_pinned(r.key))
            return r

    def prerender(self, items: list[dict[str, Any]], keep: Keep | None = None) -> int:
        """Render announcements a rule may make, ahead (the render cache keeps them): the
        most urgent first, until emergency audio holds half the cache's budget."""
        done = 0
        for item in items:
            if self._closed.is_set():
                break
            budget = self.cache.budget_bytes
            if budget is not None and self.cache.pinned_size() >= budget // 2:
                log.warning(
                    "pre-rendering stopped after %d: emergency audio holds half of "
                    "audio.render_cache_mb; the rest renders when needed",
                    done,
                )
                break
            try:
                self.render(
                    self.spec(
                        text=item["text"],
                        source_wav=None,
                        voice=None,
                        priority=item["priority"],
                        repeat=item["repeat"],
                    ),
                    emergency=item["priority"] == "emergency",
                    keep=keep,
                )
                done += 1
            except Exception:
                log.exception("pre-rendering %r failed", item["text"][:60])
        return done

    def preview(
        self,
        text: str,
        voice: str | None,
        keep: Keep | None = None,
        *,
        lexicon: Lexicon | None = None,
        repeat: int = 1,
        rate: float | None = None,
    ) -> Rendered:
        """TTS preview for the compose page and the lexicon's listen button: the text as
        it will sound, ``repeat`` times at ``rate`` (``lexicon``: instead of the current one)."""
        return self.render(
            self.spec(
                text=text,
                source_wav=None,
                voice=voice,
                priority="normal",
                repeat=repeat,
                rate=rate,
            ),
            keep=keep,
            lexicon=lexicon,
        )
