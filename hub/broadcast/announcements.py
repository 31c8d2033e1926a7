"""Announcements: validate, render ahead, persist, schedule, and mirror to MQTT.

The village head's request becomes a row in ``announcements`` with its audio
rendered at once (so at the scheduled second only the sink starts). The
scheduler thread hands each due occurrence to the playout a little before its
instant and logs what it could not play (``missed``) after downtime.

Threads: ``create``/``update``/``cancel`` run in API worker threads or the CLI;
the scheduler in its own ``scheduler`` thread; ``_on_broadcast`` in the playout
thread. Each uses its own SQLite connection (Store.connection is per thread).
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from audio.render import Rendered, RenderSpec, render
from audio.tts import TTSEngine
from hub.broadcast.playout import Job, Playout, PlayoutState
from hub.broadcast.recurrence import Recurrence, canonical_rrule, local_naive, misfire
from hub.clock import Clock, utc_iso
from hub.events import Broadcast
from hub.settings import Settings
from hub.store import Store

log = logging.getLogger(__name__)

Category = Literal["notice", "news", "meeting", "emergency"]
Priority = Literal["normal", "high", "emergency"]
#: The scheduler hands an occurrence to the playout this long before its lead-in.
HANDOFF_S = 2.0
#: The scheduler looks at the table at least this often (the CLI writes to it directly).
POLL_S = 1.0


class AnnouncementError(ValueError):
    """A request that cannot be honoured; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


class AnnouncementIn(BaseModel):
    """Body of ``POST /api/announcements`` (and of the MQTT ``cmd/announce`` topic)."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200, description="Short title shown to all.")
    text: str | None = Field(None, max_length=5000, description="Text read by TTS.")
    audio_id: str | None = Field(None, description="A recording from POST /api/audio.")
    category: Category = Field("notice", description="notice, news, meeting or emergency.")
    priority: Priority = Field("normal", description="normal, high or emergency.")
    zones: list[str] = Field(default_factory=lambda: ["all"], min_length=1, max_length=32)
    start_at: datetime | None = Field(
        None, description="First broadcast; no offset = village time; none = now."
    )
    rrule: str | None = Field(None, max_length=500, description="RFC 5545 RRULE.")
    exdates: list[datetime] = Field(default_factory=list, max_length=366)
    repeat: int = Field(1, ge=1, le=5, description="Times the message is said per broadcast.")
    expires_at: datetime | None = Field(None, description="Nothing plays at or after it.")
    voice: str | None = Field(None, max_length=40, description="north, central or south.")
    corrects: str | None = Field(None, description="The emergency this one corrects/cancels.")
    published: bool = Field(True, description="Shown on the residents' page.")

    @field_validator("text")
    @classmethod
    def _text(cls, v: str | None) -> str | None:
        return v.strip() if v is not None and v.strip() else None


class AnnouncementPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(None, min_length=1, max_length=200)
    text: str | None = Field(None, max_length=5000)
    audio_id: str | None = None
    category: Category | None = None
    priority: Priority | None = None
    zones: list[str] | None = Field(None, min_length=1, max_length=32)
    start_at: datetime | None = None
    rrule: str | None = Field(None, max_length=500)
    exdates: list[datetime] | None = Field(None, max_length=366)
    repeat: int | None = Field(None, ge=1, le=5)
    expires_at: datetime | None = None
    voice: str | None = Field(None, max_length=40)
    published: bool | None = None


@dataclass(frozen=True, slots=True)
class Actor:
    name: str
    role: str


def _new_id() -> str:
    return secrets.token_hex(6)


class Announcements:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Clock,
        *,
        engine_factory: Callable[[], TTSEngine],
        playout: Playout,
        publish: Callable[[str, bytes, bool], None],
        notify: Callable[[str, dict[str, Any]], None] = lambda kind, data: None,
        clock_synced: Callable[[], bool | None] = lambda: True,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self._engine_factory = engine_factory
        self._engine: TTSEngine | None = None
        self.playout = playout
        self._publish = publish
        self.notify = notify
        self._clock_synced = clock_synced
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.render_lock = threading.Lock()  # one render at a time; retention takes it too
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="announce-cmd")
        self.clock_alert: str | None = None
        #: Bumped after every commit of this service: readers key their caches on it.
        self.generation = 0
        self.audio_dir = settings.data_dir / "audio"
        self.cache_dir = settings.data_dir / "render"

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self.store.transaction() as conn:
            yield conn
        self.generation += 1

    # -- paths and rendering ------------------------------------------------------------
    @property
    def engine(self) -> TTSEngine:
        if self._engine is None:
            self._engine = self._engine_factory()
        return self._engine

    def _chime(self) -> bool | Path:
        c = self.settings.audio.chime
        return {"generated": True, "none": False}.get(c, Path(c))

    def render_spec(
        self,
        *,
        text: str | None,
        source_wav: Path | None,
        voice: str | None,
        priority: str,
        repeat: int,
    ) -> RenderSpec:
        a = self.settings.audio
        emergency = priority == "emergency"
        return RenderSpec(
            text=text,
            source_wav=source_wav,
            voice=voice or a.voice,
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

    def _render(self, spec: RenderSpec) -> Rendered:
        # One render at a time: two espeak-ng + ffmpeg pipelines at once would starve the
        # ingest writer on a 2-core Pi.
        with self.render_lock:
            return render(spec, self.engine if spec.text else None, self.cache_dir)

    def prerender(self, items: list[dict[str, Any]]) -> int:
        """Render announcements a rule may make, ahead (the render cache keeps them)."""
        done = 0
        for item in items:
            if self._stop.is_set():
                break
            try:
                self._render(
                    self.render_spec(
                        text=item["text"],
                        source_wav=None,
                        voice=None,
                        priority=item["priority"],
                        repeat=item["repeat"],
                    )
                )
                done += 1
            except Exception:
                log.exception("pre-rendering %r failed", item["text"][:60])
        return done

    def preview(self, text: str, voice: str | None) -> Rendered:
        """TTS preview for the compose page: the text as it will sound, said once."""
        return self._render(
            self.render_spec(text=text, source_wav=None, voice=voice, priority="normal", repeat=1)
        )

    # -- validation -------------------------------------------------------------------------
    def _time(self, value: datetime) -> datetime:
        """Request times honour an offset; a time without one is the village's local time."""
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.settings.tz)
        return value.astimezone(UTC)

    def _check_zones(self, zones: list[str]) -> list[str]:
        known = set(self.settings.gpio.zones)
        if "all" in zones:
            return ["all"]
        bad = [z for z in zones if z not in known]
        if bad:
            raise AnnouncementError(
                f"zones: unknown zone {bad[0]!r}; zones are all, {', '.join(sorted(known))}"
            )
        return sorted(set(zones))

    def _audio_path(self, audio_id: str) -> Path:
        row = self.store.one("SELECT path FROM audio_assets WHERE id=?", (audio_id,))
        if row is None:
            raise AnnouncementError(f"audio_id: no recording {audio_id!r} (upload it first)")
        return Path(row["path"])

    # -- writes -------------------------------------------------------------------------------
    def _prepare(self, body: AnnouncementIn, actor: Actor) -> dict[str, Any]:
        """Validate, render the audio and compute the first run: the row's columns."""
        now = self.clock.now()
        if (body.text is None) == (body.audio_id is None):
            raise AnnouncementError("give either text (read by TTS) or audio_id (a recording)")
        if body.priority == "emergency" and body.rrule:
            raise AnnouncementError("rrule: an emergency plays now, it does not recur")
        zones = self._check_zones(body.zones)
        start = self._time(body.start_at) if body.start_at else now
        if body.priority == "emergency":
            start = now  # emergencies play at once, whatever start_at says
        start_local = local_naive(start, self.settings.tz)
        rrule = canonical_rrule(body.rrule) if body.rrule else None
        exdates = tuple(local_naive(self._time(d), self.settings.tz) for d in body.exdates)
        expires = self._time(body.expires_at) if body.expires_at else None
        try:
            rec = Recurrence(start_local, self.settings.tz, rrule, exdates, expires)
        except ValueError as e:
            raise AnnouncementError(str(e)) from None
        grace = timedelta(seconds=self.settings.announcements.grace_s)
        nxt = rec.next_after(now - grace, inclusive=True)
        if nxt is None:
            raise AnnouncementError("start_at: every occurrence is in the past or expired")
        if (
            body.corrects
            and self.store.one("SELECT 1 FROM announcements WHERE id=?", (body.corrects,)) is None
        ):
            raise AnnouncementError(f"corrects: no announcement {body.corrects!r}")
        source = self._audio_path(body.audio_id) if body.audio_id else None
        rendered = self._render(
            self.render_spec(
                text=body.text,
                source_wav=source,
                voice=body.voice,
                priority=body.priority,
                repeat=body.repeat,
            )
        )
        needs_approval = (
            self.settings.announcements.require_approval
            and body.priority != "emergency"
            and actor.role != "system"
        )
        return {
            "title": body.title,
            "text": body.text,
            "audio_id": body.audio_id,
            "category": body.category,
            "priority": body.priority,
            "zones": json.dumps(zones),
            "start_local": start_local.isoformat(),
            "rrule": rrule,
            "exdates": json.dumps([d.isoformat() for d in exdates]),
            "repeat": body.repeat,
            "expires_at": expires.timestamp() if expires else None,
            "voice": body.voice,
            "status": "draft" if needs_approval else "scheduled",
            "corrects": body.corrects,
            "published": int(body.published),
            "render_wav": str(rendered.wav_path),
            "render_web": str(rendered.web_path),
            "render_sha": rendered.sha256,
            "duration_s": rendered.duration_s,
            "next_run": nxt.timestamp(),
            "last_run": None,
            "approved_by": None if needs_approval else actor.name,
            "updated_at": now.timestamp(),
        }

    def create(
        self, body: AnnouncementIn, actor: Actor, *, aid: str | None = None
    ) -> dict[str, Any]:
        cols = self._prepare(body, actor)
        aid = aid or _new_id()
        cols.update(id=aid, created_by=actor.name, created_at=cols["updated_at"])
        with self._write() as conn:
            conn.execute(
                f"INSERT INTO announcements({', '.join(cols)}) VALUES"
                f" ({', '.join('?' * len(cols))})",
                list(cols.values()),
            )
            self.store.audit(
                conn,
                ts=cols["updated_at"],
                actor=actor.name,
                action="announcement.create",
                target=aid,
                detail={"title": body.title, "priority": body.priority, "status": cols["status"]},
            )
        self._changed(aid)
        return self.get(aid, staff=True) or {}

    def update(self, aid: str, patch: AnnouncementPatch, actor: Actor) -> dict[str, Any]:
        """Change an announcement; its audio is rendered again and its schedule recomputed."""
        row = self.store.one("SELECT * FROM announcements WHERE id=?", (aid,))
        if row is None:
            raise AnnouncementError(f"no announcement {aid!r}", 404)
        if row["status"] in ("cancelled", "done"):
            raise AnnouncementError(f"announcement {aid} is {row['status']}: create a new one", 409)
        changes = patch.model_dump(exclude_unset=True)
        data = self._as_input(row).model_dump()
        data.update(changes)
        # Text and recording exclude each other: giving one drops the other.
        if changes.get("text"):
            data["audio_id"] = None
        if changes.get("audio_id"):
            data["text"] = None
        try:
            merged = AnnouncementIn.model_validate(data)
        except ValidationError as e:
            err = e.errors()[0]
            raise AnnouncementError(f"{'.'.join(map(str, err['loc']))}: {err['msg']}") from None
        cols = self._prepare(merged, actor)
        if row["status"] == "scheduled" and cols["status"] == "draft":
            cols["status"] = "draft"  # a change to an approved one needs approval again
        self.playout.cancel(aid)
        with self._write() as conn:
            conn.execute(
                f"UPDATE announcements SET {', '.join(f'{c}=?' for c in cols)} WHERE id=?",
                [*cols.values(), aid],
            )
            self.store.audit(
                conn,
                ts=cols["updated_at"],
                actor=actor.name,
                action="announcement.update",
                target=aid,
                detail=changes_json(changes),
            )
        self._changed(aid)
        return self.get(aid, staff=True) or {}

    def _as_input(self, row: Any) -> AnnouncementIn:
        tz = self.settings.tz
        return AnnouncementIn(
            title=row["title"],
            text=row["text"],
            audio_id=row["audio_id"],
            category=row["category"],
            priority=row["priority"],
            zones=json.loads(row["zones"]),
            start_at=datetime.fromisoformat(row["start_local"]).replace(tzinfo=tz),
            rrule=row["rrule"],
            exdates=[
                datetime.fromisoformat(d).replace(tzinfo=tz) for d in json.loads(row["exdates"])
            ],
            repeat=row["repeat"],
            expires_at=datetime.fromtimestamp(row["expires_at"], UTC)
            if row["expires_at"]
            else None,
            voice=row["voice"],
            corrects=row["corrects"],
            published=bool(row["published"]),
        )

    def approve(self, aid: str, actor: Actor) -> dict[str, Any]:
        row = self.store.one("SELECT status, created_by FROM announcements WHERE id=?", (aid,))
        if row is None:
            raise AnnouncementError(f"no announcement {aid!r}", 404)
        if row["status"] != "draft":
            raise AnnouncementError(f"announcement {aid} is {row['status']}, not a draft", 409)
        if row["created_by"] == actor.name:
            raise AnnouncementError("approval needs a second person", 403)
        now = self.clock.now().timestamp()
        with self._write() as conn:
            conn.execute(
                "UPDATE announcements SET status='scheduled', approved_by=?, updated_at=?"
                " WHERE id=?",
                (actor.name, now, aid),
            )
            self.store.audit(
                conn, ts=now, actor=actor.name, action="announcement.approve", target=aid
            )
        self._changed(aid)
        return self.get(aid, staff=True) or {}

    def cancel(self, aid: str, actor: Actor) -> dict[str, Any]:
        row = self.store.one("SELECT status FROM announcements WHERE id=?", (aid,))
        if row is None:
            raise AnnouncementError(f"no announcement {aid!r}", 404)
        if row["status"] == "cancelled":
            return self.get(aid, staff=True) or {}
        now = self.clock.now().timestamp()
        with self._write() as conn:
            conn.execute(
                "UPDATE announcements SET status='cancelled', next_run=NULL, updated_at=?"
                " WHERE id=?",
                (now, aid),
            )
            self.store.audit(
                conn, ts=now, actor=actor.name, action="announcement.cancel", target=aid
            )
        self.playout.cancel(aid)
        self._changed(aid)
        return self.get(aid, staff=True) or {}

    def add_audio(
        self,
        wav: Path,
        *,
        duration_s: float,
        sha256: str,
        original: str | None,
        codec: str | None,
        actor: Actor,
    ) -> dict[str, Any]:
        aid = _new_id()
        dest = self.audio_dir / f"{aid}.wav"
        self.audio_dir.mkdir(parents=True, exist_ok=True)
        wav.replace(dest)
        now = self.clock.now().timestamp()
        with self._write() as conn:
            conn.execute(
                "INSERT INTO audio_assets(id, kind, path, sha256, duration_s, original_name,"
                " codec, created_at, created_by) VALUES (?,?,?,?,?,?,?,?,?)",
                (aid, "upload", str(dest), sha256, duration_s, original, codec, now, actor.name),
            )
            self.store.audit(
                conn,
                ts=now,
                actor=actor.name,
                action="audio.upload",
                target=aid,
                detail={"name": original, "duration_s": round(duration_s, 2)},
            )
        return {"id": aid, "duration_s": round(duration_s, 2)}

    def _changed(self, aid: str) -> None:
        self._wake.set()
        self._mirror(aid)

    # -- reads --------------------------------------------------------------------------------
    def get(self, aid: str, *, staff: bool) -> dict[str, Any] | None:
        row = self.store.one("SELECT * FROM announcements WHERE id=?", (aid,))
        if row is None or (not staff and not _public(row)):
            return None
        return self._json(row, staff=staff)

    def list_all(
        self, *, staff: bool, status: str | None = None, limit: int = 100, upcoming: bool = False
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
        return [self._json(r, staff=staff) for r in self.store.query(sql, [*args, limit])]

    def _json(self, row: Any, *, staff: bool) -> dict[str, Any]:
        last = self.store.one(
            "SELECT * FROM broadcasts WHERE announcement_id=? ORDER BY scheduled_for DESC,"
            " id DESC LIMIT 1",
            (row["id"],),
        )
        tz = self.settings.tz
        start = datetime.fromisoformat(row["start_local"]).replace(tzinfo=tz)
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
            "expires_at": _iso(row["expires_at"]),
            "status": row["status"],
            "corrects": row["corrects"],
            "next_run": _iso(row["next_run"]),
            "duration_s": row["duration_s"],
            "audio_url": f"/api/announcements/{row['id']}/audio",
            "created_at": _iso(row["created_at"]),
            "last_broadcast": _broadcast_json(last) if last else None,
        }
        if staff:
            out.update(
                voice=row["voice"],
                published=bool(row["published"]),
                created_by=row["created_by"],
                approved_by=row["approved_by"],
            )
        return out

    def broadcasts(
        self, *, since: float | None, limit: int, status: str | None = None
    ) -> list[dict[str, Any]]:
        sql = (
            "SELECT b.*, a.title FROM broadcasts b JOIN announcements a ON a.id ="
            " b.announcement_id WHERE b.scheduled_for >= ?"
        )
        args: list[Any] = [since or 0.0]
        if status:
            sql += " AND b.status=?"
            args.append(status)
        rows = self.store.query(
            sql + " ORDER BY b.scheduled_for DESC, b.id DESC LIMIT ?", [*args, limit]
        )
        return [_broadcast_json(r) for r in rows]

    def audio_file(
        self, aid: str, *, staff: bool, fmt: Literal["web", "wav"] = "web"
    ) -> Path | None:
        row = self.store.one("SELECT * FROM announcements WHERE id=?", (aid,))
        if row is None or (not staff and not _public(row)):
            return None
        p = Path(row["render_wav"] if fmt == "wav" else row["render_web"])
        return p if p.exists() else None

    # -- MQTT mirror ------------------------------------------------------------------------
    def _mirror(self, aid: str) -> None:
        a = self.get(aid, staff=False)
        topic = f"village/{self.settings.site}/announcements/{aid}"
        row = self.store.one("SELECT status, published FROM announcements WHERE id=?", (aid,))
        live = row is not None and row["status"] == "scheduled"
        # Retained while scheduled; an empty retained payload clears it when it ends.
        payload = json.dumps(a, ensure_ascii=False).encode() if live and a else b""
        self._publish(topic, payload, True)
        if a is not None:
            self.notify("announcement", a)

    def publish_state(self, state: PlayoutState) -> None:
        body = {
            "state": state.state,
            "announcement_id": state.announcement_id,
            "title": state.title,
            "priority": state.priority,
            "started_at": utc_iso(state.started_at) if state.started_at else None,
            "zones": list(state.zones),
            "queue": list(state.queue),
        }
        self._publish(
            f"village/{self.settings.site}/playout/state",
            json.dumps(body, ensure_ascii=False).encode(),
            True,
        )
        self.notify("playout", body)

    # -- the playout log (playout thread) ---------------------------------------------------
    def on_broadcast(self, b: Broadcast) -> None:
        with self._write() as conn:
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
        if b.status == "failed":
            self._raise_alert(
                "playout_failed", "critical", f"broadcast of {b.announcement_id} failed: {b.detail}"
            )
        self.notify("broadcast", _broadcast_json_from(b))
        self._mirror(b.announcement_id)

    def played_today(self, day_start: datetime) -> int:
        row = self.store.one(
            "SELECT count(*) FROM broadcasts WHERE status='played' AND priority != 'emergency'"
            " AND started_at >= ?",
            (day_start.timestamp(),),
        )
        return int(row[0]) if row else 0

    # -- the scheduler thread -------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        self._recover()
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self._worker.shutdown(wait=False, cancel_futures=True)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        self._wake.set()

    def _recover(self) -> None:
        """After a restart: an occurrence handed to the playout but never logged (the hub
        died in between) plays again if still within the grace period."""
        now = self.clock.now()
        grace = self.settings.announcements.grace_s
        rows = self.store.query(
            "SELECT a.* FROM announcements a WHERE a.last_run IS NOT NULL AND a.status IN"
            " ('scheduled', 'done') AND NOT EXISTS (SELECT 1 FROM broadcasts b WHERE"
            " b.announcement_id = a.id AND b.scheduled_for = a.last_run)"
        )
        for row in rows:
            t = datetime.fromtimestamp(row["last_run"], UTC)
            if (now - t).total_seconds() <= grace:
                self.playout.submit(self._job(row, t))
            else:
                self.on_broadcast(self._missed(row, t, "the hub was down"))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                wait = self._tick()
            except Exception:
                log.exception("scheduler tick failed")
                wait = 5.0
            self.clock.sleep(min(wait, POLL_S), self._wake)

    def _tick(self) -> float:
        a = self.settings.announcements
        if a.require_clock_sync and self._clock_synced() is False:
            if self.clock_alert is None:
                self._raise_alert(
                    "clock_unsynced",
                    "critical",
                    "the system clock is not synchronised (no NTP yet): "
                    "scheduled broadcasts wait until it is",
                )
            return 5.0
        if self.clock_alert is not None:
            self._clear_alert()
        now = self.clock.now()
        lead = self.settings.gpio.lead_in_s + HANDOFF_S
        grace = timedelta(seconds=a.grace_s)
        rows = self.store.query(
            "SELECT * FROM announcements WHERE status='scheduled' AND next_run IS NOT NULL"
            " ORDER BY next_run LIMIT 200"
        )
        wait = 60.0
        for row in rows:
            t = datetime.fromtimestamp(row["next_run"], UTC)
            until = (t - now).total_seconds() - lead
            if until > 0:
                wait = min(wait, until)
                break
            self._fire(row, t, now, grace)
        return wait

    def _fire(self, row: Any, t: datetime, now: datetime, grace: timedelta) -> None:
        rec = self._recurrence(row)
        missed = 0
        while t is not None and misfire(t, now, grace) == "missed":
            if missed < 50:  # a week of hourly announcements missed is logged in part
                self.on_broadcast(self._missed(row, t, "the hub was not running"))
            missed += 1
            t = rec.next_after(t)  # type: ignore[assignment]
        submitted = None
        nxt: datetime | None = t
        if t is not None and (t - now).total_seconds() <= self.settings.gpio.lead_in_s + HANDOFF_S:
            self.playout.submit(self._job(row, t))
            submitted = t
            nxt = rec.next_after(t)
        with self._write() as conn:
            conn.execute(
                "UPDATE announcements SET next_run=?, last_run=COALESCE(?, last_run),"
                " status=CASE WHEN ? IS NULL THEN 'done' ELSE status END WHERE id=?",
                (
                    nxt.timestamp() if nxt else None,
                    submitted.timestamp() if submitted else None,
                    nxt.timestamp() if nxt else None,
                    row["id"],
                ),
            )
        if nxt is None:
            self._mirror(row["id"])

    def _recurrence(self, row: Any) -> Recurrence:
        tz = self.settings.tz
        return Recurrence(
            datetime.fromisoformat(row["start_local"]),
            tz,
            row["rrule"],
            tuple(datetime.fromisoformat(d) for d in json.loads(row["exdates"])),
            datetime.fromtimestamp(row["expires_at"], UTC) if row["expires_at"] else None,
        )

    def _job(self, row: Any, t: datetime) -> Job:
        zones = json.loads(row["zones"])
        return Job(
            row["id"],
            t,
            row["priority"],
            Path(row["render_wav"]),
            row["duration_s"],
            tuple(zones),
            row["title"],
        )

    def _missed(self, row: Any, t: datetime, why: str) -> Broadcast:
        return Broadcast(
            row["id"], t, "missed", tuple(json.loads(row["zones"])), row["priority"], detail=why
        )

    # -- alerts of the hub itself -----------------------------------------------------------
    def _raise_alert(self, rule: str, severity: str, message: str) -> None:
        aid = _new_id()
        now = self.clock.now().timestamp()
        with self._write() as conn:
            conn.execute(
                "INSERT INTO alerts(id, device_id, rule, severity, state, message, raised_at)"
                " VALUES (?,?,?,?,?,?,?)",
                (aid, "hub", rule, severity, "raised", message, now),
            )
        if rule == "clock_unsynced":
            self.clock_alert = aid
        self._publish_alert(aid)

    def _clear_alert(self) -> None:
        aid, self.clock_alert = self.clock_alert, None
        with self._write() as conn:
            conn.execute(
                "UPDATE alerts SET state='cleared', cleared_at=? WHERE id=?",
                (self.clock.now().timestamp(), aid),
            )
        if aid:
            self._publish_alert(aid)

    def _publish_alert(self, aid: str) -> None:
        row = self.store.one("SELECT * FROM alerts WHERE id=?", (aid,))
        if row is None:
            return
        body = {
            "id": aid,
            "device_id": row["device_id"],
            "rule": row["rule"],
            "severity": row["severity"],
            "state": row["state"],
            "message": row["message"],
            "raised_at": _iso(row["raised_at"]),
            "cleared_at": _iso(row["cleared_at"]),
        }
        self._publish(
            f"village/{self.settings.site}/alerts/{aid}",
            json.dumps(body, ensure_ascii=False).encode(),
            False,
        )
        self.notify("alert", body)

    # -- commands from MQTT and the panel buttons -----------------------------------------
    def command(self, body: dict[str, Any], source: str) -> str:
        """``cmd/announce`` (the broker's ACL decides who may publish it) and the rules:
        rendered off the caller's thread; returns the id the announcement will have."""
        aid = _new_id()
        self._worker.submit(self._command, dict(body), source, aid)
        return aid

    def _command(self, body: dict[str, Any], source: str, aid: str | None = None) -> None:
        try:
            self.create(AnnouncementIn.model_validate(body), Actor(source, "head"), aid=aid)
        except (ValidationError, AnnouncementError, ValueError) as e:
            log.error("refused %s: %s", source, e)
            now = self.clock.now().timestamp()
            with self._write() as conn:
                self.store.audit(
                    conn,
                    ts=now,
                    actor=source,
                    action="announcement.refused",
                    detail={"reason": str(e)[:500]},
                )
        except Exception:
            log.exception("announcement from %s failed", source)

    def emergency_button(self) -> None:
        """The panel's emergency button was held: the emergency text, at once."""
        self._worker.submit(
            self._command,
            {
                "title": "Khẩn cấp",
                "text": self.settings.announcements.emergency_text,
                "category": "emergency",
                "priority": "emergency",
            },
            "button:panel",
        )


def changes_json(changes: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in changes.items()}


def _public(row: Any) -> bool:
    return bool(row["published"]) and row["status"] in ("scheduled", "done", "expired")


def _iso(ts: float | None) -> str | None:
    return utc_iso(datetime.fromtimestamp(ts, UTC)) if ts is not None else None


def _broadcast_json(r: Any) -> dict[str, Any]:
    keys = r.keys()
    return {
        "announcement_id": r["announcement_id"],
        "title": r["title"] if "title" in keys else None,
        "scheduled_for": _iso(r["scheduled_for"]),
        "started_at": _iso(r["started_at"]),
        "ended_at": _iso(r["ended_at"]),
        "status": r["status"],
        "zones": json.loads(r["zones"]),
        "priority": r["priority"],
        "detail": r["detail"],
    }


def _broadcast_json_from(b: Broadcast) -> dict[str, Any]:
    return {
        "announcement_id": b.announcement_id,
        "scheduled_for": utc_iso(b.scheduled_for),
        "started_at": utc_iso(b.started_at) if b.started_at else None,
        "ended_at": utc_iso(b.ended_at) if b.ended_at else None,
        "status": b.status,
        "zones": list(b.zones),
        "priority": b.priority,
        "detail": b.detail,
    }
