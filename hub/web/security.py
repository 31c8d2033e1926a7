"""HTTP hardening of the web page: security headers and a cap on form sizes.

Both are plain ASGI middleware (not Starlette's BaseHTTPMiddleware), so the
Server-Sent Events stream passes through them unbuffered.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Scripts and styles only from the hub's own files: no inline script, no CDN. Media may
#: also be a blob: URL, which only this origin's script can make: the compose page plays
#: a recording back before it is uploaded, and the TTS preview it fetched.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; media-src 'self' blob:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
#: FastAPI's own /docs and /redoc pages load their scripts from a CDN and inline.
NO_CSP = ("/docs", "/redoc")

#: The largest form a staff page sends (the users form is the biggest, well under this).
FORM_LIMIT = 16 * 1024


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = [
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                    (b"x-content-type-options", b"nosniff"),
                ]
                if not path.startswith(NO_CSP):
                    extra.append((b"content-security-policy", CSP.encode()))
                if path.startswith("/static/"):
                    # Asset URLs carry ?v=<version>: a new hub version is a new URL.
                    extra.append((b"cache-control", b"public, max-age=86400"))
                headers += [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class _TooLarge(Exception):
    pass


class FormLimit:
    """Refuse request bodies over ``FORM_LIMIT`` on the staff pages (413), whether the
    client declares the length or streams it."""

    def __init__(self, app: ASGIApp, *, prefix: str = "/app/", limit: int = FORM_LIMIT) -> None:
        self.app, self.prefix, self.limit = app, prefix, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", []):
            if key == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(send)
                return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracking)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": f"form too large: at most {self.limit} bytes"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
