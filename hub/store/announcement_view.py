"""The staff's page of one announcement (``hub/web/staff_announcement.py``): its every
broadcast from the as-run log with what the playout said of it, the announcements that
follow it up, and its recording's own length.

The as-run log's writer is ``hub/broadcast/as_run.py`` (through
:class:`hub.store.announcements.BroadcastLog`); these are its reads for one announcement,
served by the ``broadcasts_announcement`` and ``announcements_corrects`` indexes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from hub.store import Store


@dataclass(frozen=True, slots=True)
class Aired:
    """One line of the as-run log of an announcement."""

    scheduled_for: float
    started_at: float | None
    ended_at: float | None
    status: str
    zones: tuple[str, ...]
    detail: str | None


@dataclass(frozen=True, slots=True)
class FollowUp:
    """An announcement that corrects or ends another (``corrects``), and how."""

    id: str
    title: str
    follow_kind: str | None
    status: str
    created_at: float
    created_by: str


def broadcasts(store: Store, aid: str, limit: int) -> list[Aired]:
    """Its broadcasts, newest first (what is on air now included: ``playing``)."""
    rows = store.query(
        "SELECT scheduled_for, started_at, ended_at, status, zones, detail FROM broadcasts"
        " WHERE announcement_id=? ORDER BY scheduled_for DESC, id DESC LIMIT ?",
        (aid, limit),
    )
    return [
        Aired(
            r["scheduled_for"],
            r["started_at"],
            r["ended_at"],
            r["status"],
            tuple(json.loads(r["zones"])),
            r["detail"],
        )
        for r in rows
    ]


def follow_ups(store: Store, aid: str, limit: int) -> list[FollowUp]:
    """The announcements that follow this one up, oldest first."""
    rows = store.query(
        "SELECT id, title, follow_kind, status, created_at, created_by FROM announcements"
        " WHERE corrects=? ORDER BY created_at, rowid LIMIT ?",
        (aid, limit),
    )
    return [
        FollowUp(
            r["id"], r["title"], r["follow_kind"], r["status"], r["created_at"], r["created_by"]
        )
        for r in rows
    ]


def title_of(store: Store, aid: str) -> str | None:
    row = store.one("SELECT title FROM announcements WHERE id=?", (aid,))
    return None if row is None else str(row["title"])


def recording_seconds(store: Store, audio_id: str | None) -> float | None:
    """The uploaded recording's own length (before chimes and repeats)."""
    if not audio_id:
        return None
    row = store.one("SELECT duration_s FROM audio_assets WHERE id=?", (audio_id,))
    return None if row is None else float(row["duration_s"])
