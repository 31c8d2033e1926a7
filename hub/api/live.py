"""Live from the phone: ``GET /api/live`` (is someone on air live?) and the WebSocket
``/api/live/ws`` that carries the head's voice to the playout (:mod:`hub.broadcast.live`).

The WebSocket, message by message:

1. the phone opens it (a browser's ``Origin`` must be this hub: another site's page cannot
   use the head's cookie) and sends ``{"type": "start", "zones": [...], "title"?,
   "published"?, "csrf"}`` (the web session's cookie and its CSRF token) or ``"token"``
   (a bearer token from ``POST /api/auth/token``) instead of ``csrf``, within 5 s;
2. refused: ``{"type": "refused", "status": 401|403|409|422, "detail"}``, then the socket
   closes with code 4000 + status (a browser cannot read a refused handshake's status);
3. accepted: ``{"type": "state", "state": "connecting"|"waiting"|"opening"|"on_air"}`` as
   the broadcast moves on; the phone sends binary messages of 16 kHz mono s16le PCM (at
   most ``live.max_message_bytes``, no faster than real time plus ``live.burst_s``) and
   ``{"type": "stop"}`` to end it;
4. ``{"type": "ended", "reason", "detail", "seconds", "recording"}`` (the reasons:
   stopped, lost, cap, preempted, stopped_elsewhere, error, shutdown), then it closes.

A socket closed, or silent for ``live.idle_s``, ends the broadcast as a lost connection.

Threads: the asyncio loop; what touches SQLite or starts processes goes to the threadpool.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from hub.api.deps import SESSION_COOKIE, HubDep, csrf_ok, current_user
from hub.api.errors import STATUS, documented
from hub.app import Hub
from hub.broadcast.live import LiveBroadcasts, LiveSession
from hub.broadcast.models import Actor
from hub.errors import AuthError, HubError
from hub.services.users import User

router = APIRouter(tags=["live"])

#: The start message must come within this (s).
START_S = 5.0
#: After the voice ends, the recording is encoded: the socket waits this long for it (s).
WRAP_UP_S = 60.0


class StartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(pattern="^start$")
    zones: list[str] = Field(default_factory=lambda: ["all"], min_length=1, max_length=32)
    title: str | None = Field(None, max_length=200)
    published: bool = True
    csrf: str | None = Field(None, max_length=200)
    token: str | None = Field(None, max_length=200)


class Refused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def service(hub: Hub) -> LiveBroadcasts | None:
    """The live broadcasts of a hub (None when ``live.enabled`` is false)."""
    return hub.live


class LiveOut(BaseModel):
    on_air: bool
    id: str | None = None
    by: str | None = None
    zones: list[str] = Field(default_factory=list)
    state: str | None = None


@router.get("/api/live", responses=documented(401))
def live_now(hub: HubDep, user: Annotated[User, Depends(current_user)]) -> LiveOut:
    """Is a live broadcast on, who speaks and where (any signed-in user)? The page asks
    before it opens the microphone, so that a second head is told at once."""
    live = service(hub)
    cur = live.current if live is not None else None
    if cur is None:
        return LiveOut(on_air=False)
    return LiveOut(on_air=True, id=cur.id, by=cur.by, zones=list(cur.zones), state=cur.state)


def same_origin(origin: str, host: str | None, public_url: str | None) -> bool:
    """A browser's page from this hub (as it was reached, or its public address)."""
    netloc = urlsplit(origin).netloc.lower()
    if host and netloc == host.lower():
        return True
    return bool(public_url) and netloc == urlsplit(public_url or "").netloc.lower()


def _who(hub: Hub, ws: WebSocket, start: StartIn, origin: str | None) -> User:
    """The user the start message names (threadpool: reads the tokens table)."""
    now = hub.clock.now().timestamp()
    try:
        if start.token:
            return hub.users.from_token(start.token, now=now)
        session = ws.cookies.get(SESSION_COOKIE)
        if not session:
            raise Refused(401, "sign in first")
        if origin is None:
            raise Refused(403, "a browser's live broadcast must say where its page is from")
        user = hub.users.from_token(session, now=now)
    except AuthError:
        raise Refused(401, "the session has expired: sign in again") from None
    if not csrf_ok(session, start.csrf):
        raise Refused(403, "CSRF check failed: the start message needs the page's csrf")
    return user


def _status(e: HubError) -> int:
    return next((code for cls, code in STATUS if isinstance(e, cls)), 400)


@router.websocket("/api/live/ws")
async def live_socket(ws: WebSocket) -> None:
    hub: Hub = ws.app.state.hub
    origin = ws.headers.get("origin")
    if origin is not None and not same_origin(
        origin, ws.headers.get("host"), hub.settings.http.public_url
    ):
        await ws.close(code=1008)  # before accept: the handshake is refused (403)
        return
    await ws.accept()
    opened_at = time.monotonic()  # the phone's audio is counted from here (its rate)
    loop = asyncio.get_running_loop()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def send(message: dict[str, Any]) -> None:  # any thread: handed to the loop
        loop.call_soon_threadsafe(outbox.put_nowait, message)

    try:
        session = await _start(hub, ws, origin, send, opened_at)
    except Refused as r:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await ws.send_json({"type": "refused", "status": r.status, "detail": r.detail})
            await ws.close(code=4000 + r.status, reason=r.detail[:100])
        return
    except WebSocketDisconnect:
        return
    pump = asyncio.create_task(_pump(ws, outbox))
    try:
        await _listen(hub, ws, session)
    finally:
        session.end("lost", "the phone's connection closed")
        try:
            await asyncio.wait_for(pump, WRAP_UP_S)
        except (TimeoutError, asyncio.CancelledError):
            pump.cancel()
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await ws.close(code=1000)


async def _start(
    hub: Hub, ws: WebSocket, origin: str | None, send: Any, opened_at: float
) -> LiveSession:
    live = service(hub)
    if live is None:
        raise Refused(503, "live broadcasts are not set up on this hub")
    try:
        raw = await asyncio.wait_for(ws.receive_text(), START_S)
        start = StartIn.model_validate(json.loads(raw))
    except TimeoutError:
        raise Refused(400, f"no start message within {START_S:g} s") from None
    except (ValueError, ValidationError, KeyError) as e:
        raise Refused(422, f"the start message is not valid: {str(e)[:200]}") from None
    user = await run_in_threadpool(_who, hub, ws, start, origin)
    if not user.has("head"):
        raise Refused(403, "only the village head (or an admin) may broadcast live")
    try:
        return await run_in_threadpool(
            live.start,
            Actor(user.username, user.role),
            start.zones,
            send,
            title=start.title,
            published=start.published,
            opened_at=opened_at,
        )
    except HubError as e:
        raise Refused(_status(e), str(e)) from None


async def _listen(hub: Hub, ws: WebSocket, session: LiveSession) -> None:
    """The phone's messages until the voice is over; silence ends it (lost)."""
    idle = hub.settings.live.idle_s
    while session.reason is None:
        try:
            msg = await asyncio.wait_for(ws.receive(), idle)
        except TimeoutError:
            session.end("lost", f"no audio from the phone for {idle:g} s")
            return
        if msg["type"] == "websocket.disconnect":
            session.end("lost", "the phone's connection closed")
            return
        if msg.get("bytes") is not None:
            refused = session.offer(msg["bytes"])
            if refused is not None:
                session.end("error", refused)
                return
        elif msg.get("text") is not None:
            try:
                kind = json.loads(msg["text"]).get("type")
            except (ValueError, AttributeError):
                kind = None
            if kind == "stop":
                session.end("stopped")
    # Over: what the phone still sends is read (and dropped) until it hears "ended".
    while True:
        try:
            msg = await asyncio.wait_for(ws.receive(), WRAP_UP_S)
        except TimeoutError:
            return
        if msg["type"] == "websocket.disconnect":
            return


async def _pump(ws: WebSocket, outbox: asyncio.Queue[dict[str, Any]]) -> None:
    """The session's news to the phone, until "ended"."""
    while True:
        message = await outbox.get()
        try:
            await ws.send_json(message)
        except (WebSocketDisconnect, RuntimeError):
            if message.get("type") == "ended":
                return
            continue
        if message.get("type") == "ended":
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await ws.close(code=1000)
            return
