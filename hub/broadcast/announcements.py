"""Broadcast stage, the service: announcements validated, rendered ahead, saved, published.

The village head's request becomes a row in ``announcements`` with its audio
rendered at once (so at the scheduled second only the sink starts); the scheduler
(:mod:`hub.broadcast.schedule`) hands it to the playout when it is due. Every change
is published as :class:`AnnouncementChanged`: the MQTT mirror and the live stream
subscribe, and so does the scheduler (to look again at once).

Threads: ``create``/``update``/``cancel``... run in API worker threads; ``command`` hands
over to the ``announce-cmd`` worker; ``on_broadcast_logged`` runs in the playout or the
scheduler thread. Each uses its own SQLite connection (Store.connection is per thread).
"""

from __future__ import annotations

import json
import logging
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import ValidationError

from audio.errors import AudioError
from audio.render import Rendered
from audio.tts import VOICE_ALIASES
from audio.voices import VoiceEngine
from hub.broadcast.follow_up import FollowKind, follow_up_body, is_emergency
from hub.broadcast.hub_alerts import HubAlerts
from hub.broadcast.meetings import guess_meeting, meeting_cols, stored_meeting
from hub.broadcast.models import (
    Actor,
    AnnouncementError,
    AnnouncementIn,
    AnnouncementPatch,
    changes_json,
)
from hub.broadcast.playout import Playout
from hub.broadcast.recordings import Recordings
from hub.broadcast.recurrence import Recurrence, canonical_rrule, local_naive
from hub.broadcast.render_upkeep import RenderUpkeep
from hub.broadcast.rendering import Renderer
from hub.clock import Clock
from hub.errors import Conflict, Forbidden, HubError, NotFound
from hub.events import BroadcastLogged, Dispatcher
from hub.settings import Settings
from hub.store import Store
from hub.store.announcements import AnnouncementTable, BroadcastLog, Row, is_public

__all__ = ["Actor", "AnnouncementError", "AnnouncementIn", "AnnouncementPatch", "Announcements"]

log = logging.getLogger(__name__)


def _new_id() -> str:
    return secrets.token_hex(6)


@dataclass(frozen=True, slots=True)
class Stop:
    """A person's stop of a broadcast on air, known at once: the playout says it only after
    the amplifier's tail, and the pages must not show a stopped broadcast as on air."""

    announcement_id: str
    started_at: datetime | None
    title: str | None
    at: datetime
    by: str


class Announcements:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Clock,
        *,
        table: AnnouncementTable,
        as_run: BroadcastLog,
        renderer: Renderer,
        playout: Playout,
        alerts: HubAlerts,
        events: Dispatcher,
    ) -> None:
        self.settings, self.store, self.clock = settings, store, clock
        self.table, self.as_run, self.renderer = table, as_run, renderer
        self.playout, self.alerts, self.events = playout, alerts, events
        self.recordings = Recordings(settings, store, clock, table)
        self.upkeep = RenderUpkeep(settings, store, clock, table, renderer, alerts)
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="announce-cmd")
        # An emergency never queues behind a normal command being rendered.
        self._urgent = ThreadPoolExecutor(1, thread_name_prefix="announce-emergency")
        #: The last stop by a person (replaced, never changed: read across threads).
        self.last_stop: Stop | None = None

    @property
    def generation(self) -> int:
        """Moves after every write of announcements or broadcasts: readers' cache key."""
        return self.table.generation

    def stop(self) -> None:
        """The hub is stopping: drop queued commands, end a pre-render early."""
        self.renderer.close()
        self._worker.shutdown(wait=False, cancel_futures=True)
        self._urgent.shutdown(wait=False, cancel_futures=True)

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
        path = self.table.audio_path(audio_id)
        if path is None:
            raise AnnouncementError(f"audio_id: no recording {audio_id!r} (upload it first)")
        return path

    def _row(self, aid: str) -> Row:
        row = self.table.row(aid)
        if row is None:
            raise NotFound(f"no announcement {aid!r}")
        return row

    # -- writes -------------------------------------------------------------------------------
    def _prepare(
        self, body: AnnouncementIn, actor: Actor, *, kept_meeting: str | None = None
    ) -> dict[str, Any]:
        """Validate, render the audio and compute the first run: the row's columns.
        ``kept_meeting``: the stored meeting time, which a change may leave in the past."""
        now = self.clock.now()
        tz = self.settings.tz
        if (body.text is None) == (body.audio_id is None):
            raise AnnouncementError("give either text (read by TTS) or audio_id (a recording)")
        if body.priority == "emergency" and body.rrule:
            raise AnnouncementError("rrule: an emergency plays now, it does not recur")
        zones = self._check_zones(body.zones)
        rrule = canonical_rrule(body.rrule) if body.rrule else None
        grace = timedelta(seconds=self.settings.announcements.grace_s)
        # The models bound the years; an OverflowError here (a zone or an RRULE walking past
        # year 9999) is still the request's fault, never the hub's.
        try:
            start = self._time(body.start_at) if body.start_at else now
            if body.priority == "emergency":
                start = now  # emergencies play at once, whatever start_at says
            start_local = local_naive(start, tz)
            exdates = tuple(local_naive(self._time(d), tz) for d in body.exdates)
            expires = self._time(body.expires_at) if body.expires_at else None
            rec = Recurrence(start_local, tz, rrule, exdates, expires)
            nxt = rec.next_after(now - grace, inclusive=True)
        except OverflowError:
            raise AnnouncementError(
                "start_at, expires_at, exdates or rrule: a time out of range (years 1970-2199)"
            ) from None
        except ValueError as e:
            raise AnnouncementError(str(e)) from None
        if nxt is None:
            raise AnnouncementError("start_at: every occurrence is in the past or expired")
        meeting = meeting_cols(body, tz, now=now, first=nxt, kept=kept_meeting)
        if body.corrects and not self.table.exists(body.corrects):
            raise AnnouncementError(f"corrects: no announcement {body.corrects!r}")
        source = self._audio_path(body.audio_id) if body.audio_id else None
        r = self.renderer
        rendered = r.render(
            r.spec(
                text=body.text,
                source_wav=source,
                voice=body.voice,
                priority=body.priority,
                repeat=body.repeat,
                rate=body.rate,
                sentence_pause_s=body.sentence_pause_s,
            ),
            emergency=body.priority == "emergency",
            keep=self.upkeep.keep(),
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
            "rate": body.rate,
            "sentence_pause_s": body.sentence_pause_s,
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
            **meeting,
        }

    def create(
        self, body: AnnouncementIn, actor: Actor, *, aid: str | None = None
    ) -> dict[str, Any]:
        """Schedule ``body``. An invitation left in the default category becomes a meeting
        when its meeting time is given or can be read in it; the answer's ``guess`` says
        so (and says when it reads as one but could not be made one)."""
        body, guess = guess_meeting(body, self.clock.now(), self.settings.tz)
        cols = self._prepare(body, actor)
        aid = aid or _new_id()
        cols.update(id=aid, created_by=actor.name, created_at=cols["updated_at"])
        # A rule that clears corrects the emergency it raised: that emergency is over.
        corrected = self.table.row(body.corrects) if body.corrects else None
        ends = corrected is not None and is_emergency(corrected) and not corrected["ended_at"]
        if ends:
            cols["follow_kind"] = "all_clear"
        with self.table.write() as conn:
            self.table.insert(conn, cols)
            self.store.audit(
                conn,
                ts=cols["updated_at"],
                actor=actor.name,
                action="announcement.create",
                target=aid,
                detail={
                    "title": body.title,
                    "priority": body.priority,
                    "status": cols["status"],
                    **({"guess": guess} if guess else {}),
                },
            )
            if ends and body.corrects:
                self._end_in(conn, body.corrects, actor, cols["updated_at"], aid, "all_clear")
        if ends and body.corrects:
            self.playout.cancel(body.corrects)
            self.events.publish(self.table.changed(body.corrects))
        made = self._changed(aid)
        return made | {"guess": guess} if guess else made

    def end(
        self, aid: str, actor: Actor, *, kind: FollowKind | None = None, text: str = ""
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The head ends an emergency (it leaves the residents' banner; what is queued of
        it is dropped, what plays is cut), optionally with a follow-up played now and
        linked to it. Returns (the emergency, the follow-up)."""
        row = self._row(aid)
        if not is_emergency(row):
            raise Conflict(f"announcement {aid} is not an emergency: cancel it instead")
        if row["ended_at"] is not None:
            raise Conflict(f"announcement {aid} was ended already by {row['ended_by']}")
        if kind is not None and not text.strip():
            raise AnnouncementError("follow_up.text: say what the loudspeakers should read")
        cols: dict[str, Any] | None = None
        fid = _new_id()
        if kind is not None:
            # Rendered before the transaction: the end and its follow-up commit together.
            cols = self._prepare(follow_up_body(row, kind, text), actor)
            # It plays now without a second person's approval, as the emergency did.
            cols.update(status="scheduled", approved_by=actor.name, follow_kind=kind)
        now = self.clock.now().timestamp()
        with self.table.write() as conn:
            if cols is not None:
                cols.update(id=fid, created_by=actor.name, created_at=cols["updated_at"])
                self.table.insert(conn, cols)
                self.store.audit(
                    conn,
                    ts=now,
                    actor=actor.name,
                    action="announcement.create",
                    target=fid,
                    detail={"title": cols["title"], "priority": "high", "follows": aid},
                )
            self._end_in(conn, aid, actor, now, fid if cols else None, kind)
        self.playout.cancel(aid)
        self.events.publish(self.table.changed(aid))
        follow = self._changed(fid) if cols is not None else None
        return self.get(aid, staff=True) or {}, follow

    def _end_in(
        self,
        conn: Any,
        aid: str,
        actor: Actor,
        now: float,
        follow_up: str | None,
        kind: str | None,
    ) -> None:
        self.table.end(conn, aid, by=actor.name, now=now)
        self.store.audit(
            conn,
            ts=now,
            actor=actor.name,
            action="announcement.end",
            target=aid,
            detail={"follow_up": follow_up, "kind": kind},
        )

    def update(self, aid: str, patch: AnnouncementPatch, actor: Actor) -> dict[str, Any]:
        """Change an announcement; its audio is rendered again and its schedule recomputed."""
        row = self._row(aid)
        if row["status"] in ("cancelled", "done"):
            raise Conflict(f"announcement {aid} is {row['status']}: create a new one")
        changes = patch.model_dump(exclude_unset=True)
        data = self._as_input(row).model_dump()
        data.update(changes)
        # Text and recording exclude each other: giving one drops the other.
        if changes.get("text"):
            data["audio_id"] = None
        if changes.get("audio_id"):
            data["text"] = None
        # No longer a meeting: its time and place go with the category.
        if changes.get("category", "meeting") != "meeting":
            for key in ("meeting_at", "meeting_place"):
                if key not in changes:
                    data[key] = None
        try:
            merged = AnnouncementIn.model_validate(data)
        except ValidationError as e:
            err = e.errors()[0]
            raise AnnouncementError(f"{'.'.join(map(str, err['loc']))}: {err['msg']}") from None
        cols = self._prepare(merged, actor, kept_meeting=row["meeting_local"])
        if row["status"] == "scheduled" and cols["status"] == "draft":
            cols["status"] = "draft"  # a change to an approved one needs approval again
        self.playout.cancel(aid)
        with self.table.write() as conn:
            self.table.update(conn, aid, cols)
            self.store.audit(
                conn,
                ts=cols["updated_at"],
                actor=actor.name,
                action="announcement.update",
                target=aid,
                detail=changes_json(changes),
            )
        return self._changed(aid)

    def _as_input(self, row: Row) -> AnnouncementIn:
        """The stored announcement as a request, unchecked: the merged request is validated
        as a whole (a row written before today's limits is then refused with a reason)."""
        tz = self.settings.tz
        return AnnouncementIn.model_construct(
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
            rate=row["rate"],
            sentence_pause_s=row["sentence_pause_s"],
            corrects=row["corrects"],
            published=bool(row["published"]),
            **stored_meeting(row["meeting_local"], row["meeting_place"], tz),
        )

    def approve(self, aid: str, actor: Actor) -> dict[str, Any]:
        row = self._row(aid)
        if row["status"] != "draft":
            raise Conflict(f"announcement {aid} is {row['status']}, not a draft")
        if row["created_by"] == actor.name:
            raise Forbidden("approval needs a second person")
        now = self.clock.now().timestamp()
        with self.table.write() as conn:
            self.table.approve(conn, aid, by=actor.name, now=now)
            self.store.audit(
                conn, ts=now, actor=actor.name, action="announcement.approve", target=aid
            )
        return self._changed(aid)

    def cancel(self, aid: str, actor: Actor) -> dict[str, Any]:
        row = self._row(aid)
        if row["status"] == "cancelled":
            return self.get(aid, staff=True) or {}
        now = self.clock.now().timestamp()
        with self.table.write() as conn:
            self.table.cancel(conn, aid, now=now)
            self.store.audit(
                conn, ts=now, actor=actor.name, action="announcement.cancel", target=aid
            )
        self.playout.cancel(aid)
        return self._changed(aid)

    def upload(
        self, src: IO[bytes], *, length: int | None, filename: str | None, actor: Actor
    ) -> dict[str, Any]:
        """A recording from a phone, for ``audio_id`` (see :meth:`Recordings.upload`)."""
        return self.recordings.upload(src, length=length, filename=filename, actor=actor)

    def stop_now(self, actor: Actor) -> bool:
        """The head's stop: cut what plays now (audited, whether or not anything played)."""
        on_air = self.playout.state
        stopped = self.playout.stop_current(f"user:{actor.name}")
        if stopped and on_air.state == "playing" and on_air.announcement_id:
            now = self.clock.now()
            self.last_stop = Stop(
                on_air.announcement_id, on_air.started_at, on_air.title, now, actor.name
            )
            self.table.mark_stopped(on_air.announcement_id, by=actor.name, now=now.timestamp())
            self.events.publish(self.table.changed(on_air.announcement_id))
        with self.store.transaction() as conn:
            self.store.audit(
                conn,
                ts=self.clock.now().timestamp(),
                actor=actor.name,
                action="broadcast.stop",
                detail={"stopped": stopped},
            )
        return stopped

    def _changed(self, aid: str) -> dict[str, Any]:
        self.events.publish(self.table.changed(aid))
        return self.get(aid, staff=True) or {}

    # -- reads --------------------------------------------------------------------------------
    def get(self, aid: str, *, staff: bool) -> dict[str, Any] | None:
        return self.table.get(aid, staff=staff)

    def list_all(
        self, *, staff: bool, status: str | None = None, limit: int = 100, upcoming: bool = False
    ) -> list[dict[str, Any]]:
        return self.table.find(staff=staff, status=status, limit=limit, upcoming=upcoming)

    def broadcasts(
        self, *, since: float | None, limit: int, status: str | None = None
    ) -> list[dict[str, Any]]:
        return self.as_run.recent(since=since, limit=limit, status=status)

    def audio_file(
        self, aid: str, *, staff: bool, fmt: Literal["web", "wav"] = "web"
    ) -> Path | None:
        row = self.table.row(aid)
        if row is None or (not staff and not is_public(row)):
            return None
        p = Path(row["render_wav"] if fmt == "wav" else row["render_web"])
        return p if p.exists() else None

    # -- rendering --------------------------------------------------------------------------
    def preview(
        self, text: str, voice: str | None, *, repeat: int = 1, rate: float | None = None
    ) -> Rendered:
        """The compose page's preview: the text as it will sound on the loudspeakers, with
        the chimes, said ``repeat`` times at ``rate`` (see :meth:`Renderer.spec`)."""
        return self.renderer.preview(text, voice, keep=self.upkeep.keep(), repeat=repeat, rate=rate)

    def voices(self) -> list[dict[str, Any]]:
        """Every voice one can choose, the default flagged, each with its state (``ok``, or
        why espeak-ng reads instead): the API's list and the compose page's select."""
        try:
            engine = self.renderer.engine
        except AudioError as e:  # no espeak-ng: the pages still open, and say why
            name, status = "espeak-ng", f"broken: {e}"
        else:
            if isinstance(engine, VoiceEngine):
                return engine.voices()
            name, status = engine.name, "ok"  # an injected engine: the espeak-ng choices
        default = self.settings.audio.voice
        return [
            {
                "id": v,
                "label": v,
                "engine": name,
                "language": "vi",
                "default": v == default,
                "status": status,
            }
            for v in VOICE_ALIASES
        ]

    def prerender(self, items: list[dict[str, Any]]) -> int:
        """The ``prerender`` pass: missing coming audio, then the emergency texts the rules
        may announce (``items``, the most urgent first); see :class:`RenderUpkeep`."""
        return self.upkeep.prerender(items)

    # -- the playout log (playout or scheduler thread) ---------------------------------------
    def on_broadcast_logged(self, ev: BroadcastLogged) -> None:
        """Subscribed to :class:`BroadcastLogged`: a failure raises the hub's alert, and the
        announcement (its last broadcast, maybe its status) is published again."""
        b = ev.broadcast
        if b.status == "failed":
            self.alerts.raise_(
                "playout_failed", "critical", f"broadcast of {b.announcement_id} failed: {b.detail}"
            )
        self.events.publish(self.table.changed(b.announcement_id))

    # -- commands from MQTT, the rules and the panel buttons ----------------------------------
    def command(self, body: dict[str, Any], source: str) -> str:
        """``cmd/announce`` (the broker's ACL decides who may publish it) and the rules:
        rendered off the caller's thread; returns the id the announcement will have."""
        aid = _new_id()
        urgent = body.get("priority") == "emergency" or body.get("category") == "emergency"
        (self._urgent if urgent else self._worker).submit(self._command, dict(body), source, aid)
        return aid

    def _command(self, body: dict[str, Any], source: str, aid: str | None = None) -> None:
        try:
            self.create(AnnouncementIn.model_validate(body), Actor(source, "head"), aid=aid)
        except (ValidationError, HubError, ValueError) as e:
            log.error("refused %s: %s", source, e)
            now = self.clock.now().timestamp()
            with self.store.transaction() as conn:
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
        self._urgent.submit(
            self._command,
            {
                "title": "Khẩn cấp",
                "text": self.settings.announcements.emergency_text,
                "category": "emergency",
                "priority": "emergency",
            },
            "button:panel",
        )
