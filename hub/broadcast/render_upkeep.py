"""Broadcast stage, the render cache's upkeep: what announcements still need, kept or redone.

The render cache (``audio/cache.py``) has a size budget; it knows which audio is an
emergency's but not which audio a coming occurrence plays. This module tells it
(:meth:`RenderUpkeep.keep`, passed with every render), and runs the ``prerender`` pass
(at start, after each retention sweep, after a rule change):

1. coming audio that is missing is rendered again before its time
   (:meth:`RenderUpkeep.restore`): audio due within ``needed_soon_s`` (a day) is never
   evicted, so audio evicted as a last resort is at least a day from playing, and a
   pass every ``retention.sweep_interval_s`` finds it gone in time;
2. the emergency texts the rules may say, the most urgent first, each once, at most
   ``audio.prerender_max``.

And when the village's own words change (:meth:`RenderUpkeep.words_changed`, after an
edit of the lexicon), the coming announcements whose text uses a changed word are rendered
again at once, then the pass above runs (an emergency text that uses it is pre-rendered
anew; the others are found in the cache).

Threads: :meth:`keep` runs in the renderer's caller (an API worker, ``announce-cmd``);
the passes run in a ``prerender`` thread. Each reads through its own connection.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from audio.cache import Keep, RenderCache, Rendered, needed_soon_s
from audio.lexicon import compile_lexicon
from hub.broadcast.hub_alerts import HubAlerts
from hub.broadcast.rendering import Renderer
from hub.clock import Clock
from hub.settings import Settings
from hub.store import Store
from hub.store.announcements import AnnouncementTable, Row

__all__ = ["RenderUpkeep"]

log = logging.getLogger(__name__)

#: Coming announcements looked at (a village has a few dozen).
_COMING_MAX = 1000


class RenderUpkeep:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Clock,
        table: AnnouncementTable,
        renderer: Renderer,
        alerts: HubAlerts,
    ) -> None:
        self.settings, self.store, self.clock = settings, store, clock
        self.table, self.renderer, self.alerts = table, renderer, alerts
        #: Changed words waiting for the re-render pass, and whether it runs.
        self._words_lock = threading.Lock()
        self._pending_words: set[str] = set()
        self._words_pass: threading.Thread | None = None

    @property
    def soon_s(self) -> float:
        """Coming audio due within this is never evicted (and is rendered again if gone)."""
        return needed_soon_s(self.settings.retention.sweep_interval_s)

    def _coming(self) -> list[Row]:
        """Announcements that will still play: scheduled, and drafts awaiting approval."""
        rows = self.table.due(limit=_COMING_MAX)
        drafts = self.table.find(staff=True, status="draft", limit=_COMING_MAX, upcoming=True)
        return rows + [r for d in drafts if (r := self.table.row(d["id"])) is not None]

    def keep(self) -> Keep:
        """What the render cache must spare: an emergency announcement's audio and audio
        handed to the playout (queued or on air) always; a coming occurrence's unless it is
        over :attr:`soon_s` away and nothing else can go."""
        pinned: set[str] = set()
        needed: dict[str, float] = {}
        for row in self._coming():
            if not row["render_wav"] or row["next_run"] is None:
                continue
            key = RenderCache.key_of(Path(row["render_wav"]))
            needed[key] = min(needed.get(key, math.inf), float(row["next_run"]))
            if row["priority"] == "emergency":
                pinned.add(key)
        for row in self.table.handed_over_unlogged():
            if row["render_wav"]:
                pinned.add(RenderCache.key_of(Path(row["render_wav"])))
        return Keep(frozenset(pinned), needed, self.clock.now().timestamp() + self.soon_s)

    def restore(self) -> int:
        """Render again the audio of coming occurrences due within :attr:`soon_s` whose
        files are gone (evicted as a last resort, or deleted by a person). An announcement
        renders to the same cache name, so its row is whole again; when the settings
        changed the name, the row is pointed at the new files. How many were redone."""
        horizon = self.clock.now().timestamp() + self.soon_s
        restored = 0
        for row in self._coming():
            wav, web = row["render_wav"], row["render_web"]
            whole = bool(wav and web and Path(wav).is_file() and Path(web).is_file())
            if whole or row["next_run"] is None or row["next_run"] > horizon:
                continue
            try:
                source = self.table.audio_path(row["audio_id"]) if row["audio_id"] else None
                if row["audio_id"] and source is None:
                    raise FileNotFoundError(f"recording {row['audio_id']} is gone")
                rendered = self._render_row(row, source)
            except Exception as e:  # one announcement's failure never stops the others
                log.exception("the audio of announcement %s cannot be rendered again", row["id"])
                self.alerts.raise_(
                    "render_missing",
                    "critical",
                    f"the audio of announcement {row['id']} is gone and cannot be rendered "
                    f"again ({e}): edit or cancel it before it plays",
                )
                continue
            restored += 1
            if (str(rendered.wav_path), str(rendered.web_path)) != (wav, web):
                self._repoint(row, rendered)
        if restored:
            log.info("render cache: the audio of %d coming announcements rendered again", restored)
        return restored

    def _render_row(self, row: Row, source: Path | None) -> Rendered:
        """An announcement's row rendered as it was saved (voice, rate, pauses, repeats)."""
        r = self.renderer
        return r.render(
            r.spec(
                text=row["text"],
                source_wav=source,
                voice=row["voice"],
                priority=row["priority"],
                repeat=row["repeat"],
                rate=row["rate"],
                sentence_pause_s=row["sentence_pause_s"],
            ),
            emergency=row["priority"] == "emergency",
            keep=self.keep(),
        )

    def _repoint(self, row: Row, rendered: Rendered, cause: dict[str, Any] | None = None) -> bool:
        """Point the announcement at its new audio, unless it changed since ``row`` was read
        (an edit rendered its own audio meanwhile: this render is of the old text)."""
        aid = row["id"]
        now = self.clock.now().timestamp()
        with self.table.write() as conn:
            current = self.table.row(aid)
            if current is None or current["render_wav"] != row["render_wav"]:
                return False
            self.table.update(
                conn,
                aid,
                {
                    "render_wav": str(rendered.wav_path),
                    "render_web": str(rendered.web_path),
                    "render_sha": rendered.sha256,
                    "duration_s": rendered.duration_s,
                },
            )
            self.store.audit(
                conn,
                ts=now,
                actor="system",
                action="announcement.rerender",
                target=aid,
                detail={"sha256": rendered.sha256, **(cause or {})},
            )
        return True

    # -- the village's own words changed ---------------------------------------------------
    def words_changed(self, words: Collection[str], then: Callable[[], None] | None = None) -> None:
        """After a lexicon edit (an API worker): the announcements that use ``words`` are
        rendered again in a ``prerender`` thread, then ``then`` runs (the rules' emergency
        texts). Edits in quick succession join the pass already running."""
        with self._words_lock:
            self._pending_words |= set(words)
            if self._words_pass is not None:
                return
            self._words_pass = threading.Thread(
                target=self._rerender_pending, args=(then,), name="prerender", daemon=True
            )
            self._words_pass.start()

    def _rerender_pending(self, then: Callable[[], None] | None) -> None:
        # Bounded: each turn takes every word waiting; it ends once none came meanwhile.
        while True:
            with self._words_lock:
                words, self._pending_words = self._pending_words, set()
                if not words:
                    self._words_pass = None
                    break
            try:
                self.rerender_words(words)
            except Exception:
                log.exception("rendering again after a lexicon change failed")
        if then is not None:
            try:
                then()
            except Exception:
                log.exception("pre-rendering after a lexicon change failed")

    def rerender_words(self, words: Collection[str]) -> int:
        """Render again the coming text announcements that use any of ``words`` (with the
        lexicon as it is now) and point them at the new audio; audited. How many changed."""
        uses = compile_lexicon((w, w) for w in words)
        redone = 0
        for row in self._coming():
            if self.renderer.closed:
                break
            if not row["text"] or row["next_run"] is None:
                continue
            used = sorted(set(uses.used_in(row["text"])))
            if not used:
                continue
            try:
                rendered = self._render_row(row, None)
            except Exception as e:  # the old audio stays: it still plays, said the old way
                log.exception("announcement %s cannot be rendered with the new words", row["id"])
                self.alerts.raise_(
                    "render_lexicon",
                    "warning",
                    f"announcement {row['id']} still says {', '.join(used)} the old way: "
                    f"its render failed ({e}); edit it to try again",
                )
                continue
            if rendered.sha256 != row["render_sha"] and self._repoint(
                row, rendered, {"lexicon": used[:20]}
            ):
                redone += 1
        if redone:
            log.info("the lexicon changed: %d coming announcements rendered again", redone)
        return redone

    def prerender(self, items: list[dict[str, Any]]) -> int:
        """The pass: missing coming audio first, then the emergency texts (``items``, the
        most urgent first), each once, at most ``audio.prerender_max``. How many texts
        were pre-rendered (or found rendered)."""
        self.restore()
        unique: dict[tuple[str, str, int], dict[str, Any]] = {}
        for i in items:
            unique.setdefault((i["text"], i["priority"], i["repeat"]), i)
        limit = self.settings.audio.prerender_max
        return self.renderer.prerender(list(unique.values()), keep=self.keep(), limit=limit)
