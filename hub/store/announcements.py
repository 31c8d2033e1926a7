"""Announcements repository: the ``announcements``, ``audio_assets`` and ``broadcasts`` tables.

The broadcast stage writes here (the service in API worker threads, the scheduler in
its thread, the playout log in the playout thread), each through the calling thread's
own connection; the API, the pages and the MQTT mirror read the one JSON shape an
announcement and a broadcast have.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from hub.clock import iso, utc_iso
from hub.events import AnnouncementChanged, Broadcast, Priority
from hub.store import Store
from hub.wire import broadcast_json
from hub.words.schedule import describe_schedule

Row = sqlite3.Row


def is_public(row: Row) -> bool:
    """Residents see what is published and was approved (scheduled, played or expired)."""
    return bool(row["published"]) and row["status"] in ("scheduled", "done", "expired")


def _broadcast(r: Row) -> Broadcast:
    def at(ts: float | None) -> datetime | None:
        return None if ts is None else datetime.fromtimestamp(ts, UTC)

    return Broadcast(
        r["announcement_id"],
        datetime.fromtimestamp(r["scheduled_for"], UTC),
        r["status"],
        tuple(json.loads(r["zones"])),
        r["priority"],
        at(r["started_at"]),
        at(r["ended_at"]),
        r["detail"],
    )


def _broadcast_row_json(r: Row, title: str | None) -> dict[str, Any]:
    """A logged broadcast read back, with its announcement's title (where it is read with it)."""
    return {"announcement_id": r["announcement_id"], "title": title} | broadcast_json(_broadcast(r))


class AnnouncementTable:
    """Reads and writes of announcements and recordings; ``tz`` is the village's."""

    def __init__(self, store: Store, tz: tzinfo) -> None:
        self.store = store
        self.tz = tz
        #: Bumped after every commit here: readers key their caches on it.
        self.generation = 0
        #: Monotonic time of the scheduler's last look at the table (:meth:`due`, once per
        #: turn of its loop): the systemd watchdog's sign that the scheduler makes progress.
        self.looked_at = time.monotonic()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A transaction of the calling thread; the generation moves once it commits."""
        with self.store.transaction() as conn:
            yield conn
        self.generation += 1

    # -- reads ----------------------------------------------------------------------------
    def row(self, aid: str) -> Row | None:
        return self.store.one("SELECT * FROM announcements WHERE id=?", (aid,))

    def exists(self, aid: str) -> bool:
        return self.store.one("SELECT 1 FROM announcements WHERE id=?", (aid,)) is not None

    def audio_path(self, audio_id: str) -> Path | None:
        row = self.store.one("SELECT path FROM audio_assets WHERE id=?", (audio_id,))
        return None if row is None else Path(row["path"])

    def get(self, aid: str, *, staff: bool) -> dict[str, Any] | None:
        row = self.row(aid)
        if row is None or (not staff and not is_public(row)):
            return None
        return self.as_json(row, staff=staff)

    def find(
        self, *, staff: bool, status: str | None, limit: int, upcoming: bool
    ) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM announcements WHERE status != 'replaced'", list[Any]()
        if status:
            sql += " AND status=?"
            args.append(status)
        if not staff:
            # Nearly every row is public: "+status" keeps the planner off
            # announcements_status, so that the newest-first walk of announcements_created
            # stops after `limit` rows instead of sorting the whole table.
            status_term = "status" if upcoming else "+status"
            sql += f" AND published=1 AND {status_term} IN ('scheduled', 'done', 'expired')"
        if upcoming:
            sql += " AND next_run IS NOT NULL ORDER BY next_run LIMIT ?"
        else:
            sql += " ORDER BY created_at DESC LIMIT ?"
        return [self.as_json(r, staff=staff) for r in self.store.query(sql, [*args, limit])]

    def followed_by(self, aid: str) -> str | None:
        """The newest announcement that corrects (or ends) this one: its follow-up."""
        row = self.store.one(
            "SELECT id FROM announcements WHERE corrects=? AND status != 'replaced'"
            " ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (aid,),
        )
        return None if row is None else str(row["id"])

    def changed(self, aid: str) -> AnnouncementChanged:
        """The event telling the mirror and the live stream what residents may now see."""
        row = self.row(aid)
        public = self.as_json(row, staff=False) if row is not None and is_public(row) else None
        return AnnouncementChanged(aid, public, row is not None and row["status"] == "scheduled")

    def due(self, limit: int = 200) -> list[Row]:
        """Scheduled announcements, soonest first (the scheduler's look at the table)."""
        self.looked_at = time.monotonic()
        return self.store.query(
            "SELECT * FROM announcements WHERE status='scheduled' AND next_run IS NOT NULL"
            " ORDER BY next_run LIMIT ?",
            (limit,),
        )

    def handed_over_unlogged(self) -> list[Row]:
        """Occurrences handed to the playout but never logged: the hub died in between."""
        return self.store.query(
            "SELECT a.* FROM announcements a WHERE a.last_run IS NOT NULL AND a.status IN"
            " ('scheduled', 'done') AND NOT EXISTS (SELECT 1 FROM broadcasts b WHERE"
            " b.announcement_id = a.id AND b.scheduled_for = a.last_run)"
        )

    def as_json(self, row: Row, *, staff: bool) -> dict[str, Any]:
        """An announcement as the API returns it (``staff`` adds who wrote and approved it)."""
        # A row still ``playing`` is not a broadcast logged yet (the playout's state says
        # what is on air): the last broadcast is the last one that ended.
        last = self.store.one(
            "SELECT * FROM broadcasts WHERE announcement_id=? AND status != 'playing'"
            " ORDER BY scheduled_for DESC, id DESC LIMIT 1",
            (row["id"],),
        )
        tz = self.tz
        start_local = datetime.fromisoformat(row["start_local"])
        start = start_local.replace(tzinfo=tz)
        meeting = datetime.fromisoformat(row["meeting_local"]) if row["meeting_local"] else None
        out: dict[str, Any] = {
            "id": row["id"],
            "title": row["title"],
            "text": row["text"],
            "audio_id": row["audio_id"],
            "category": row["category"],
            "priority": row["priority"],
            "zones": json.loads(row["zones"]),
            "start_at": utc_iso(start),
            "rrule": row["rrule"],
            "exdates": [
                utc_iso(datetime.fromisoformat(d).replace(tzinfo=tz))
                for d in json.loads(row["exdates"])
            ],
            "repeat": row["repeat"],
            "expires_at": iso(row["expires_at"]),
            "status": row["status"],
            "corrects": row["corrects"],
            # An emergency in force has neither: stopped on air, or ended by the head.
            "stopped_at": iso(row["stopped_at"]),
            "ended_at": iso(row["ended_at"]),
            "ended_by": row["ended_by"],
            "follow_kind": row["follow_kind"],
            "followed_by": self.followed_by(row["id"]),
            "next_run": iso(row["next_run"]),
            # The schedule in words, as the pages and the calendar say it.
            "schedule_words": {
                lang: describe_schedule(row["rrule"], start_local, lang, voice="public")
                for lang in ("vi", "en")
            },
            # A meeting's own time and place (the broadcast's are start_at, next_run).
            "meeting_at": utc_iso(meeting.replace(tzinfo=tz)) if meeting else None,
            "meeting_place": row["meeting_place"],
            "duration_s": row["duration_s"],
            "audio_url": f"/api/announcements/{row['id']}/audio",
            "created_at": iso(row["created_at"]),
            "last_broadcast": _broadcast_row_json(last, None) if last else None,
        }
        if staff:
            out.update(
                voice=row["voice"],
                rate=row["rate"],
                sentence_pause_s=row["sentence_pause_s"],
                published=bool(row["published"]),
                created_by=row["created_by"],
                approved_by=row["approved_by"],
            )
        return out

    # -- writes, inside the caller's transaction --------------------------------------------
    def insert(self, conn: sqlite3.Connection, cols: dict[str, Any]) -> None:
        conn.execute(
            f"INSERT INTO announcements({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            list(cols.values()),
        )

    def update(self, conn: sqlite3.Connection, aid: str, cols: dict[str, Any]) -> None:
        conn.execute(
            f"UPDATE announcements SET {', '.join(f'{c}=?' for c in cols)} WHERE id=?",
            [*cols.values(), aid],
        )

    def approve(self, conn: sqlite3.Connection, aid: str, *, by: str, now: float) -> None:
        conn.execute(
            "UPDATE announcements SET status='scheduled', approved_by=?, updated_at=? WHERE id=?",
            (by, now, aid),
        )

    def cancel(self, conn: sqlite3.Connection, aid: str, *, now: float) -> None:
        conn.execute(
            "UPDATE announcements SET status='cancelled', next_run=NULL, updated_at=? WHERE id=?",
            (now, aid),
        )

    def end(self, conn: sqlite3.Connection, aid: str, *, by: str, now: float) -> None:
        """No longer in force: ended by ``by``; what was still to play of it is dropped."""
        conn.execute(
            "UPDATE announcements SET ended_at=?, ended_by=?, next_run=NULL, updated_at=?,"
            " status=CASE WHEN status IN ('scheduled', 'draft') THEN 'done' ELSE status END"
            " WHERE id=? AND ended_at IS NULL",
            (now, by, now, aid),
        )

    def mark_stopped(self, aid: str, *, by: str, now: float) -> None:
        """Stopped on air by a person: said at once, before the playout logs it (after the
        amplifier's tail)."""
        with self.write() as conn:
            conn.execute(
                "UPDATE announcements SET stopped_at=?, stopped_by=? WHERE id=?", (now, by, aid)
            )

    def advance(
        self,
        conn: sqlite3.Connection,
        aid: str,
        *,
        next_run: datetime | None,
        handed_over: datetime | None,
    ) -> None:
        """The scheduler moved on: the next occurrence (none: done) and the one it handed
        to the playout (kept as ``last_run`` so that a restart can find it unlogged)."""
        nxt = next_run.timestamp() if next_run else None
        conn.execute(
            "UPDATE announcements SET next_run=?, last_run=COALESCE(?, last_run),"
            " status=CASE WHEN ? IS NULL THEN 'done' ELSE status END WHERE id=?",
            (nxt, handed_over.timestamp() if handed_over else None, nxt, aid),
        )

    def add_audio(
        self,
        conn: sqlite3.Connection,
        aid: str,
        *,
        path: Path,
        sha256: str,
        duration_s: float,
        original: str | None,
        codec: str | None,
        now: float,
        by: str,
    ) -> None:
        conn.execute(
            "INSERT INTO audio_assets(id, kind, path, sha256, duration_s, original_name,"
            " codec, created_at, created_by) VALUES (?,?,?,?,?,?,?,?,?)",
            (aid, "upload", str(path), sha256, duration_s, original, codec, now, by),
        )


#: What a line of the log says when it is a replay of a broadcast a restart cut.
REPLAY_OF = "replay of the broadcast of "


@dataclass(frozen=True, slots=True)
class Cut:
    """A broadcast left ``playing`` by a hub that died on air, now logged ``interrupted``."""

    row_id: int
    announcement_id: str
    scheduled_for: datetime
    priority: Priority
    zones: tuple[str, ...]
    #: How far it got by its last progress mark (None: cut before the first mark).
    played_s: float | None
    duration_s: float
    #: It was itself a replay: it is never replayed again.
    replay: bool
    title: str
    render_wav: str | None
    #: The announcement's status now ('cancelled' ones are not replayed).
    announcement_status: str


class BroadcastLog:
    """The playout log (as-run report): one row per occurrence played, missed or cut.

    A broadcast's row is written ``playing`` before the amplifier goes on (its
    ``ended_at`` is then the last progress mark, rewritten at most every few seconds) and
    finished when it ends; a row still ``playing`` at start is a broadcast a crash or a
    power cut cut short: :meth:`interrupt_left_playing` logs it ``interrupted``.
    """

    def __init__(self, table: AnnouncementTable) -> None:
        # Through the announcements' table: a logged broadcast changes the announcement's
        # JSON (its last broadcast), so the same generation moves.
        self.table = table

    def record(self, b: Broadcast) -> None:
        with self.table.write() as conn:
            _insert(conn, b)

    def begin(
        self,
        announcement_id: str,
        scheduled_for: datetime,
        *,
        zones: Sequence[str],
        priority: str,
        at: datetime,
        detail: str | None,
    ) -> int | None:
        """The row of a broadcast going on air (``playing``); None if the occurrence is
        logged already (the unique index: one row per occurrence but preempted ones)."""
        with self.table.write() as conn:
            row = conn.execute(
                "INSERT INTO broadcasts(announcement_id, scheduled_for, started_at, status,"
                " zones, priority, detail) VALUES (?,?,?,'playing',?,?,?)"
                " ON CONFLICT DO NOTHING RETURNING id",
                (
                    announcement_id,
                    scheduled_for.timestamp(),
                    at.timestamp(),
                    json.dumps(list(zones)),
                    priority,
                    detail,
                ),
            ).fetchone()
        return None if row is None else int(row[0])

    def progress(self, row_id: int, *, started_at: datetime, at: datetime) -> None:
        """How far a broadcast on air got: the sink's start and the latest mark."""
        with self.table.write() as conn:
            conn.execute(
                "UPDATE broadcasts SET started_at=?, ended_at=? WHERE id=? AND status='playing'",
                (started_at.timestamp(), at.timestamp(), row_id),
            )

    def finish(self, row_id: int, b: Broadcast) -> None:
        """The broadcast on air ended as ``b`` says (its row is inserted if it is gone)."""
        with self.table.write() as conn:
            cur = conn.execute(
                "UPDATE broadcasts SET status=?, started_at=?, ended_at=?, detail=? WHERE id=?",
                (
                    b.status,
                    b.started_at.timestamp() if b.started_at else None,
                    b.ended_at.timestamp() if b.ended_at else None,
                    b.detail,
                    row_id,
                ),
            )
            if cur.rowcount == 0:
                _insert(conn, b)

    def interrupt_left_playing(self) -> list[Cut]:
        """At start: rows left ``playing`` (the hub died on air) become ``interrupted``,
        with how far each got, in one transaction."""
        cuts: list[Cut] = []
        with self.table.write() as conn:
            rows = conn.execute(
                "SELECT b.*, a.duration_s AS a_duration, a.title AS a_title, a.render_wav,"
                " a.status AS a_status FROM broadcasts b JOIN announcements a ON a.id ="
                " b.announcement_id WHERE b.status='playing' ORDER BY b.id"
            ).fetchall()
            for r in rows:
                played = (
                    None
                    if r["ended_at"] is None or r["started_at"] is None
                    else max(0.0, r["ended_at"] - r["started_at"])
                )
                duration = float(r["a_duration"] or 0.0)
                conn.execute(
                    "UPDATE broadcasts SET status='interrupted', detail=? WHERE id=?",
                    (_cut_detail(played, duration, r["detail"]), r["id"]),
                )
                cuts.append(
                    Cut(
                        r["id"],
                        r["announcement_id"],
                        datetime.fromtimestamp(r["scheduled_for"], UTC),
                        r["priority"],
                        tuple(json.loads(r["zones"])),
                        played,
                        duration,
                        bool(r["detail"] and REPLAY_OF in r["detail"]),
                        r["a_title"],
                        r["render_wav"],
                        r["a_status"],
                    )
                )
        return cuts

    def logged(self, row_id: int) -> Broadcast | None:
        """One line of the log as it is stored."""
        row = self.table.store.one("SELECT * FROM broadcasts WHERE id=?", (row_id,))
        return None if row is None else _broadcast(row)

    def played_today(self, day_start: datetime) -> int:
        """Normal and priority broadcasts played since ``day_start`` (the daily cap)."""
        row = self.table.store.one(
            "SELECT count(*) FROM broadcasts WHERE status='played' AND priority != 'emergency'"
            " AND started_at >= ?",
            (day_start.timestamp(),),
        )
        return int(row[0]) if row else 0

    def recent(
        self, *, since: float | None, limit: int, status: str | None
    ) -> list[dict[str, Any]]:
        """Newest first, each with its announcement's title; what is on air now (its row
        still ``playing``) is the playout's state, not yet a line of the log."""
        sql = (
            "SELECT b.*, a.title FROM broadcasts b JOIN announcements a ON a.id ="
            " b.announcement_id WHERE b.scheduled_for >= ? AND b.status != 'playing'"
        )
        args: list[Any] = [since or 0.0]
        if status:
            sql += " AND b.status=?"
            args.append(status)
        rows = self.table.store.query(
            sql + " ORDER BY b.scheduled_for DESC, b.id DESC LIMIT ?", [*args, limit]
        )
        return [_broadcast_row_json(r, r["title"]) for r in rows]


def _insert(conn: sqlite3.Connection, b: Broadcast) -> None:
    conn.execute(
        "INSERT INTO broadcasts(announcement_id, scheduled_for, started_at, ended_at,"
        " status, zones, priority, detail) VALUES (?,?,?,?,?,?,?,?)"
        " ON CONFLICT DO NOTHING",
        (
            b.announcement_id,
            b.scheduled_for.timestamp(),
            b.started_at.timestamp() if b.started_at else None,
            b.ended_at.timestamp() if b.ended_at else None,
            b.status,
            json.dumps(list(b.zones)),
            b.priority,
            b.detail,
        ),
    )


def _cut_detail(played: float | None, duration: float, detail: str | None) -> str:
    """How far it got (``cut after ~20 s of 41 s``), and what the row said before (a
    replay says so)."""
    total = f"{duration:.0f} s"
    what = (
        f"cut in its first seconds, of {total}"
        if played is None
        else f"cut after ~{played:.0f} s of {total}"
    )
    return f"{what}; {detail}" if detail else what
