"""The one place where domain errors become HTTP statuses (API and pages alike)."""

from __future__ import annotations

import math

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

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
