"""The render cache's budget on real files and a real SQLite file: what goes first, what never."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from audio.cache import MIB, Keep, RenderCache
from hub.clock import FakeClock
from hub.settings import RetentionSettings
from hub.store import Store
from hub.store.retention import Retention

T0 = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
KB = 1024
DAY = 86_400.0


def entry(cache: Path, key: str, kb: int, used: float, *, emergency: bool = False) -> Path:
    """A cache entry as render.render leaves it: WAV, web copy, JSON; last used at ``used``."""
    wav, web, meta = cache / f"{key}.wav", cache / f"{key}.ogg", cache / f"{key}.json"
    wav.write_bytes(b"w" * (kb * KB - 2 * KB))
    web.write_bytes(b"o" * KB)
    meta.write_text(json.dumps({"wav": wav.name, "web": web.name, "emergency": emergency}))
    meta.write_bytes(meta.read_bytes().ljust(KB))  # JSON allows trailing blanks
    for f in (wav, web, meta):
        os.utime(f, (used, used))
    return wav


def left(cache: Path) -> set[str]:
    return {f.name.split(".")[0] for f in cache.iterdir() if not f.name.startswith(".")}


def test_least_recently_used_goes_first_then_later_needs_never_emergencies(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    d = tmp_path / "render"
    d.mkdir()
    entry(d, "old", 100, T0 - 50)
    entry(d, "newer", 100, T0 - 10)
    entry(d, "alarm", 300, T0 - 100, emergency=True)
    entry(d, "tomorrow", 100, T0 - 90)  # an occurrence due in 2 days: needed, not soon
    entry(d, "next-week", 100, T0 - 80)
    entry(d, "tonight", 100, T0 - 70)  # due in 3 hours: never
    entry(d, "pinned", 100, T0 - 60)  # an emergency announcement, named by the caller
    cache = RenderCache(d, budget_bytes=1000 * KB)
    assert cache.size == 900 * KB
    keep = Keep(
        frozenset({"pinned"}),
        {"tomorrow": T0 + 2 * DAY, "next-week": T0 + 7 * DAY, "tonight": T0 + 3 * 3600},
        soon=T0 + DAY,
    )
    assert cache.trim(keep) == []  # within the budget: nothing goes
    cache.budget_bytes = 700 * KB
    # Unneeded, least recently used first: "old" before "newer" although both are unneeded.
    assert cache.trim(keep) == ["old", "newer"]
    assert cache.size == 700 * KB == sum(f.stat().st_size for f in d.iterdir())
    cache.budget_bytes = 500 * KB
    # Nothing unneeded is left: the furthest occurrence's audio goes, then the next.
    assert cache.trim(keep) == ["next-week", "tomorrow"]
    cache.budget_bytes = 100 * KB
    with caplog.at_level(logging.WARNING, logger="audio.cache"):
        assert cache.trim(keep) == []  # the emergencies and tonight's audio stay
        assert cache.trim(keep) == []
    assert left(d) == {"alarm", "tonight", "pinned"}
    assert len([r for r in caplog.records if "over its" in r.message]) == 1  # said once


def test_a_hit_renews_an_entry_and_the_size_follows_the_disk(tmp_path: Path) -> None:
    d = tmp_path / "render"
    d.mkdir()
    cache = RenderCache(d, budget_bytes=250 * KB)
    a = entry(d, "a", 100, T0 - 30)
    entry(d, "b", 100, T0 - 20)
    # The JSON a render writes: the hit checks the WAV's hash.
    meta = json.loads((d / "a.json").read_text())
    meta |= {
        "sha256": hashlib.sha256(a.read_bytes()).hexdigest(),
        "duration_s": 1.0,
        "lufs": -16.0,
        "true_peak_db": -1.0,
    }
    (d / "a.json").write_text(json.dumps(meta))
    assert cache.size == (100 + 100) * KB - KB + len(json.dumps(meta))
    assert cache.lookup("a") is not None  # "a" used now: "b" is the least recent
    # A third render arrives through put(): the running size grows without a scan.
    (d / ".tmp.wav").write_bytes(b"w" * 100 * KB)
    (d / ".tmp.ogg").write_bytes(b"o")
    cache.put("c", wav=d / ".tmp.wav", web=d / ".tmp.ogg", meta={"sha256": "x"})
    assert cache.trim(Keep().with_pinned("c")) == ["b"]
    assert left(d) == {"a", "c"}
    # An entry found for an emergency is marked as such, on disk too.
    assert cache.lookup("a", emergency=True) is not None
    assert json.loads((d / "a.json").read_text())["emergency"] is True
    assert (
        RenderCache(d).pinned_size()
        == (d / "a.wav").stat().st_size
        + (d / "a.ogg").stat().st_size
        + (d / "a.json").stat().st_size
    )


def test_the_retention_sweep_holds_the_budget_with_what_announcements_need(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "hub.db")
    conn = store.new_connection()
    d = tmp_path / "render"
    d.mkdir()

    def announcement(
        aid: str,
        wav: Path,
        priority: str,
        status: str,
        nxt: float | None,
        last: float | None = None,
    ) -> None:
        conn.execute(
            "INSERT INTO announcements(id, title, category, priority, zones, start_local,"
            " status, created_at, updated_at, created_by, render_wav, render_web, next_run,"
            " last_run) VALUES (?, 't', 'notice', ?, '[]', '2026-12-01T06:00', ?, 0, 0, 'x',"
            " ?, ?, ?, ?)",
            (aid, priority, status, str(wav), str(wav.with_suffix(".ogg")), nxt, last),
        )

    # Rendered before emergencies were marked in the cache: the table says which is one.
    announcement("e1", entry(d, "flood", 400, T0 - 9 * DAY), "emergency", "done", None)
    announcement("n1", entry(d, "news", 100, T0 - 8 * DAY), "normal", "scheduled", T0 + 3600)
    announcement("w1", entry(d, "weekly", 100, T0 - 7 * DAY), "normal", "draft", T0 + 6 * DAY)
    announcement("p1", entry(d, "played", 100, T0 - 6 * DAY), "normal", "done", None)
    # Handed to the playout a moment ago, not logged yet: on air, or about to be.
    announcement("o1", entry(d, "on-air", 100, T0 - 10 * DAY), "normal", "done", None, T0)
    entry(d, "preview", 100, T0 - 1 * DAY)
    RenderCache.at(d).budget_bytes = 600 * KB  # what the renderer sets from the settings
    r = Retention(
        RetentionSettings(render_cache_days=30),
        store,
        ingest_conn=conn,
        clock=FakeClock(datetime.fromtimestamp(T0, UTC)),
        render_dir=d,
    )
    # 900 kB: the played one and the preview go (least recent first), then, still over,
    # the draft due in six days; the emergency (400 kB), tomorrow's news and the audio on
    # air stay.
    assert r.sweep_render_cache(T0) == 3
    assert left(d) == {"flood", "news", "on-air"}
    assert RenderCache.at(d).size == 600 * KB
    assert json.loads((d / "flood.json").read_text())["emergency"] is True
    # The draft's audio is gone: the hub renders it again within a day of its time
    # (tests/integration/test_render_cache.py shows it).
    conn.close()
    store.close()


def test_one_cache_object_per_folder(tmp_path: Path) -> None:
    a = RenderCache.at(tmp_path / "render")
    a.budget_bytes = 2 * MIB
    assert RenderCache.at(tmp_path / "x" / ".." / "render") is a
    assert RenderCache.at(tmp_path / "render").budget_bytes == 2 * MIB
    assert a.size == 0  # a folder not made yet is an empty cache
