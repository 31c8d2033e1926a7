"""Broadcast stage, what is kept of a live broadcast: its announcement (category ``live``,
written when it starts, so that the residents' history says "Phát trực tiếp") and, once it is
over, its recording as the announcement's audio (a WAV at the PA's rate and the web copy,
encoded by one ffmpeg run), or the announcement cancelled if nothing went on air. Both
writes are audited (``live.start``, ``live.end``) and announced (``AnnouncementChanged``).

Threads: ``begin`` in the request's worker thread; ``keep`` in ``live-finish``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from audio.live_decode import encode_recording
from audio.render import web_format
from hub.broadcast.models import Actor
from hub.clock import Clock
from hub.events import Dispatcher
from hub.settings import Settings
from hub.store import Store
from hub.store.announcements import AnnouncementTable


class Recorded(Protocol):
    """What the record needs of a live session (:class:`hub.broadcast.live.LiveSession`)."""

    id: str
    actor: Actor
    zones: tuple[str, ...]
    voice_s: float
    recording: Path
    reason: str | None


__all__ = ["CATEGORY", "LiveRecords"]

CATEGORY = "live"


class LiveRecords:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Clock,
        *,
        table: AnnouncementTable,
        events: Dispatcher,
    ) -> None:
        self.settings, self.store, self.clock = settings, store, clock
        self.table, self.events = table, events

    def begin(self, s: Recorded, title: str, published: bool) -> None:
        """The announcement of category ``live``, written when it starts (audited)."""
        now = self.clock.now()
        local = now.astimezone(self.settings.tz).replace(tzinfo=None)
        ts = now.timestamp()
        cols = {
            "id": s.id,
            "title": title,
            "category": CATEGORY,
            "priority": "high",
            "zones": json.dumps(list(s.zones)),
            "start_local": local.isoformat(),
            "status": "done",
            "published": int(published),
            "created_by": s.actor.name,
            "approved_by": s.actor.name,
            "created_at": ts,
            "updated_at": ts,
        }
        with self.table.write() as conn:
            self.table.insert(conn, cols)
            self.store.audit(
                conn,
                ts=ts,
                actor=s.actor.name,
                action="live.start",
                target=s.id,
                detail={"zones": list(s.zones), "title": title},
            )
        self.events.publish(self.table.changed(s.id))

    def keep(self, s: Recorded) -> str | None:
        """The recording becomes the announcement's audio (or, if nothing was said on air,
        the announcement is cancelled); the end is audited. The audio's URL, or None."""
        voice_s = s.voice_s
        cols: dict[str, Any] = {"updated_at": self.clock.now().timestamp()}
        url = None
        if voice_s > 0 and s.recording.exists():
            ext, web_args = web_format()
            wav = self.settings.data_dir / "live" / f"{s.id}.wav"
            web = self.settings.data_dir / "live" / f"{s.id}{ext}"
            encode_recording(
                s.recording, wav, web, pa_rate=self.settings.audio.sample_rate,
                web_args=list(web_args),
            )  # fmt: skip
            s.recording.unlink(missing_ok=True)
            cols.update(render_wav=str(wav), render_web=str(web), duration_s=round(voice_s, 2))
            url = f"/api/announcements/{s.id}/audio"
        else:
            s.recording.unlink(missing_ok=True)
            cols.update(status="cancelled")
        with self.table.write() as conn:
            self.table.update(conn, s.id, cols)
            self.store.audit(
                conn,
                ts=cols["updated_at"],
                actor=s.actor.name,
                action="live.end",
                target=s.id,
                detail={"reason": s.reason, "seconds": round(voice_s, 1)},
            )
        self.events.publish(self.table.changed(s.id))
        return url
