"""The web page: the residents' page, the staff pages, their assets and the live stream.

``mount_web(app, hub)`` is the one entry point: ``create_app`` calls it once the
API routers are in. Everything is served by the hub itself (no CDN, no build
step): the village network may be offline.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
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
