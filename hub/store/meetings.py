"""Meetings repository: the invitations residents are told of, by the meeting's own time.

Reads the ``announcements`` table's meeting columns (migration 12: ``meeting_local``, the
village wall time as ``2026-12-10T19:30``, and ``meeting_place``), which the broadcast
stage writes with the rest of the row, for the residents' pages, the feed and the
calendar. Residents see published invitations only (scheduled, broadcast or expired).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from hub.store import Store

_PUBLIC = "published = 1 AND status IN ('scheduled', 'done', 'expired')"
#: Ids looked up per query (SQLite's limit on bound parameters is far above it).
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Meeting:
    """When and where a meeting is (not when its invitation is broadcast)."""

    id: str
    title: str
    local: datetime  # naive village wall time
    place: str | None


def _meeting(r: sqlite3.Row) -> Meeting:
    return Meeting(
        r["id"], r["title"], datetime.fromisoformat(r["meeting_local"]), r["meeting_place"]
    )


def upcoming(store: Store, after_local: str, limit: int) -> list[Meeting]:
    """Published meetings that end after ``after_local`` (the present less a meeting's
    length, as ``meeting_local`` writes it), soonest first."""
    rows = store.query(
        "SELECT id, title, meeting_local, meeting_place FROM announcements"
        f" WHERE meeting_local IS NOT NULL AND meeting_local > ? AND {_PUBLIC}"
        " AND category = 'meeting' ORDER BY meeting_local, id LIMIT ?",
        (after_local, limit),
    )
    return [_meeting(r) for r in rows]


def of(store: Store, ids: Iterable[str]) -> dict[str, Meeting]:
    """The meetings among these announcements (by id); the others are not in it."""
    wanted = list(dict.fromkeys(ids))
    found: dict[str, Meeting] = {}
    for i in range(0, len(wanted), _CHUNK):
        part = wanted[i : i + _CHUNK]
        rows = store.query(
            "SELECT id, title, meeting_local, meeting_place FROM announcements"
            f" WHERE meeting_local IS NOT NULL AND id IN ({', '.join('?' * len(part))})",
            part,
        )
        found.update((r["id"], _meeting(r)) for r in rows)
    return found
