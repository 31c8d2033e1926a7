"""/api/feedback: residents' reports (phản ánh) in, the village head's inbox out.

Thin: :class:`hub.services.feedback.Feedback` stores, limits and lists them. ``POST`` is
public, so this module fences it at the HTTP level: JSON only (a cross-site form cannot
send it without a CORS preflight, which the hub never grants) and at most ``BODY_LIMIT``
bytes. ``GET`` and ``PATCH`` are the head's. The last section, and the names imported
``as`` themselves, keep what hub/web/public.py and its tests import from here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from hub.api.deps import HubDep, get_hub, require
from hub.api.deps import client_address as client_address
from hub.api.deps import read_body as read_body
from hub.app import Hub
from hub.errors import NotFound, Throttled
from hub.ratelimit import RateLimiter as RateLimiter
from hub.services.feedback import CATEGORIES as CATEGORIES
from hub.services.feedback import RATE_LIMIT as RATE_LIMIT
from hub.services.feedback import RATE_WINDOW_S as RATE_WINDOW_S
from hub.services.feedback import STATUSES as STATUSES
from hub.services.feedback import Feedback, Status
from hub.services.feedback import FeedbackIn as FeedbackIn
from hub.services.users import User
from hub.store.feedback import SALT_KEY as SALT_KEY

router = APIRouter(tags=["feedback"])

Head = Annotated[User, Depends(require("head"))]

#: The largest JSON body accepted (the longest message, in UTF-8, fits well under it).
BODY_LIMIT = 8 * 1024

_made = threading.Lock()


class FeedbackPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Status = Field(description="new, read or done.")


def feedback_of(hub: Hub) -> Feedback:
    """The hub's feedback service: ``hub.feedback`` when build_hub made one, else one made
    at the first use and kept on the hub (its rate limit must outlive a request)."""
    with _made:
        service: Feedback | None = getattr(hub, "feedback", None)
        if service is None:
            service = Feedback(hub.store, clock=hub.clock)
            setattr(hub, "feedback", service)  # noqa: B010 (not a field of every Hub)
    return service


def explain(e: ValidationError) -> str:
    """ "message: String should have at least 3 characters" — what a person can act on."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" if err["loc"] else err["msg"]
        for err in e.errors()
    )


_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": FeedbackIn.model_json_schema()}},
    }
}


@router.post(
    "/api/feedback",
    status_code=201,
    openapi_extra=_BODY_DOC,
    responses={413: {"description": "Body too large"}, 429: {"description": "Too many reports"}},
)
async def post_feedback(request: Request) -> JSONResponse:
    """A resident's report (no sign-in). 429 with Retry-After past the sender's limit."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise HTTPException(415, "send the report as JSON (Content-Type: application/json)")
    raw = await read_body(request, BODY_LIMIT)
    try:
        body = FeedbackIn.model_validate_json(raw)
    except ValidationError as e:
        raise HTTPException(422, explain(e)) from None
    service = feedback_of(get_hub(request))
    stored = await run_in_threadpool(service.submit, body, address=client_address(request))
    return JSONResponse(stored, status_code=201)


@router.get("/api/feedback")
def get_feedback(
    hub: HubDep,
    user: Head,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Residents' reports, newest first."""
    return feedback_of(hub).recent(status=status, limit=limit)


@router.patch("/api/feedback/{fid}")
def patch_feedback(hub: HubDep, user: Head, fid: int, patch: FeedbackPatch) -> dict[str, Any]:
    """Mark a report read or done (or new again); audited."""
    return feedback_of(hub).set_status(fid, patch.status, actor=user.username)


# -- the same calls as hub/web/public.py imports them ----------------------------------------
@dataclass(frozen=True, slots=True)
class Refused:
    """Too many reports: try again in ``retry_after`` seconds."""

    retry_after: int


class Intake:
    """:meth:`Feedback.submit` with the refusal returned, not raised."""

    def __init__(self, service: Feedback) -> None:
        self.service = service

    def accept(
        self, body: FeedbackIn, *, address: str, lang: str | None = None
    ) -> dict[str, Any] | Refused:
        try:
            return self.service.submit(body, address=address, lang=lang)
        except Throttled as e:
            return Refused(int(e.retry_after))


def intake_of(request: Request) -> Intake:
    return Intake(feedback_of(get_hub(request)))


def list_feedback(hub: Hub, *, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    return feedback_of(hub).recent(status=status, limit=limit)


def count_feedback(hub: Hub) -> dict[str, int]:
    return feedback_of(hub).counts()


def set_status(hub: Hub, fid: int, status: str, actor: str) -> dict[str, Any]:
    """KeyError when there is no such report."""
    try:
        return feedback_of(hub).set_status(fid, status, actor=actor)
    except NotFound:
        raise KeyError(fid) from None
