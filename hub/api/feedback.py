"""/api/feedback: residents' reports (phản ánh) in, the village head's inbox out.

Thin: :class:`hub.services.feedback.Feedback` stores, limits and lists them. ``POST`` is
public, so this module fences it at the HTTP level: JSON only (a cross-site form cannot
send it without a CORS preflight, which the hub never grants) and at most ``BODY_LIMIT``
bytes. ``GET`` and ``PATCH`` are the head's.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from hub.api.deps import HubDep, client_address, get_hub, read_body, require
from hub.api.errors import documented
from hub.api.schemas import FeedbackOut, RowId, json_of
from hub.services.feedback import FeedbackIn, Status
from hub.services.users import User

router = APIRouter(tags=["feedback"])

Head = Annotated[User, Depends(require("head"))]

#: The largest JSON body accepted (the longest message, in UTF-8, fits well under it).
BODY_LIMIT = 8 * 1024


class FeedbackPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Status = Field(description="new, read or done.")


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
    response_model=None,
    responses={201: json_of(FeedbackOut, "Received"), **documented(413, 415, 422, 429)},
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
    service = get_hub(request).feedback
    stored = await run_in_threadpool(service.submit, body, address=client_address(request))
    return JSONResponse(stored, status_code=201)


@router.get(
    "/api/feedback",
    response_model=None,
    responses={200: json_of(list[FeedbackOut]), **documented(401, 403, 422)},
)
def get_feedback(
    hub: HubDep,
    user: Head,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Residents' reports, newest first."""
    return hub.feedback.recent(status=status, limit=limit)


@router.patch(
    "/api/feedback/{fid}",
    response_model=None,
    responses={200: json_of(FeedbackOut), **documented(400, 401, 403, 404, 413, 422)},
)
def patch_feedback(hub: HubDep, user: Head, fid: RowId, patch: FeedbackPatch) -> dict[str, Any]:
    """Mark a report read or done (or new again); audited."""
    return hub.feedback.set_status(fid, patch.status, actor=user.username)
