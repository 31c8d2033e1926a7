"""The web page: the residents' page, the staff pages, their assets and the live stream.

``mount_web(app, hub)`` is the one entry point: ``hub.server.create_app`` calls it
once the API routers are in. The pages import services, never the API's routes.
Everything is served by the hub itself (no CDN, no build step): the village network
may be offline.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from hub.app import Hub
from hub.web import pages, public, staff
from hub.web.security import FormLimit, SecurityHeaders
from hub.web.session import CsrfFailed, LoginRequired, PageForbidden


def mount_web(app: FastAPI, hub: Hub) -> None:
    """Add the pages, /static, their error handlers and middleware to ``app``.

    Calling it twice does nothing the second time.
    """
    if getattr(app.state, "web_mounted", False):
        return
    app.state.web_mounted = True
    app.include_router(public.router)
    app.include_router(staff.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC), name="static")
    app.add_exception_handler(LoginRequired, pages.on_login_required)
    app.add_exception_handler(PageForbidden, pages.on_forbidden)
    app.add_exception_handler(CsrfFailed, pages.on_csrf)
    app.add_middleware(FormLimit)
    app.add_middleware(SecurityHeaders)
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
