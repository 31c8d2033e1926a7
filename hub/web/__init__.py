"""The web page: the residents' page, the staff pages, their assets and the live stream.

``mount_web(app, hub)`` is the one entry point: ``create_app`` calls it once the
API routers are in. Everything is served by the hub itself (no CDN, no build
step): the village network may be offline.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from hub.api import alerts_ack, stream, users
from hub.app import Hub
from hub.bus import Bus, attach_ingest
from hub.web import pages, public, staff
from hub.web.security import FormLimit, SecurityHeaders
from hub.web.session import CsrfFailed, LoginRequired, PageForbidden


def mount_web(app: FastAPI, hub: Hub) -> None:
    """Add the pages, /static, /api/stream, /api/users and the alert ack to ``app``;
    create the live-update bus (``app.state.bus``) and feed it from ingest.

    Calling it twice does nothing the second time.
    """
    if getattr(app.state, "web_mounted", False):
        return
    app.state.web_mounted = True
    bus = Bus()
    app.state.bus = bus
    # The bus learns its loop at the first request (BindBus below); until then there is
    # no one to tell, and what ingest publishes is dropped.
    attach_ingest(bus, hub.ingest)
    service = getattr(hub, "announcements", None)
    if service is not None and hasattr(service, "notify"):
        # Announcements, playout state and the as-run log are public; the hub's own
        # alerts (clock not synchronised, a failed broadcast) are for staff.
        service.notify = lambda kind, data: bus.publish(
            kind, data, audience="staff" if kind == "alert" else "public"
        )
    app.include_router(stream.router)
    app.include_router(alerts_ack.router)
    app.include_router(users.router)
    app.include_router(public.router)
    app.include_router(staff.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC), name="static")
    app.add_exception_handler(LoginRequired, pages.on_login_required)
    app.add_exception_handler(PageForbidden, pages.on_forbidden)
    app.add_exception_handler(CsrfFailed, pages.on_csrf)
    app.add_middleware(FormLimit)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BindBus, bus=bus)
    app.add_middleware(PublicGZip)


#: What anybody may read and that holds no secret: the assets and the residents' pages.
#: (The public feedback form carries a CSRF token: not in this list.)
PUBLIC_EXACT = frozenset({"/", "/poster", "/feed.atom", "/calendar.ics"})
PUBLIC_PREFIXES = ("/static/", "/a/")


class PublicGZip:
    """gzip for the residents' pages and the assets (the public page with its assets:
    82 KB, 18 KB compressed, on a village's mobile data).

    Nothing else is compressed: a compressed page holding a secret (a CSRF token, a
    session's data) beside text an attacker can choose leaks the secret through its size
    (BREACH). Audio and the live stream are never compressed (starlette's exclusions).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=1000)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path in PUBLIC_EXACT or path.startswith(PUBLIC_PREFIXES):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class BindBus:
    """Tells the bus the server's loop at the first request, so that what happens after
    the first page is rendered reaches the stream the page then opens."""

    def __init__(self, app: ASGIApp, *, bus: Bus) -> None:
        self.app, self.bus, self.bound = app, bus, False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.bound and scope["type"] == "http":
            self.bus.bind(asyncio.get_running_loop())
            self.bound = True
        await self.app(scope, receive, send)
