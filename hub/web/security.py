"""HTTP hardening of the web API and pages: security headers and a cap on request bodies.

Both are plain ASGI middleware (not Starlette's BaseHTTPMiddleware), so the
Server-Sent Events stream passes through them unbuffered.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.settings import AudioSettings

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
#: Any other body: an announcement, a rule, a sign-in. The biggest (an announcement's text
#: with its zones) stays under 20 KiB; this cap keeps a parsed body to a few MiB at most.
JSON_LIMIT = 256 * 1024
#: Routes that take a recording: ``audio.max_upload_mb`` of it.
UPLOADS = frozenset({"/api/audio"})
#: Multipart framing around a recording: boundaries, part headers, the file name.
UPLOAD_OVERHEAD = 64 * 1024


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


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes its limit: the route's own body
    parsing (FastAPI, python-multipart, :func:`hub.api.deps.read_body`) lets an
    HTTPException through, so the app answers 413 the usual way."""

    def __init__(self, detail: str) -> None:
        super().__init__(413, detail)


def upload_limit(audio: AudioSettings) -> int:
    """The largest body of an upload: the largest recording plus its multipart framing."""
    return int(audio.max_upload_mb * 1024 * 1024) + UPLOAD_OVERHEAD


class FormLimit:
    """The cap on every request body, counted while it streams in, before anything parses
    or spools it: a declared ``Content-Length`` over the limit is refused at once (413,
    the body never read), and a chunked body is cut off with 413 the moment it passes.

    The limit depends on the route: an upload (:data:`UPLOADS`) gets the recording limit of
    ``audio.max_upload_mb`` (:func:`upload_limit`, from the hub's settings on
    ``app.state.hub`` unless ``upload`` is given), the staff pages' forms (under
    ``/app/``) ``FORM_LIMIT``, everything else (JSON, the sign-in form) ``JSON_LIMIT``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        form: int = FORM_LIMIT,
        body: int = JSON_LIMIT,
        upload: int | None = None,
    ) -> None:
        self.app, self.form, self.body, self.upload = app, form, body, upload

    def limit_of(self, scope: Scope) -> tuple[int, str]:
        """The limit for this request, and the words that refuse it."""
        path: str = scope["path"]
        if path in UPLOADS:
            limit = self.upload
            if limit is None:
                hub = getattr(getattr(scope.get("app"), "state", None), "hub", None)
                limit = upload_limit(hub.settings.audio if hub else AudioSettings())
            mb = (limit - UPLOAD_OVERHEAD) / (1024 * 1024)
            return limit, f"the upload is larger than {mb:g} MB"
        if path.startswith("/app/"):
            return self.form, f"form too large: at most {self.form} bytes"
        return self.body, f"the body is larger than {self.body} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, words = self.limit_of(scope)
        for key, value in scope.get("headers", []):
            if key == b"content-length" and value.isdigit() and int(value) > limit:
                await _refuse(send, words)
                return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(words)
            return message

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracking)
        except BodyTooLarge:
            # Read where no handler answers it (a route that streams its body itself).
            if not started:
                await _refuse(send, words)


async def _refuse(send: Send, words: str) -> None:
    body = json.dumps({"detail": words}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                # The rest of the body is not read: the connection cannot carry another.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
