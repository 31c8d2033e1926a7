"""The one place where domain errors become HTTP statuses (API and pages alike), and where
the API's error answers are described for its OpenAPI schema (:func:`documented`)."""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from hub.errors import (
    Conflict,
    Forbidden,
    HubError,
    Invalid,
    NotFound,
    Throttled,
    TooLarge,
    Unsupported,
)

STATUS: tuple[tuple[type[HubError], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (Forbidden, 403),
    (TooLarge, 413),
    (Unsupported, 415),
    (Throttled, 429),
    (Invalid, 422),
)


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
    """Map :mod:`hub.errors`' domain errors to ``{"detail": ...}`` with their status."""

    async def domain_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HubError)
        status = status_of(exc)
        if status is None:
            raise exc
        headers = None
        if isinstance(exc, Throttled):
            headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
        return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)

    for cls, _ in STATUS:
        app.add_exception_handler(cls, domain_error)
