"""The voices one can choose (espeak-ng's and the installed Piper models), and a listen
preview of each, over HTTP: what the compose page's voice select and its listen button use.

The list comes from the renderer's voice engine (``audio/voices.py``), which also says
which Piper voice is failing and why (espeak-ng reads its texts meanwhile). A preview is
rendered like the compose preview (``POST /api/tts/preview``): the same engine, chimes
and loudness, so what one hears is what the loudspeakers will say.
"""

from __future__ import annotations

import math
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from audio.errors import UnknownVoice
from audio.voices import SAMPLE_TEXT
from hub.api.deps import HubDep, require
from hub.api.errors import documented
from hub.api.schemas import AUDIO, json_of
from hub.app import Hub
from hub.broadcast.models import RATE_MAX, RATE_MIN
from hub.broadcast.rendering import AUDIO_TYPES
from hub.errors import NotFound, Throttled
from hub.ratelimit import RateLimiter
from hub.services.users import User

router = APIRouter(tags=["voices"])

Staff = Annotated[User, Depends(require("head", "technician"))]

#: Previews per user: each is a render (a Piper worker: seconds of CPU on a Pi).
LISTEN_LIMIT = 6
LISTEN_WINDOW_S = 60.0
_limiter_lock = threading.Lock()


class VoiceOut(BaseModel):
    id: str = Field(description="What an announcement's `voice` takes: north, piper:NAME...")
    label: str
    engine: str = Field(description="espeak-ng or piper")
    language: str = Field(description="From the model's .onnx.json (vi_VN, en_US...)")
    default: bool = Field(description="The voice of announcements that name none")
    status: str = Field(description="ok, failing: why (espeak-ng reads instead), broken: why")
    sample_rate: int | None = None


class ListenIn(BaseModel):
    text: str | None = Field(
        None, min_length=1, max_length=300, description="Default: a short test sentence"
    )
    rate: float | None = Field(
        None, ge=RATE_MIN, le=RATE_MAX, description="A speaking rate to hear it at"
    )


def _voices(hub: Hub) -> list[dict[str, Any]]:
    return hub.announcements.voices()


def _limiter(request: Request, hub: Hub) -> RateLimiter:
    with _limiter_lock:
        limiter: RateLimiter | None = getattr(request.app.state, "voice_listen_limiter", None)
        if limiter is None:
            limiter = RateLimiter(LISTEN_LIMIT, LISTEN_WINDOW_S, clock=hub.clock.monotonic)
            request.app.state.voice_listen_limiter = limiter
        return limiter


@router.get(
    "/api/voices",
    response_model=None,
    responses={200: json_of(list[VoiceOut]), **documented(401, 403)},
)
def list_voices(hub: HubDep, user: Staff) -> list[dict[str, Any]]:
    """Every voice one can choose, the default flagged, each Piper voice with its state."""
    return _voices(hub)


@router.post(
    "/api/voices/{voice_id}/listen",
    response_class=FileResponse,
    responses={200: AUDIO, **documented(401, 403, 404, 422, 429)},
)
def listen(
    request: Request, hub: HubDep, user: Staff, voice_id: str, body: ListenIn | None = None
) -> FileResponse:
    """A short preview of a voice (the text given, or a test sentence in its language).

    ``X-Voice-Status`` says whether it is the voice itself or espeak-ng standing in."""
    found = next((v for v in _voices(hub) if v["id"] == voice_id), None)
    if found is None:
        raise NotFound(f"no voice {voice_id!r}: GET /api/voices lists them")
    wait = _limiter(request, hub).hit(user.username)
    if wait > 0:
        raise Throttled(f"too many previews: try again in {math.ceil(wait)} s", wait)
    lang = str(found["language"])[:2].lower() or "vi"
    text = body.text if body and body.text else SAMPLE_TEXT.get(lang, SAMPLE_TEXT["en"])
    try:
        r = hub.announcements.preview(text, voice_id, rate=body.rate if body else None)
    except UnknownVoice as exc:
        raise NotFound(str(exc)) from None
    # After the render: a Piper voice that failed just now says so.
    status = next((v["status"] for v in _voices(hub) if v["id"] == voice_id), "ok")
    return FileResponse(
        r.web_path,
        media_type=AUDIO_TYPES.get(r.web_path.suffix, "audio/ogg"),
        headers={"X-Voice-Engine": str(found["engine"]), "X-Voice-Status": status[:200]},
    )
