"""Announcements, recordings, the playout log and the stop button, over HTTP."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import OAuth2PasswordBearer
from pydantic import BaseModel, Field

from audio.decode import decode_upload
from audio.errors import AudioError
from hub.api.deps import HubDep, parse_time, require
from hub.broadcast.announcements import Actor, AnnouncementError, AnnouncementIn, AnnouncementPatch
from hub.errors import AuthError
from hub.services.users import User

router = APIRouter(tags=["announcements"])

Head = Annotated[User, Depends(require("head"))]
_optional_bearer = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)

AUDIO_TYPES = {".ogg": "audio/ogg", ".opus": "audio/ogg", ".mp3": "audio/mpeg", ".wav": "audio/wav"}


def _staff(hub: HubDep, token: Annotated[str | None, Depends(_optional_bearer)]) -> User | None:
    """Public reads show more to a signed-in head or admin (drafts, who wrote it)."""
    if not token:
        return None
    try:
        return hub.users.from_token(token, now=hub.clock.now().timestamp())
    except AuthError:
        return None


MaybeStaff = Annotated[User | None, Depends(_staff)]


def _actor(user: User) -> Actor:
    return Actor(user.username, user.role)


def _error(e: AnnouncementError | AudioError) -> HTTPException:
    return HTTPException(getattr(e, "status", 422), str(e))


@router.post("/api/announcements", status_code=201)
def create_announcement(hub: HubDep, user: Head, body: AnnouncementIn) -> dict[str, Any]:
    """Schedule an announcement: its audio is rendered now, so it plays on the second."""
    try:
        return hub.announcements.create(body, _actor(user))
    except (AnnouncementError, AudioError) as e:
        raise _error(e) from None


@router.get("/api/announcements", response_class=Response)
def list_announcements(
    request: Request,
    hub: HubDep,
    staff: MaybeStaff,
    status: Literal["draft", "scheduled", "done", "cancelled"] | None = None,
    upcoming: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Newest first (``upcoming``: soonest first), each with its last broadcast.

    Made once per change: the service's write generation (and the newest rowid, for what
    ``langso announce`` inserts from its own process) key a cache of the encoded list."""
    is_staff = staff is not None and staff.has("head")
    service = hub.announcements
    top = hub.store.one("SELECT max(rowid) FROM announcements")
    key = (is_staff, status, upcoming, limit, service.generation, top[0] if top else None)
    cache: dict[tuple[Any, ...], tuple[bytes, str]]
    cache = request.app.state.__dict__.setdefault("announcements_cache", {})
    hit = cache.get(key)
    if hit is None:
        items = service.list_all(staff=is_staff, status=status, limit=limit, upcoming=upcoming)
        body = json.dumps(items, ensure_ascii=False, separators=(",", ":")).encode()
        hit = (body, '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"')
        if len(cache) >= 64:
            cache.clear()
        cache[key] = hit
    body, etag = hit
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


@router.get("/api/announcements/{aid}")
def get_announcement(hub: HubDep, staff: MaybeStaff, aid: str) -> dict[str, Any]:
    a = hub.announcements.get(aid, staff=staff is not None and staff.has("head"))
    if a is None:
        raise HTTPException(404, f"no announcement {aid!r}")
    return a


@router.patch("/api/announcements/{aid}")
def patch_announcement(
    hub: HubDep, user: Head, aid: str, patch: AnnouncementPatch
) -> dict[str, Any]:
    try:
        return hub.announcements.update(aid, patch, _actor(user))
    except (AnnouncementError, AudioError) as e:
        raise _error(e) from None


@router.delete("/api/announcements/{aid}")
def cancel_announcement(hub: HubDep, user: Head, aid: str) -> dict[str, Any]:
    try:
        return hub.announcements.cancel(aid, _actor(user))
    except AnnouncementError as e:
        raise _error(e) from None


@router.post("/api/announcements/{aid}/approve")
def approve_announcement(hub: HubDep, user: Head, aid: str) -> dict[str, Any]:
    """Second-person approval (when announcements.require_approval is on)."""
    try:
        return hub.announcements.approve(aid, _actor(user))
    except AnnouncementError as e:
        raise _error(e) from None


@router.get("/api/announcements/{aid}/audio", response_class=FileResponse)
def announcement_audio(
    hub: HubDep, staff: MaybeStaff, aid: str, format: Literal["web", "wav"] = "web"
) -> FileResponse:
    path = hub.announcements.audio_file(
        aid, staff=staff is not None and staff.has("head"), fmt=format
    )
    if path is None:
        raise HTTPException(404, f"no audio for announcement {aid!r}")
    return FileResponse(
        path,
        media_type=AUDIO_TYPES.get(path.suffix, "application/octet-stream"),
        filename=f"{aid}{path.suffix}",
    )


@router.post("/api/audio", status_code=201)
def upload_audio(
    request: Request, hub: HubDep, user: Head, file: Annotated[UploadFile, File()]
) -> dict[str, Any]:
    """A recording from a phone: mp3, m4a/AAC, AMR, ogg/opus, webm/opus or wav."""
    a = hub.settings.audio
    limit = int(a.max_upload_mb * 1024 * 1024)
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit + 64 * 1024:
        raise HTTPException(413, f"the recording is larger than {a.max_upload_mb:g} MB")
    with tempfile.TemporaryDirectory(dir=_tmp_dir(hub)) as tmp:
        src = Path(tmp) / "upload"
        digest = hashlib.sha256()
        size = 0
        with src.open("wb") as out:
            while chunk := file.file.read(1 << 16):
                size += len(chunk)
                if size > limit:
                    raise HTTPException(413, f"the recording is larger than {a.max_upload_mb:g} MB")
                digest.update(chunk)
                out.write(chunk)
        dst = Path(tmp) / "decoded.wav"
        try:
            info = decode_upload(
                src, dst, max_bytes=limit, max_seconds=a.max_upload_s, sample_rate=a.sample_rate
            )
        except AudioError as e:
            raise _error(e) from None
        return hub.announcements.add_audio(
            dst,
            duration_s=float(info.duration_s or 0.0),
            sha256=digest.hexdigest(),
            original=(file.filename or "")[:200] or None,
            codec=info.codec,
            actor=_actor(user),
        )


def _tmp_dir(hub: Any) -> Path:
    d: Path = hub.settings.data_dir / "tmp"
    d.mkdir(parents=True, exist_ok=True)
    return d


class PreviewIn(BaseModel):
    text: str = Field(min_length=1, max_length=2000)
    voice: str | None = Field(None, max_length=40)


@router.post("/api/tts/preview", response_class=FileResponse)
def tts_preview(hub: HubDep, user: Head, body: PreviewIn) -> FileResponse:
    """Listen before scheduling: the text as it will sound (normalised, chimes, loudness)."""
    try:
        r = hub.announcements.preview(body.text, body.voice)
    except AudioError as e:
        raise _error(e) from None
    return FileResponse(r.web_path, media_type=AUDIO_TYPES.get(r.web_path.suffix, "audio/ogg"))


@router.get("/api/broadcasts")
def list_broadcasts(
    hub: HubDep,
    since: str | None = None,
    status: Literal["played", "missed", "preempted", "failed", "cancelled"] | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> list[dict[str, Any]]:
    """The playout log (as-run report), newest first."""
    return hub.announcements.broadcasts(
        since=parse_time(since, "since", hub.settings.tz), limit=limit, status=status
    )


@router.post("/api/broadcasts/stop")
def stop_broadcast(hub: HubDep, user: Head) -> JSONResponse:
    stopped = hub.playout.stop_current(f"user:{user.username}")
    with hub.store.transaction() as conn:
        hub.store.audit(
            conn,
            ts=hub.clock.now().timestamp(),
            actor=user.username,
            action="broadcast.stop",
            detail={"stopped": stopped},
        )
    return JSONResponse({"stopped": stopped})


@router.get("/api/playout")
def playout_state(hub: HubDep) -> dict[str, Any]:
    """On air now, and the queue."""
    st = hub.playout.state
    return {
        "state": st.state,
        "announcement_id": st.announcement_id,
        "title": st.title,
        "priority": st.priority,
        "started_at": st.started_at.isoformat().replace("+00:00", "Z") if st.started_at else None,
        "zones": list(st.zones),
        "queue": [j.announcement_id for j in hub.playout.pending],
    }
