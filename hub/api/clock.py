"""/api/clock: the hub's time, where it comes from, and setting it from the head's phone.

Thin: :class:`hub.services.clock.ClockTrust` decides and audits. ``POST`` takes the phone's
time as ISO 8601 (a time without an offset is the village's) or epoch milliseconds
(JavaScript's ``Date.now()``); refused while NTP keeps the clock (409), for an absurd time
(422), and with 503 when the system will not let the hub set its clock (no CAP_SYS_TIME).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr
from pydantic import ValidationError as PydanticError
from starlette.concurrency import run_in_threadpool

from hub.api.deps import HubDep, current_user, get_hub, read_body, require
from hub.api.errors import ErrorOut, documented
from hub.api.feedback import explain
from hub.services.clock import ClockNotSettable, phone_seconds
from hub.services.users import User

router = APIRouter(tags=["clock"])

Head = Annotated[User, Depends(require("head"))]

#: The largest body accepted: one time.
BODY_LIMIT = 1024


class ClockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone_time: StrictInt | StrictFloat | StrictStr = Field(
        description="The phone's time: epoch milliseconds (Date.now()) or ISO 8601 (without "
        "an offset it is the village's time).",
        examples=[1796100000000, "2026-12-01T19:30:00+07:00"],
    )


class RtcOut(BaseModel):
    name: str
    chip: str
    hctosys: bool = Field(description="The kernel set the system clock from it at boot.")
    time: str | None = Field(description="What the RTC says now.")
    trusted: bool = Field(description="Sane, and the system clock agrees with it.")


class ClockOut(BaseModel):
    source: Literal["ntp", "rtc", "phone", "none"] = Field(
        description="Why the clock is trusted: NTP, an RTC board, the head's phone this boot; "
        "none: scheduled broadcasts wait."
    )
    synced: bool
    now: str = Field(description="The hub's time (UTC).")
    ntp: bool | None = Field(description="The kernel's NTP state (null: not asked or unknown).")
    rtc: RtcOut | None
    phone_set_at: str | None = Field(description="Set from a phone during this boot: to when.")
    phone_set_by: str | None
    floor: str | None = Field(description="A right clock is never behind this.")
    behind_floor: bool
    can_set: bool = Field(description="The head may set it from a phone now.")
    why_not: str | None = Field(description="Why the head may not set it.")


@router.get(
    "/api/clock",
    response_model=ClockOut,
    responses=documented(401),
    dependencies=[Depends(current_user)],
)
async def get_clock(hub: HubDep) -> ClockOut:
    """The hub's time, where it comes from, and whether the head may set it (signed in)."""
    state = await run_in_threadpool(lambda: hub.clock_trust.state())
    return ClockOut.model_validate(state.json())


@router.post(
    "/api/clock",
    response_model=ClockOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ClockIn.model_json_schema()}},
        }
    },
    responses=documented(401, 403, 409, 413, 415, 422)
    | {503: {"model": ErrorOut, "description": "The system does not let the hub set its clock"}},
)
async def set_clock(request: Request, user: Head) -> ClockOut:
    """Set the hub's clock from the head's phone (head or admin; audited)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise HTTPException(415, "send the time as JSON (Content-Type: application/json)")
    raw = await read_body(request, BODY_LIMIT)
    try:
        body = ClockIn.model_validate_json(raw)
    except PydanticError as e:
        raise HTTPException(422, explain(e)) from None
    hub = get_hub(request)
    ts = phone_seconds(body.phone_time, hub.settings.tz)
    trust = hub.clock_trust
    try:
        state = await run_in_threadpool(trust.set_from_phone, ts, actor=user.username)
    except ClockNotSettable as e:
        raise HTTPException(503, str(e)) from None
    return ClockOut.model_validate(state.json())
