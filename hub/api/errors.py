"""The one place where domain errors become HTTP statuses (API and pages alike), and where
the API's error answers are described for its OpenAPI schema (:func:`documented`).

A write the storage refuses (SQLite's "database or disk is full", ENOSPC, an I/O error)
is no bug: wherever it surfaces it is reported to the hub's storage state (the alert,
health) and answered 507 (full) or 503 with Retry-After (failing), as JSON on ``/api/``
and as a readable page elsewhere; never a 500. Every write operation documents both."""

from __future__ import annotations

import math
import sqlite3
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from audio.errors import AudioError
from hub.errors import (
    Conflict,
    Forbidden,
    HubError,
    Invalid,
    NotFound,
    StorageFailed,
    StorageFull,
    Throttled,
    TooLarge,
    Unsupported,
)
from hub.store.space import storage_error

STATUS: tuple[tuple[type[HubError], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (Forbidden, 403),
    (TooLarge, 413),
    (Unsupported, 415),
    (Throttled, 429),
    (Invalid, 422),
    (StorageFull, 507),
    (StorageFailed, 503),
)

#: The methods that write: their operations document 503 and 507.
WRITES = frozenset({"post", "put", "patch", "delete"})


class ErrorOut(BaseModel):
    """Every error answer of the API: one sentence a person can act on."""

    detail: str = Field(description="What went wrong and what to do about it.")


#: What each error status means on this API, as the OpenAPI schema says it.
MEANINGS: dict[int, str] = {
    400: "The body cannot be read (not JSON, or a broken form)",
    401: "Not signed in, or the token has expired: sign in again",
    403: "Signed in, without the role this needs (or a second person must do it)",
    404: "No such thing, or not visible to the caller",
    409: "The thing is in a state that refuses the change",
    413: "The body or the upload is larger than the limit",
    415: "Not a kind of content the hub reads",
    422: "Understood but wrong: a field, a time, a zone",
    429: "Too many attempts: wait the Retry-After seconds",
    503: "The hub's storage refuses writes for now (an I/O error): try again after "
    "Retry-After seconds",
    507: "The hub's storage is full (thẻ nhớ đầy): nothing was saved until space is freed",
}


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route's error statuses, each ``{"detail": str}``.

    A route that declares 422 here replaces FastAPI's default 422 schema (a list of
    pydantic errors), which the hub never sends: its 422 carries one sentence too."""
    return {s: {"model": ErrorOut, "description": MEANINGS[s]} for s in statuses}


def status_of(exc: HubError) -> int | None:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return None


def install(app: FastAPI) -> None:
    """Map :mod:`hub.errors`' domain errors to ``{"detail": ...}`` with their status, and a
    refused write (:func:`hub.store.space.storage_error`) to 507 or 503."""

    async def domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HubError)
        status = status_of(exc)
        if status is None:
            raise exc
        headers = None
        if isinstance(exc, Throttled | StorageFailed):
            headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
        if isinstance(exc, StorageFull | StorageFailed) and not _api(request):
            return _page(request, status, str(exc), headers)
        return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)

    async def refused_write(request: Request, exc: Exception) -> Response:
        refused = storage_error(exc)
        if refused is None:
            raise exc  # not the storage: a bug, answered 500 and logged as one
        hub = request.app.state.hub
        # Raising the alert writes (or tries to): not on the loop.
        await run_in_threadpool(hub.storage.failed, exc, f"{request.method} {request.url.path}")
        return await domain_error(request, refused)

    async def failed_render(request: Request, exc: Exception) -> Response:
        # espeak-ng and ffmpeg say "no audio" or "No such file" when the render cache has
        # no room: with the data folder out of room, that is the storage, not the voice.
        if not request.app.state.hub.storage.out_of_room():
            raise exc
        return await refused_write(request, StorageFull(f"the render failed: {exc}"))

    for cls, _ in STATUS:
        app.add_exception_handler(cls, domain_error)
    app.add_exception_handler(sqlite3.Error, refused_write)
    app.add_exception_handler(OSError, refused_write)
    app.add_exception_handler(AudioError, failed_render)
    _document_storage(app)


def _api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _page(request: Request, status: int, text: str, headers: dict[str, str] | None) -> Response:
    """A page's refused write: the error page, in the page's frame."""
    # The pages import this module (status_of): imported here, at the first refusal.
    from hub.web.render import error_page

    return error_page(
        request, session=None, status=status, title="error.title", text=text, headers=headers
    )


def _document_storage(app: FastAPI) -> None:
    """Every write operation, whichever module routes it, documents 503 and 507."""
    built = app.openapi
    answer = {
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
    }

    def openapi() -> dict[str, Any]:
        fresh = app.openapi_schema is None
        schema = built()
        if fresh:
            for item in schema.get("paths", {}).values():
                for method, op in item.items():
                    if method in WRITES:
                        for status in (503, 507):
                            op["responses"].setdefault(
                                str(status), {"description": MEANINGS[status], **answer}
                            )
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            schemas.setdefault("ErrorOut", ErrorOut.model_json_schema())
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
