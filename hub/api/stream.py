"""GET /api/stream: Server-Sent Events for the web page, filtered by who is asking.

Residents (no credentials) get the public events (announcements, playout);
technicians and admins, by bearer token or web session, also get device status
changes and alerts. A ``heartbeat`` event with the hub's time opens the stream
and follows every 15 s of silence, so proxies keep the connection and the page
knows it is live. The stream ends when the client goes (Starlette cancels it).

Each stream also ends on its own after ``STREAM_S``: uvicorn waits for open
responses before it shuts the hub down (amplifier off), so no response may be
endless. The browser reconnects with ``Last-Event-ID`` and gets what it missed
from the bus's history; a page passes ``?since=`` (the mark it was rendered at)
on its first connection. When that cannot be told (the hub restarted, or the
gap is longer than the history) a ``reset`` event tells the page to reload.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from hub.api.deps import SESSION_COOKIE, oauth2
from hub.api.errors import documented
from hub.app import Hub
from hub.bus import PUBLIC, STAFF, Audience, Bus, BusEvent
from hub.clock import utc_iso
from hub.errors import AuthError

router = APIRouter(tags=["stream"])

#: Seconds of silence before a keep-alive comment and heartbeat.
KEEPALIVE_S = 15.0
#: How long a browser waits before reconnecting, in ms.
RETRY_MS = 2000
#: A stream's longest life, in seconds (then the browser reconnects and catches up).
STREAM_S = 30.0


def audiences_for(hub: Hub, token: str | None) -> frozenset[Audience]:
    """Staff events for a valid token of a technician or admin; public for anyone else
    (an expired session on the residents' page still gets the announcements)."""
    if not token:
        return PUBLIC
    try:
        user = hub.users.from_token(token, now=hub.clock.now().timestamp())
    except AuthError:
        return PUBLIC
    return STAFF if user.has("technician") else PUBLIC


def sse(bus: Bus, event: BusEvent) -> str:
    data = json.dumps(event.data, ensure_ascii=False, separators=(",", ":"))
    return f"id: {bus.epoch}-{event.id}\nevent: {event.kind}\ndata: {data}\n\n"


def _heartbeat(hub: Hub, bus: Bus, audiences: frozenset[Audience]) -> str:
    # With the bus's mark as its id: a reconnect resumes from here even when no event of
    # this audience came yet (nothing is pending: the queue was just found empty).
    body = {"now": utc_iso(hub.clock.now()), "staff": "staff" in audiences}
    return f"id: {bus.mark}\nevent: heartbeat\ndata: {json.dumps(body)}\n\n"


@router.get(
    "/api/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": f"Server-Sent Events for up to {STREAM_S:.0f} s, then reconnect",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **documented(422),
    },
)
async def stream(
    request: Request,
    token: Annotated[str | None, Depends(oauth2)],
    since: Annotated[str | None, Query(max_length=40, description="A page's mark")] = None,
) -> StreamingResponse:
    """Live events: ``announcement``, ``playout``, ``broadcast`` (public), ``device``,
    ``alert`` (staff), ``heartbeat``, and ``reset`` (reload the page)."""
    hub: Hub = request.app.state.hub
    bus: Bus = request.app.state.bus
    credential = token or request.cookies.get(SESSION_COOKIE)
    audiences = await run_in_threadpool(audiences_for, hub, credential)
    last_seen = request.headers.get("last-event-id") or since

    async def events() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        ends = loop.time() + STREAM_S
        with bus.subscribe(audiences, since=last_seen) as sub:
            if sub.backlog is None:
                yield f"retry: {RETRY_MS}\n\nevent: reset\ndata: {{}}\n\n"
                return
            # Subscribed, the backlog and the mark taken with no await in between: what
            # happens after the opening heartbeat is in the queue, nothing twice or lost.
            yield (
                f"retry: {RETRY_MS}\n\n"
                + "".join(sse(bus, e) for e in sub.backlog)
                + _heartbeat(hub, bus, audiences)
            )
            while (left := ends - loop.time()) > 0:
                try:
                    event = await asyncio.wait_for(sub.__anext__(), min(KEEPALIVE_S, left))
                except TimeoutError:
                    if sub.queue.empty() and ends - loop.time() > 0:
                        yield ": keep-alive\n" + _heartbeat(hub, bus, audiences)
                    continue
                yield sse(bus, event)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
