"""Read models of the pages: announcements as residents see them, the week, the as-run log.

What the web pages read from the store besides devices and alerts (their own
repositories) and rules (``hub.store.rules``): one query per list, run in the request's
worker thread. Residents see published announcements only (scheduled, done or expired;
never drafts nor cancelled ones); the last broadcast of each is a correlated subquery,
not a query per row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from hub.store import Store


@dataclass(frozen=True, slots=True)
class Shown:
    """A published announcement as the residents' pages, feed and calendar show it."""

    id: str
    title: str
    text: str | None
    category: str
    priority: str
    status: str
    start_local: datetime  # naive village wall time
    rrule: str | None
    exdates: tuple[datetime, ...]
    expires_at: float | None
    next_run: float | None
    last_run: float | None
    played_at: float | None
    duration_s: float | None
    created_at: float
    updated_at: float
    audio: Path | None
    #: The status of its newest broadcast (played, stopped, failed...), where it was asked.
    last_broadcast: str | None = None
    #: Who issued it: a user's name, ``rule:<id>``, ``button:panel``, ``mqtt:<topic>``.
    created_by: str = ""
    #: The announcement this one follows up (an all clear, a correction) and how.
    corrects: str | None = None
    follow_kind: str | None = None
    #: The title of the one it follows up, where it was asked.
    follows_title: str | None = None
    #: Stopped on air by a person; ended by the head (or a rule that cleared).
    stopped_at: float | None = None
    ended_at: float | None = None
    ended_by: str | None = None
    #: The issuer's role (a person) or the rule's name (``rule:<id>``), where it was asked.
    issuer_role: str | None = None
    rule_name: str | None = None
    ender_role: str | None = None

    @property
    def called_off(self) -> bool:
        """Cancelled, or a one-off whose broadcast was stopped: not happening as planned."""
        return self.status == "cancelled" or (
            self.rrule is None and self.last_broadcast in ("stopped", "cancelled")
        )

    @property
    def stopped(self) -> bool:
        """Cut on air by a person or a panel's stop button (a one-off: not heard in full)."""
        return self.stopped_at is not None or (
            self.rrule is None and self.last_broadcast == "cancelled"
        )

    def in_force(self, now: float) -> bool:
        """An emergency residents must still heed: not stopped, ended nor expired."""
        return (
            self.emergency
            and self.status in ("scheduled", "done")
            and not self.stopped
            and self.ended_at is None
            and (self.expires_at is None or self.expires_at > now)
        )

    @property
    def issuer(self) -> tuple[str, str]:
        """(what issued it, its name): ``rule``, ``button``, ``remote`` or a role."""
        return _who(self.created_by, self.issuer_role, self.rule_name)

    @property
    def ender(self) -> tuple[str, str]:
        """(what ended it, its name), as :attr:`issuer`."""
        return _who(self.ended_by or "", self.ender_role, None)

    @property
    def emergency(self) -> bool:
        return self.priority == "emergency" or self.category == "emergency"

    @property
    def audio_url(self) -> str:
        return f"/api/announcements/{self.id}/audio"

    def audio_size(self) -> int | None:
        try:
            return self.audio.stat().st_size if self.audio else None
        except OSError:
            return None


def _who(by: str, role: str | None, rule_name: str | None) -> tuple[str, str]:
    if by.startswith("rule:"):
        return "rule", rule_name or by[5:]
    if by.startswith("button:"):
        return "button", by[7:]
    if ":" in by:
        return "remote", by.split(":", 1)[1]
    return role or "head", by


@dataclass(frozen=True, slots=True)
class Aired:
    """One broadcast of an announcement, as its public page lists it."""

    scheduled_for: float
    started_at: float | None
    status: str


@dataclass(frozen=True, slots=True)
class Planned:
    """An announcement still to play (scheduled, or a draft awaiting approval)."""

    id: str
    title: str
    priority: str
    status: str
    start_local: datetime
    rrule: str | None
    exdates: tuple[datetime, ...]
    expires_at: float | None


@dataclass(frozen=True, slots=True)
class Logged:
    """A line of the playout log with its announcement's title (history, CSV, the week)."""

    announcement_id: str
    title: str
    status: str
    priority: str
    zones: tuple[str, ...]
    scheduled_for: float
    started_at: float | None
    ended_at: float | None
    detail: str | None


_COLUMNS = (
    "id, title, text, category, priority, status, start_local, rrule, exdates, expires_at,"
    " next_run, last_run, duration_s, created_at, updated_at, render_web, created_by,"
    " corrects, follow_kind, ended_at, ended_by, stopped_at"
)
_PUBLIC = "published = 1 AND status IN ('scheduled', 'done', 'expired')"
# The partial index broadcasts_occurrence (status != 'preempted') serves this subquery only
# because it repeats the index's condition (SQLite matches terms, not their meaning).
_PLAYED = (
    "(SELECT max(b.started_at) FROM broadcasts b WHERE b.announcement_id = a.id"
    " AND b.status = 'played' AND b.status != 'preempted') AS played_at"
)

#: The newest broadcast's status: a one-off stopped on air is called off in the calendar.
_LAST_BROADCAST = (
    ", (SELECT b.status FROM broadcasts b WHERE b.announcement_id = a.id"
    " AND b.status != 'preempted' ORDER BY b.scheduled_for DESC, b.id DESC LIMIT 1)"
    " AS last_broadcast"
)
#: What a page says beside the row: the title of the one it follows up, who issued it (a
#: person's role, a rule's name).
_FOLLOWS = ", (SELECT o.title FROM announcements o WHERE o.id = a.corrects) AS follows_title"
_ISSUER = (
    ", (SELECT u.role FROM users u WHERE u.username = a.created_by) AS issuer_role"
    ", CASE WHEN a.created_by LIKE 'rule:%' THEN (SELECT json_extract(r.definition, '$.name')"
    " FROM rules r WHERE r.id = substr(a.created_by, 6)) END AS rule_name"
    ", (SELECT u.role FROM users u WHERE u.username = a.ended_by) AS ender_role"
)
#: How many emergencies in force the home page may read (it shows a few, counts the rest).
IN_FORCE_LIMIT = 100


def _select(
    store: Store,
    where: str,
    order: str,
    limit: int,
    params: tuple[Any, ...] = (),
    *,
    public: str = _PUBLIC,
    extra: str = "",
) -> list[Shown]:
    """Published announcements: the rows are chosen first, their last broadcast looked up
    after (in the select list of the sorting query, SQLite would run the subquery for
    every row it sorts, not only for those it keeps)."""
    inner = f"SELECT {_COLUMNS} FROM announcements WHERE {public} {where} ORDER BY {order} LIMIT ?"
    rows = store.query(
        f"SELECT a.*, {_PLAYED}{extra} FROM ({inner}) a ORDER BY {order}", (*params, limit)
    )
    return [_shown(r) for r in rows]


def _local_times(value: str) -> tuple[datetime, ...]:
    return tuple(datetime.fromisoformat(d) for d in json.loads(value))


def _shown(row: Any) -> Shown:
    return Shown(
        id=row["id"],
        title=row["title"],
        text=row["text"],
        category=row["category"],
        priority=row["priority"],
        status=row["status"],
        start_local=datetime.fromisoformat(row["start_local"]),
        rrule=row["rrule"],
        exdates=_local_times(row["exdates"]),
        expires_at=row["expires_at"],
        next_run=row["next_run"],
        last_run=row["last_run"],
        played_at=row["played_at"],
        duration_s=row["duration_s"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        audio=Path(row["render_web"]) if row["render_web"] else None,
        created_by=row["created_by"],
        corrects=row["corrects"],
        follow_kind=row["follow_kind"],
        stopped_at=row["stopped_at"],
        ended_at=row["ended_at"],
        ended_by=row["ended_by"],
        **{k: row[k] for k in _OPTIONAL if k in row.keys()},  # noqa: SIM118
    )


#: Columns some queries add (by name) for what their page shows.
_OPTIONAL = ("last_broadcast", "follows_title", "issuer_role", "rule_name", "ender_role")


def latest(store: Store, limit: int) -> list[Shown]:
    """Newest first: by the last time it went on air, else by when it was written.

    No index orders announcements by that key, and sorting 10,000 rows costs milliseconds
    a page view cannot spend, so the candidates come from two index walks: one that went
    on air ranks by its last broadcast, so it is among the most recently broadcast ones
    (``broadcasts_time``, read backwards); one that never did ranks by its creation, so
    it is among the most recently written ones (rowid order, read backwards). Only those
    are sorted. (The one on air right now may miss the list until it is logged; the "on
    air" card shows it meanwhile.)
    """
    rows = store.query(
        f"""
        SELECT {_COLUMNS}, {_PLAYED}{_LAST_BROADCAST}{_FOLLOWS} FROM announcements a
        WHERE a.rowid IN (
            SELECT * FROM (
                SELECT rowid FROM announcements
                -- "+" keeps the planner off announcements_status: walk the rowids instead
                WHERE +published = 1 AND +status IN ('scheduled', 'done', 'expired')
                ORDER BY rowid DESC LIMIT :n)
            UNION
            SELECT * FROM (
                SELECT DISTINCT c.rowid FROM broadcasts b
                CROSS JOIN announcements c ON c.id = b.announcement_id
                WHERE c.published = 1 AND c.status IN ('scheduled', 'done', 'expired')
                ORDER BY b.scheduled_for DESC LIMIT :n))
        ORDER BY coalesce(last_run, created_at) DESC, id LIMIT :limit
        """,
        {"n": 2 * limit, "limit": limit},
    )
    return [_shown(r) for r in rows]


def upcoming_meetings(store: Store, now: float, limit: int) -> list[Shown]:
    return _select(
        store,
        "AND category = 'meeting' AND status = 'scheduled' AND next_run > ?",
        "next_run, id",
        limit,
        (now,),
    )


def published(store: Store, aid: str) -> Shown | None:
    extra = _LAST_BROADCAST + _FOLLOWS + _ISSUER
    found = _select(store, "AND id = ?", "id", 1, (aid,), extra=extra)
    return found[0] if found else None


def follow_up(store: Store, aid: str) -> Shown | None:
    """The newest published announcement that follows this one up (an all clear...)."""
    found = _select(store, "AND corrects = ?", "created_at DESC, id", 1, (aid,))
    return found[0] if found else None


def in_force(store: Store, now: float, since: float) -> list[Shown]:
    """Emergencies issued from ``since`` on that residents must still heed, newest first:
    not stopped on air (by a person, or a panel's stop: its broadcast ``cancelled``), not
    ended (by the head, or by a rule's clearing announcement), not expired."""
    where = (
        "AND (priority = 'emergency' OR category = 'emergency') AND created_at >= ?"
        " AND ended_at IS NULL AND stopped_at IS NULL AND (expires_at IS NULL OR expires_at > ?)"
        " AND NOT EXISTS (SELECT 1 FROM broadcasts b WHERE b.announcement_id = announcements.id"
        " AND b.status = 'cancelled')"
    )
    return _select(
        store,
        where,
        "created_at DESC, id",
        IN_FORCE_LIMIT,
        (since, now),
        public="published = 1 AND status IN ('scheduled', 'done')",
        extra=_ISSUER,
    )


def for_feed(store: Store, limit: int) -> list[Shown]:
    """The most recently written: rowid order is the order they were written in."""
    newest = (
        "AND rowid IN (SELECT rowid FROM announcements WHERE +published = 1"
        " AND +status IN ('scheduled', 'done', 'expired') ORDER BY rowid DESC LIMIT ?)"
    )
    return _select(store, newest, "created_at DESC, id", limit, (2 * limit,))


def for_calendar(store: Store, since: float, limit: int) -> list[Shown]:
    """What is still to come, and what played, was written or was called off from ``since``
    on. Cancelled items stay (a calendar that already holds them must learn they are off)."""
    return _select(
        store,
        "AND (next_run IS NOT NULL OR coalesce(last_run, updated_at, created_at) >= ?)",
        "start_local, id",
        limit,
        (since,),
        public="published = 1 AND status IN ('scheduled', 'done', 'cancelled')",
        extra=_LAST_BROADCAST,
    )


def aired(store: Store, aid: str, limit: int) -> list[Aired]:
    """An announcement's broadcasts, newest first."""
    rows = store.query(
        "SELECT scheduled_for, started_at, status FROM broadcasts WHERE announcement_id=?"
        " ORDER BY scheduled_for DESC, id DESC LIMIT ?",
        (aid, limit),
    )
    return [Aired(r["scheduled_for"], r["started_at"], r["status"]) for r in rows]


def planned(store: Store) -> list[Planned]:
    """Every announcement still to play, for the week's occurrences."""
    rows = store.query(
        "SELECT id, title, priority, status, start_local, rrule, exdates, expires_at"
        " FROM announcements WHERE status IN ('scheduled', 'draft')"
    )
    return [
        Planned(
            id=r["id"],
            title=r["title"],
            priority=r["priority"],
            status=r["status"],
            start_local=datetime.fromisoformat(r["start_local"]),
            rrule=r["rrule"],
            exdates=_local_times(r["exdates"]),
            expires_at=r["expires_at"],
        )
        for r in rows
    ]


def logged(
    store: Store,
    *,
    since: float | None = None,
    until: float | None = None,
    status: str | None = None,
    limit: int = -1,
    newest_first: bool = True,
) -> list[Logged]:
    """Lines of the playout log scheduled in [since, until), newest first (else in the
    order they were logged)."""
    sql = (
        "SELECT b.*, a.title FROM broadcasts b JOIN announcements a ON a.id = b.announcement_id"
        " WHERE 1=1"
    )
    args: list[Any] = []
    for clause, value in (
        (" AND b.scheduled_for >= ?", since),
        (" AND b.scheduled_for < ?", until),
        (" AND b.status = ?", status),
    ):
        if value is not None:
            sql += clause
            args.append(value)
    order = " ORDER BY b.scheduled_for DESC, b.id DESC" if newest_first else " ORDER BY b.id"
    rows = store.query(sql + order + " LIMIT ?", [*args, limit])
    return [
        Logged(
            announcement_id=r["announcement_id"],
            title=r["title"],
            status=r["status"],
            priority=r["priority"],
            zones=tuple(json.loads(r["zones"])),
            scheduled_for=r["scheduled_for"],
            started_at=r["started_at"],
            ended_at=r["ended_at"],
            detail=r["detail"],
        )
        for r in rows
    ]
