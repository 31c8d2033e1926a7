"""The render cache: rendered announcements on the SD card, stored once, kept within a budget.

``render.render`` looks an entry up here before it speaks and stores what it made. An
entry is named by the hash of everything that changes the output (``render.cache_key``):
the same text, voice, chime and options give the same name, so two announcements of one
text, or a text rendered again, reference one pair of files and cost nothing more.
An entry is three files, ``<key>.wav`` (the PA), ``<key>.ogg`` or ``.mp3`` (residents)
and ``<key>.json`` (what it is; written last, so its presence makes the entry complete).

The size budget: the cache keeps a running total (one directory scan when first used,
then added to and taken from as it goes), so checking it after a render costs nothing.
Over budget, entries go in this order (:meth:`RenderCache.trim`):

1. those nothing needs, the least recently used first (a cache hit renews an entry);
2. those an announcement needs for a future occurrence but not soon, the furthest first
   (the hub renders them again before their time, see ``hub/broadcast/announcements.py``);

and never an emergency's audio (marked in its JSON when rendered as one, or named by the
caller) nor audio needed soon. When what may not go already exceeds the budget, the
cache stays over it and says so once.

Threads: the hub renders one at a time under its render lock and the retention sweep
takes that lock too; the cache's own lock only keeps its index consistent for callers
without one (scripts, tests).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

__all__ = ["MIB", "Keep", "RenderCache", "Rendered", "file_sha256", "needed_soon_s"]

log = logging.getLogger(__name__)

MIB = 1 << 20
DAY = 86_400.0


def needed_soon_s(pass_interval_s: float) -> float:
    """How far ahead audio an announcement needs is never evicted: a day, and at least
    three of the passes that render evicted audio again (so one missed pass is harmless)."""
    return max(DAY, 3 * pass_interval_s)


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered announcement in the cache; ``sha256`` is the PA WAV's."""

    wav_path: Path
    web_path: Path
    duration_s: float
    sha256: str
    lufs: float
    true_peak_db: float
    key: str
    cached: bool = False


@dataclass(frozen=True, slots=True)
class Keep:
    """What the caller still needs, for :meth:`RenderCache.trim`.

    ``pinned``: keys never evicted (an emergency announcement's audio, the entry just
    rendered). ``needed``: key -> the time (epoch s) of the next occurrence that plays it;
    evicted only after every entry nothing needs, the furthest first, and never when that
    time is before ``soon``.
    """

    pinned: frozenset[str] = frozenset()
    needed: Mapping[str, float] = field(default_factory=dict)
    soon: float = math.inf

    def with_pinned(self, *keys: str) -> Keep:
        return replace(self, pinned=self.pinned | frozenset(keys))


@dataclass(slots=True)
class _Entry:
    files: list[Path]
    size: int
    used: float  # when last rendered or hit (the files' mtime on disk)
    emergency: bool


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=1)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _read_meta(path: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


class RenderCache:
    """One cache directory: lookups, stores, the running size and eviction."""

    # One object per directory in the process: the renderer and the retention sweep must
    # share one running size (see :meth:`at`).
    _registry: ClassVar[dict[Path, RenderCache]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, directory: Path, budget_bytes: int | None = None) -> None:
        self.directory = directory
        #: None: no budget (only the retention's days apply).
        self.budget_bytes = budget_bytes
        self._lock = threading.RLock()
        self._index: dict[str, _Entry] | None = None  # scanned when first needed
        self._size = 0
        self._warned_over = False

    @classmethod
    def at(cls, directory: Path) -> RenderCache:
        """The process's cache object for ``directory`` (made on first use).

        The renderer sets the budget; the retention sweep, which is built with the folder
        only, finds the same object and so the same budget and running size."""
        where = directory.resolve()
        with cls._registry_lock:
            cache = cls._registry.get(where)
            if cache is None:
                cache = cls._registry[where] = cls(directory)
            return cache

    @staticmethod
    def key_of(path: Path) -> str:
        """The entry a cache file belongs to (``<key>.wav`` -> ``key``)."""
        return path.name.split(".", 1)[0]

    # -- the index ---------------------------------------------------------------------
    def _entries(self) -> dict[str, _Entry]:
        if self._index is None:
            self.rescan()
        assert self._index is not None
        return self._index

    def rescan(self) -> None:
        """Read the directory again (the retention sweep does, in case a person or another
        program changed it); files whose name starts with a dot are work in progress."""
        index: dict[str, _Entry] = {}
        with self._lock:
            try:
                names = list(self.directory.iterdir())
            except FileNotFoundError:
                names = []
            for f in names:
                if f.name.startswith("."):
                    continue
                try:
                    st = f.stat()
                except OSError:
                    continue
                e = index.setdefault(self.key_of(f), _Entry([], 0, 0.0, False))
                e.files.append(f)
                e.size += st.st_size
                e.used = max(e.used, st.st_mtime)
                if f.suffix == ".json":
                    meta = _read_meta(f)
                    e.emergency = bool(meta and meta.get("emergency"))
            self._index = index
            self._size = sum(e.size for e in index.values())

    @property
    def size(self) -> int:
        """Bytes the entries take (the running total)."""
        with self._lock:
            self._entries()
            return self._size

    def pinned_size(self) -> int:
        """Bytes of the entries marked as emergency audio."""
        with self._lock:
            return sum(e.size for e in self._entries().values() if e.emergency)

    def keys(self) -> set[str]:
        with self._lock:
            return set(self._entries())

    def _drop(self, key: str) -> None:
        e = self._entries().pop(key, None)
        if e is None:
            return
        for f in e.files:
            with contextlib.suppress(FileNotFoundError):
                f.unlink()
        self._size -= e.size

    # -- lookups and stores ------------------------------------------------------------
    def lookup(self, key: str, *, emergency: bool = False) -> Rendered | None:
        """The complete, undamaged entry ``key`` (renewed: used now), or None.

        ``emergency`` marks an entry found for an emergency, so that it is never evicted."""
        meta_path = self.directory / f"{key}.json"
        with self._lock:
            meta = _read_meta(meta_path)
            try:
                if meta is None:
                    return None
                wav_path = self.directory / meta["wav"]
                web_path = self.directory / meta["web"]
                if not web_path.is_file() or file_sha256(wav_path) != meta["sha256"]:
                    return None  # a damaged entry (SD card): render again
                found = Rendered(
                    wav_path=wav_path,
                    web_path=web_path,
                    duration_s=float(meta["duration_s"]),
                    sha256=str(meta["sha256"]),
                    lufs=float(meta["lufs"]),
                    true_peak_db=float(meta["true_peak_db"]),
                    key=key,
                    cached=True,
                )
            except (OSError, ValueError, KeyError, TypeError):
                return None
            if emergency and not meta.get("emergency"):
                _write_json_atomic(meta_path, {**meta, "emergency": True})
            with contextlib.suppress(OSError):
                os.utime(meta_path)  # used now: least recently used goes first
            e = self._entries().get(key)
            if e is None:  # the index missed it (written by another process): count it
                self.rescan()
            else:
                e.used = time.time()
                e.emergency = e.emergency or emergency
            return found

    def put(
        self,
        key: str,
        *,
        wav: Path,
        web: Path,
        meta: Mapping[str, Any],
        emergency: bool = False,
    ) -> tuple[Path, Path]:
        """Move a finished render's files into place under ``key``; the JSON goes last.

        ``wav`` and ``web`` are temporary files in this directory (renamed, not copied)."""
        wav_path = self.directory / f"{key}.wav"
        web_path = self.directory / f"{key}{web.suffix}"
        meta_path = self.directory / f"{key}.json"
        with self._lock:
            self._drop(key)  # a damaged entry being replaced
            os.replace(wav, wav_path)
            os.replace(web, web_path)
            _write_json_atomic(
                meta_path,
                {"wav": wav_path.name, "web": web_path.name, **meta, "emergency": emergency},
            )
            files = [wav_path, web_path, meta_path]
            size = sum(f.stat().st_size for f in files)
            self._entries()[key] = _Entry(files, size, time.time(), emergency)
            self._size += size
        return wav_path, web_path

    def pin(self, keys: Iterable[str]) -> None:
        """Mark entries as emergency audio (never evicted), in their JSON too."""
        with self._lock:
            for key in keys:
                e = self._entries().get(key)
                if e is None or e.emergency:
                    continue
                meta_path = self.directory / f"{key}.json"
                meta = _read_meta(meta_path)
                if meta is not None:
                    with contextlib.suppress(OSError):
                        _write_json_atomic(meta_path, {**meta, "emergency": True})
                        os.utime(meta_path, (e.used, e.used))  # marking is not using
                e.emergency = True

    # -- keeping it small --------------------------------------------------------------
    def trim(self, keep: Keep | None = None) -> list[str]:
        """Evict until the cache fits its budget (see the module's order); the keys gone."""
        keep = keep or Keep()
        with self._lock:
            budget = self.budget_bytes
            self._entries()
            if budget is None or self._size <= budget:
                self._warned_over = False
                return []
            entries = self._entries()
            movable = {k: e for k, e in entries.items() if not e.emergency and k not in keep.pinned}
            unneeded = sorted(
                (k for k in movable if k not in keep.needed), key=lambda k: movable[k].used
            )
            later = sorted(
                (k for k in movable if k in keep.needed and keep.needed[k] > keep.soon),
                key=lambda k: -keep.needed[k],
            )
            gone: list[str] = []
            for key in [*unneeded, *later]:
                if self._size <= budget:
                    break
                self._drop(key)
                gone.append(key)
            if gone:
                log.info(
                    "render cache over its %.1f MB budget: %d entries evicted (%d needed later)",
                    budget / MIB,
                    len(gone),
                    sum(1 for k in gone if k in keep.needed),
                )
            over = self._size > budget
            if over and not self._warned_over:
                log.warning(
                    "render cache holds %.1f MB of emergency and soon-needed audio, over its "
                    "%.1f MB budget: raise audio.render_cache_mb or lower audio.prerender_max",
                    self._size / MIB,
                    budget / MIB,
                )
            self._warned_over = over
            return gone

    def expire(self, before: float, keep: Collection[str]) -> int:
        """Delete entries not in ``keep`` and unused since ``before`` (epoch s): how many."""
        with self._lock:
            old = [k for k, e in self._entries().items() if e.used < before and k not in keep]
            for key in old:
                self._drop(key)
            return len(old)

    def remove_leftovers(self, before: float) -> None:
        """Render folders and temporary files a crash left, older than ``before``."""
        try:
            names = list(self.directory.iterdir())
        except FileNotFoundError:
            return
        for f in names:
            if not f.name.startswith("."):
                continue
            with contextlib.suppress(OSError):
                if f.stat().st_mtime >= before:
                    continue  # maybe a render in progress
                if f.is_dir():
                    shutil.rmtree(f)
                else:
                    f.unlink()
