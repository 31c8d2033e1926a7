"""Announcements, recordings, the playout log and the stop button, over HTTP."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import OAuth2PasswordBearer
from pydantic import BaseModel, Field

from hub.api.deps import HubDep, require
from hub.api.errors import documented
from hub.api.schemas import (
    AUDIO,
    AnnouncementOut,
    AudioOut,
    BroadcastOut,
    EndedOut,
    EndIn,
    PlayoutOut,
    StoppedOut,
    json_of,
)
from hub.api.times import parse_time
from hub.broadcast.models import RATE_MAX, RATE_MIN, Actor, AnnouncementIn, AnnouncementPatch
from hub.broadcast.rendering import AUDIO_TYPES
from hub.errors import AuthError
from hub.services.users import User
from hub.wire import playout_json

router = APIRouter(tags=["announcements"])

Head = Annotated[User, Depends(require("head"))]
_optional_bearer = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


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


@router.post(
    "/api/announcements",
    status_code=201,
    response_model=None,
    responses={201: json_of(AnnouncementOut, "Scheduled"), **documented(400, 401, 403, 413, 422)},
)
def create_announcement(hub: HubDep, user: Head, body: AnnouncementIn) -> dict[str, Any]:
    """Schedule an announcement: its audio is rendered now, so it plays on the second.

    A meeting (``category`` meeting) needs ``meeting_at``, its own date and time (no
    offset: the village's time), and takes ``meeting_place``; its invitation is broadcast
    at ``start_at``, before the meeting. With ``category`` left out, an announcement that
    gives ``meeting_at``, or whose title or text reads as an invitation ("kính mời ...
    họp", "họp thôn"...) with a date and time the hub can read ("19h30 thứ Năm 10/12"),
    is made a meeting; the answer's ``guess`` says what was made of it, or, when the time
    could not be read, that it stays a notice and what to send. A category given is never
    changed."""
    return hub.announcements.create(body, _actor(user))


@router.get(
    "/api/announcements",
    response_class=Response,
    responses={
        200: json_of(list[AnnouncementOut]),
        304: {"description": "Unchanged since the ETag sent in If-None-Match"},
        **documented(422),
    },
)
def list_announcements(
    request: Request,
    hub: HubDep,
    staff: MaybeStaff,
    status: Literal["draft", "scheduled", "done", "cancelled"] | None = None,
    upcoming: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Newest first (``upcoming``: soonest first), each with its last broadcast.

    Made once per change: the service's write generation keys a cache of the encoded list
    (every writer of announcements, ``langso announce`` too, goes through the service)."""
    is_staff = staff is not None and staff.has("head")
    service = hub.announcements
    key = (is_staff, status, upcoming, limit, service.generation)
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


@router.get(
    "/api/announcements/{aid}",
    response_model=None,
    responses={200: json_of(AnnouncementOut), **documented(404, 422)},
)
def get_announcement(hub: HubDep, staff: MaybeStaff, aid: str) -> dict[str, Any]:
    a = hub.announcements.get(aid, staff=staff is not None and staff.has("head"))
    if a is None:
        raise HTTPException(404, f"no announcement {aid!r}")
    return a


@router.patch(
    "/api/announcements/{aid}",
    response_model=None,
    responses={200: json_of(AnnouncementOut), **documented(400, 401, 403, 404, 409, 413, 422)},
)
def patch_announcement(
    hub: HubDep, user: Head, aid: str, patch: AnnouncementPatch
) -> dict[str, Any]:
    """Change an announcement (its audio is rendered again). A category other than meeting
    drops the meeting's time and place; ``meeting_at`` is refused on anything but a
    meeting."""
    return hub.announcements.update(aid, patch, _actor(user))


@router.delete(
    "/api/announcements/{aid}",
    response_model=None,
    responses={200: json_of(AnnouncementOut, "Cancelled"), **documented(401, 403, 404, 422)},
)
def cancel_announcement(hub: HubDep, user: Head, aid: str) -> dict[str, Any]:
    return hub.announcements.cancel(aid, _actor(user))


@router.post(
    "/api/announcements/{aid}/approve",
    response_model=None,
    responses={200: json_of(AnnouncementOut), **documented(401, 403, 404, 409, 422)},
)
def approve_announcement(hub: HubDep, user: Head, aid: str) -> dict[str, Any]:
    """Second-person approval (when announcements.require_approval is on)."""
    return hub.announcements.approve(aid, _actor(user))


@router.post(
    "/api/announcements/{aid}/end",
    response_model=None,
    responses={200: json_of(EndedOut, "Ended"), **documented(400, 401, 403, 404, 409, 413, 422)},
)
def end_announcement(hub: HubDep, user: Head, aid: str, body: EndIn) -> dict[str, Any]:
    """End an emergency: it leaves the residents' banner at once (kept, marked, in the
    lists); ``follow_up`` (an all clear or a correction) plays now, linked to it."""
    f = body.follow_up
    ended, follow = hub.announcements.end(
        aid, _actor(user), kind=f.kind if f else None, text=f.text if f else ""
    )
    return {"announcement": ended, "follow_up": follow}


@router.get(
    "/api/announcements/{aid}/audio",
    response_class=FileResponse,
    responses={200: AUDIO, **documented(404, 422)},
)
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


@router.post(
    "/api/audio",
    status_code=201,
    response_model=None,
    responses={201: json_of(AudioOut, "Stored"), **documented(400, 401, 403, 413, 415, 422)},
)
def upload_audio(
    request: Request, hub: HubDep, user: Head, file: Annotated[UploadFile, File()]
) -> dict[str, Any]:
    """A recording from a phone: mp3, m4a/AAC, AMR, ogg/opus, webm/opus or wav."""
    length = request.headers.get("content-length")
    return hub.announcements.upload(
        file.file,
        length=int(length) if length and length.isdigit() else None,
        filename=file.filename,
        actor=_actor(user),
    )


class PreviewIn(BaseModel):
    text: str = Field(min_length=1, max_length=2000)
    voice: str | None = Field(None, max_length=40, description="An id from GET /api/voices.")
    repeat: int = Field(1, ge=1, le=5, description="Times it is said, as it will be broadcast.")
    rate: float | None = Field(
        None, ge=RATE_MIN, le=RATE_MAX, description="The announcement's speaking rate."
    )


@router.post(
    "/api/tts/preview",
    response_class=FileResponse,
    responses={200: AUDIO, **documented(400, 401, 403, 413, 422)},
)
def tts_preview(hub: HubDep, user: Head, body: PreviewIn) -> FileResponse:
    """Listen before scheduling: the text as it will sound (normalised, the voice and its
    rate, the pauses, said ``repeat`` times between the chimes, loudness).
    ``X-Duration-S`` says how long it is."""
    r = hub.announcements.preview(body.text, body.voice, repeat=body.repeat, rate=body.rate)
    return FileResponse(
        r.web_path,
        media_type=AUDIO_TYPES.get(r.web_path.suffix, "audio/ogg"),
        headers={"X-Duration-S": f"{r.duration_s:.2f}"},
    )


@router.get(
    "/api/broadcasts",
    response_model=None,
    responses={200: json_of(list[BroadcastOut]), **documented(422)},
)
def list_broadcasts(
    hub: HubDep,
    since: str | None = None,
    status: Literal["played", "missed", "preempted", "failed", "cancelled", "interrupted"]
    | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> list[dict[str, Any]]:
    """The playout log (as-run report), newest first."""
    return hub.announcements.broadcasts(
        since=parse_time(since, "since", hub.settings.tz), limit=limit, status=status
    )


@router.post(
    "/api/broadcasts/stop",
    response_model=None,
    responses={200: json_of(StoppedOut), **documented(401, 403)},
)
def stop_broadcast(hub: HubDep, user: Head) -> JSONResponse:
    stopped = hub.announcements.stop_now(_actor(user))
    return JSONResponse({"stopped": stopped})


@router.get("/api/playout", response_model=None, responses={200: json_of(PlayoutOut)})
def playout_state(hub: HubDep) -> dict[str, Any]:
    """On air now, and the queue."""
    # The queue as it is now (the state's own is as of its last change).
    queue = tuple(j.announcement_id for j in hub.playout.pending)
    return playout_json(replace(hub.playout.state, queue=queue))
