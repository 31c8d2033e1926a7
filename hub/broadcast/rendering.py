"""Broadcast stage, ahead of time: an announcement's audio rendered when it is saved.

So that at the scheduled second the playout only switches the amplifier and starts
the sink. Renders run in the caller's thread (an API worker, the ``announce-cmd``
worker, the ``prerender`` thread), one at a time under ``render_lock``; an emergency
never waits for that lock (a preview or a saved announcement may hold it for seconds):
its renders take their own lock, and two espeak-ng pipelines at once are fine a moment.

An emergency whose text holds a value no render ahead foresaw (a rule's ``{value}``: the
river at 350 cm when the texts ahead said 220 to 230) is assembled (``audio/segments.py``):
the pre-render pass prepares a frame (the words around each number, spoken, with the gain
that lands the program on its loudness) for every emergency text with a number, and when
the rule fires only the number's words are spoken, within ``live_budget_s``, and joined to
the frame in memory; the residents' copy is encoded afterwards (``emergency-web`` worker).
Such a text is not rendered whole ahead unless the voice is too slow to say a number in
time: frames cost no writes, and the texts a reading foresees change with the readings.
When the number cannot be spoken in time (or the engine fails on it), the frame's fixed
words play without the value, at once, and ``unspoken`` tells who fired it (the rule's
firing line says so).

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
import hashlib
import json
import logging
import os
import secrets
import subprocess
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from audio.cache import MIB, Keep, RenderCache, file_sha256
from audio.errors import (
    AudioTooLarge,
    InvalidAudio,
    InvalidSpec,
    UnknownVoice,
    UnsupportedAudio,
)
from audio.lexicon import EMPTY, Lexicon
from audio.normalize import normalize

# The render's own cache key and web format: an assembled emergency is stored as the
# render cache stores a render, and a full render of the same text finds it as such.
from audio.render import Rendered, RenderSpec, cache_key, render, web_format
from audio.segments import (
    Frame,
    assemble,
    number_spans,
    prepare_frame,
    speak_words,
    varying_numbers,
)
from audio.segments import write_pcm_wav as _write_wav
from audio.tts import TTSEngine
from hub.broadcast.models import AnnouncementError
from hub.errors import TooLarge, Unsupported
from hub.settings import Settings

log = logging.getLogger(__name__)

#: Media types of the audio the hub serves (rendered announcements, recordings).
AUDIO_TYPES = {".ogg": "audio/ogg", ".opus": "audio/ogg", ".mp3": "audio/mpeg", ".wav": "audio/wav"}

#: How long the number's words of a firing emergency may take to speak: past it the fixed
#: words play without the value. The first sample is due within the lead-in + 300 ms.
LIVE_BUDGET_S = 0.2
#: Frames kept in memory (one per rule, device, voice and number of a text ahead): each
#: holds a few seconds of PCM; the pre-render pass makes them again after a restart.
FRAMES_MAX = 64
_WEB_TIMEOUT_S = 120.0
#: Where an assembled emergency's audio goes when the card refuses it (a tmpfs: RAM).
EMERGENCY_RAM = Path("/dev/shm/langso-emergency")


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
        unspoken: Callable[[str, str], None] | None = None,
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
        #: Emergencies' full renders, one at a time among themselves, never behind the above.
        self.emergency_lock = threading.Lock()
        #: (an emergency's text as written, why its value was not spoken): the firing's line.
        self.unspoken = unspoken
        self.live_budget_s = LIVE_BUDGET_S
        self._frames: OrderedDict[str, Frame] = OrderedDict()
        self._frames_lock = threading.Lock()
        # Speaks a firing's number (the caller waits at most live_budget_s; a late one
        # finishes here, unwaited); encodes and files an assembled emergency's web copy.
        self._live = ThreadPoolExecutor(2, thread_name_prefix="emergency-live")
        self._web = ThreadPoolExecutor(1, thread_name_prefix="emergency-web")
        self._closed = threading.Event()

    @property
    def engine(self) -> TTSEngine:
        if self._engine is None:
            self._engine = self._engine_factory()
        return self._engine

    def close(self) -> None:
        """Stop a pre-render in progress after the item it is on (the hub is stopping);
        a web copy being encoded finishes."""
        self._closed.set()
        self._live.shutdown(wait=False, cancel_futures=True)
        self._web.shutdown(wait=False)

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
        ahead: bool = False,
    ) -> Rendered:
        """Render (or find) ``spec``, its text said with the lexicon (``lexicon``: instead
        of the current one), then evict to the budget, sparing what ``keep`` names and
        what was just rendered. ``emergency``: the audio is never evicted, and (unless it
        is rendered ``ahead`` of need) the render waits for no other render: a text with
        a value no render ahead foresaw is assembled from its frame."""
        written = spec.text
        if spec.text is not None:
            with audio_refusals():  # a lexicon-lengthened text past the limit: a 422
                spec = dataclasses.replace(spec, text=self.spoken(spec.text, lexicon))
        keep = keep or Keep()
        if emergency and not ahead:
            return self._emergency(spec, written, keep)
        # One render at a time: two espeak-ng + ffmpeg pipelines at once would starve the
        # ingest writer on a 2-core Pi.
        with self.render_lock, audio_refusals():
            return self._render(spec, emergency, keep)

    def _render(self, spec: RenderSpec, emergency: bool, keep: Keep) -> Rendered:
        r = render(spec, self.engine if spec.text else None, self.cache, emergency=emergency)
        self.cache.trim(keep.with_pinned(r.key))
        return r

    # -- emergencies: never behind another render ---------------------------------------------
    def _emergency(self, spec: RenderSpec, written: str | None, keep: Keep) -> Rendered:
        with audio_refusals():
            if spec.text is not None and written is not None:
                try:
                    live = self._assembled(spec, written, keep)
                except Exception:  # e.g. a full card: the full render may still make it
                    log.exception("emergency %r not assembled: rendering it whole", written[:80])
                    live = None
                if live is not None:
                    return live
            with self.emergency_lock:
                return self._render(spec, True, keep)

    def _frame_key(self, spec: RenderSpec, before: str, after: str) -> str:
        """A frame's name: the words around the number, and all that shapes the audio."""
        e = self.engine
        shape = repr(dataclasses.replace(spec, text="#"))
        blob = json.dumps([before, after, shape, e.name, e.identity], ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def _frame_of(self, spec: RenderSpec) -> tuple[Frame, str] | None:
        """The frame ``spec``'s text fits and the words its value says there, if any."""
        assert spec.text is not None
        for before, _, after in number_spans(spec.text):
            key = self._frame_key(spec, before, after)
            with self._frames_lock:
                frame = self._frames.get(key)
                if frame is not None:
                    self._frames.move_to_end(key)
            middle = frame.middle(spec.text) if frame is not None else None
            if frame is not None and middle is not None:
                return frame, middle
        return None

    def _assembled(self, spec: RenderSpec, written: str, keep: Keep) -> Rendered | None:
        """The emergency found whole in the cache (a text rendered ahead), or assembled
        from its frame; None when no frame fits (a full render follows)."""
        assert spec.text is not None
        whole = cache_key(spec, self.engine, normalize(spec.text))
        found = self.cache.lookup(whole, emergency=True)
        if found is not None:
            return found
        fitting = self._frame_of(spec)
        if fitting is None:
            return None
        frame, middle = fitting
        number: bytes | None = None
        try:
            number = self._live.submit(self._speak, middle, spec).result(self.live_budget_s)
        except FutureTimeout:
            why = f"its words were not spoken within {self.live_budget_s:g} s"
        except Exception as e:
            why = f"the voice failed on it ({type(e).__name__}: {str(e)[:120]})"
        else:
            why = "" if number else "the voice said nothing for it"
        if number:
            key = hashlib.sha256(f"live:{whole}".encode()).hexdigest()
        else:
            number = None
            # The fixed words alone: the same audio for every value, stored once.
            key = hashlib.sha256(f"fixed:{frame.key}".encode()).hexdigest()
            log.warning("emergency %r said without its value: %s", written[:80], why)
            if self.unspoken is not None:
                try:
                    self.unspoken(written, why)
                except Exception:
                    log.exception("the value not spoken could not be recorded")
        found = self.cache.lookup(key, emergency=True)
        if found is not None:
            return found
        return self._place(
            key, assemble(frame, number), frame, keep, said=middle if number else None
        )

    def _speak(self, words: str, spec: RenderSpec) -> bytes:
        d = self.cache.directory
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / f".live-{secrets.token_hex(6)}"
        tmp.mkdir()
        try:
            return speak_words(self.engine, words, spec, tmp)
        finally:
            for f in tmp.iterdir():
                f.unlink()
            tmp.rmdir()

    def _place(
        self, key: str, pcm: bytes, frame: Frame, keep: Keep, *, said: str | None
    ) -> Rendered:
        """The PA WAV in place under ``key`` now (the playout only needs it); the web copy
        and the cache's index entry follow in the ``emergency-web`` worker."""
        d = self.cache.directory
        token = secrets.token_hex(6)
        tmp, link = d / f".live-{key}-{token}.wav", d / f".live-{key}-{token}.link"
        wav_path = d / f"{key}.wav"
        try:
            _write_wav(tmp, pcm, frame.rate)
            os.link(tmp, link)  # the same file under its final name, atomically
            os.replace(link, wav_path)
        except OSError as e:  # a full or failing card: the emergency plays all the same
            for f in (tmp, link):
                with suppress(OSError):
                    f.unlink()
            return self._in_ram(key, pcm, frame, e)
        ext = web_format()[0]
        duration_s = len(pcm) / 2 / frame.rate
        sha = file_sha256(tmp)
        meta = {
            "duration_s": duration_s,
            "sha256": sha,
            "lufs": frame.lufs,
            "true_peak_db": frame.true_peak_db,
            "text": None,
            "assembled": {"before": frame.said_before, "value": said, "after": frame.said_after},
        }
        web = d / f".live-{key}-{token}{ext}"
        try:
            self._web.submit(self._file_web, key, tmp, web, meta, keep)
        except RuntimeError:  # the hub is stopping: file it now
            self._file_web(key, tmp, web, meta, keep)
        return Rendered(
            wav_path=wav_path,
            web_path=d / f"{key}{ext}",
            duration_s=duration_s,
            sha256=sha,
            lufs=frame.lufs,
            true_peak_db=frame.true_peak_db,
            key=key,
        )

    def _in_ram(self, key: str, pcm: bytes, frame: Frame, why: OSError) -> Rendered:
        """The PA WAV in RAM (``EMERGENCY_RAM``) when the card refuses it: the playout plays
        a path, and a full card must not silence an emergency. Nothing is filed and the
        residents get no copy; what an earlier refusal left there a day ago goes."""
        ram = EMERGENCY_RAM.parent
        folder = (ram if ram.is_dir() else Path(tempfile.gettempdir())) / EMERGENCY_RAM.name
        folder.mkdir(mode=0o700, exist_ok=True)
        for old in folder.glob("*.wav"):
            with suppress(OSError):
                if time.time() - old.stat().st_mtime > 86_400:
                    old.unlink()
        wav = folder / f"{key}-{secrets.token_hex(6)}.wav"
        _write_wav(wav, pcm, frame.rate)
        log.error(
            "emergency audio %s played from RAM (%s): the card refused it (%s)", key, wav, why
        )
        return Rendered(
            wav_path=wav,
            web_path=wav,
            duration_s=len(pcm) / 2 / frame.rate,
            sha256=file_sha256(wav),
            lufs=frame.lufs,
            true_peak_db=frame.true_peak_db,
            key=key,
        )

    def _file_web(self, key: str, wav: Path, web: Path, meta: dict[str, Any], keep: Keep) -> None:
        """Encode the residents' copy, then enter both files in the cache (under the render
        lock: the retention sweep must not count the WAV half-filed)."""
        try:
            argv = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
                    "-i", f"file:{wav}", *web_format()[1], "-y", f"file:{web}"]  # fmt: skip
            subprocess.run(argv, check=True, capture_output=True, timeout=_WEB_TIMEOUT_S)
            with self.render_lock:
                self.cache.put(key, wav=wav, web=web, meta=meta, emergency=True)
                self.cache.trim(keep.with_pinned(key))
        except Exception:
            log.exception("the residents' copy of emergency audio %s was not made", key)
            for f in (wav, web):
                with suppress(OSError):
                    f.unlink()

    def _prepare_frames(
        self, spec: RenderSpec, only: list[int] | None = None
    ) -> tuple[list[str], bool]:
        """The frames of an emergency text (lexicon applied): one for each number in it
        (``only``: for these of its numbers), kept in memory. Their keys, and whether
        every firing of this text can be said from them in time: each such number has a
        frame, and the voice spoke its sample number within half of ``live_budget_s``."""
        assert spec.text is not None
        keys: list[str] = []
        quick = True
        for i, (before, _, after) in enumerate(number_spans(spec.text)):
            if only is not None and i not in only:
                continue
            key = self._frame_key(spec, before, after)
            with self._frames_lock:
                frame = self._frames.get(key)
                if frame is not None:
                    self._frames.move_to_end(key)
            if frame is None:
                frame = prepare_frame(self.engine, spec, before, after, key=key)
                if frame is None:
                    quick = False
                    continue
                with self._frames_lock:
                    self._frames[key] = frame
                    while len(self._frames) > FRAMES_MAX:
                        self._frames.popitem(last=False)
            keys.append(key)
            quick = quick and frame.spoken_s <= self.live_budget_s / 2
        return keys, quick and bool(keys)  # no number to frame: rendered whole

    def prerender(
        self, items: list[dict[str, Any]], keep: Keep | None = None, *, limit: int | None = None
    ) -> int:
        """Make ready the announcements a rule may make, the most urgent first, at most
        ``limit`` renders, until emergency audio holds half the cache's budget; how many.

        An emergency text with a number in it (a rule's ``{value}``) only needs its frames,
        in memory, when the voice speaks a number in time: whatever the value, only its
        words are said when the rule fires. Nothing is written for it (texts ahead that
        change with each reading would otherwise be rendered, and written to the card,
        again and again). Any other text (fixed, or a voice too slow for a number at the
        time, like Piper's) is rendered whole into the render cache. A render, found or made,
        counts one; so do a text's frames, unless an earlier text had them all (the texts of
        one rule and device, for each value, share them). Only the numbers that differ
        between the texts of one ``group`` (a rule and device) get frames (the value, not the
        gauge's number or the alarm level)."""
        done = 0
        framed: set[str] = set()
        said: dict[str, str] = {}
        for i in items:
            try:
                said[i["text"]] = self.spoken(i["text"])
            except Exception:  # e.g. lengthened past the limit by the lexicon: said as written
                said[i["text"]] = i["text"]
        varying = varying_numbers((i.get("group", ""), said[i["text"]]) for i in items)
        for item in items:
            if self._closed.is_set() or (limit is not None and done >= limit):
                break
            budget = self.cache.budget_bytes
            if budget is not None and self.cache.pinned_size() >= budget // 2:
                log.warning(
                    "pre-rendering stopped after %d: emergency audio holds half of "
                    "audio.render_cache_mb; the rest renders when needed",
                    done,
                )
                break
            emergency = item["priority"] == "emergency"
            spec = self.spec(
                text=item["text"],
                source_wav=None,
                voice=None,
                priority=item["priority"],
                repeat=item["repeat"],
            )
            spec = dataclasses.replace(spec, text=said[item["text"]])
            assert spec.text is not None
            try:
                with self.render_lock:
                    if emergency:  # a text without a number has no frame: rendered whole
                        only = varying[(item.get("group", ""), spec.text)]
                        keys, quick = self._prepare_frames(spec, only)
                        if quick:
                            done += not framed.issuperset(keys)
                            framed.update(keys)
                            continue
                    self._render(spec, emergency, keep or Keep())
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
