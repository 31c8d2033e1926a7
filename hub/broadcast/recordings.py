"""Broadcast stage, recordings: a voice recorded on a phone, kept for announcements.

Runs in the API worker thread of the upload; ffmpeg decodes it there (a few seconds of
audio, under the size and length limits checked first).
"""

from __future__ import annotations

import hashlib
import secrets
import tempfile
from pathlib import Path
from typing import IO, Any

from audio.decode import decode_upload
from hub.broadcast.models import Actor
from hub.broadcast.rendering import audio_refusals
from hub.clock import Clock
from hub.errors import TooLarge
from hub.settings import Settings
from hub.store import Store
from hub.store.announcements import AnnouncementTable


class Recordings:
    def __init__(
        self, settings: Settings, store: Store, clock: Clock, table: AnnouncementTable
    ) -> None:
        self.settings, self.store, self.clock, self.table = settings, store, clock, table
        self.audio_dir = settings.data_dir / "audio"

    def upload(
        self, src: IO[bytes], *, length: int | None, filename: str | None, actor: Actor
    ) -> dict[str, Any]:
        """A recording from a phone (mp3, m4a/AAC, AMR, ogg/opus, webm/opus or wav),
        decoded to the hub's WAV; ``length`` is what the request declared, if anything."""
        a = self.settings.audio
        limit = int(a.max_upload_mb * 1024 * 1024)
        too_large = f"the recording is larger than {a.max_upload_mb:g} MB"
        # A declared size is checked before a byte is read (multipart framing aside).
        if length is not None and length > limit + 64 * 1024:
            raise TooLarge(too_large)
        tmp_root = self.settings.data_dir / "tmp"
        tmp_root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=tmp_root) as tmp:
            raw = Path(tmp) / "upload"
            digest = hashlib.sha256()
            size = 0
            with raw.open("wb") as out:
                while chunk := src.read(1 << 16):
                    size += len(chunk)
                    if size > limit:
                        raise TooLarge(too_large)
                    digest.update(chunk)
                    out.write(chunk)
            wav = Path(tmp) / "decoded.wav"
            with audio_refusals():
                info = decode_upload(
                    raw, wav, max_bytes=limit, max_seconds=a.max_upload_s, sample_rate=a.sample_rate
                )
            return self._add_audio(
                wav,
                duration_s=float(info.duration_s or 0.0),
                sha256=digest.hexdigest(),
                original=(filename or "")[:200] or None,
                codec=info.codec,
                actor=actor,
            )

    def _add_audio(
        self,
        wav: Path,
        *,
        duration_s: float,
        sha256: str,
        original: str | None,
        codec: str | None,
        actor: Actor,
    ) -> dict[str, Any]:
        aid = secrets.token_hex(6)
        dest = self.audio_dir / f"{aid}.wav"
        self.audio_dir.mkdir(parents=True, exist_ok=True)
        wav.replace(dest)
        now = self.clock.now().timestamp()
        with self.table.write() as conn:
            self.table.add_audio(
                conn,
                aid,
                path=dest,
                sha256=sha256,
                duration_s=duration_s,
                original=original,
                codec=codec,
                now=now,
                by=actor.name,
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
