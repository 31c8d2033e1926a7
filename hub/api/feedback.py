"""Residents' feedback (phản ánh): anyone may send one, the village head reads them.

``POST /api/feedback`` is public, so it is fenced: JSON only (a cross-site form cannot
send it without a CORS preflight, which the hub never grants), at most ``BODY_LIMIT``
bytes, and ``RATE_LIMIT`` reports per sender per ``RATE_WINDOW_S`` (plus a cap for all
senders together, so a flood from many addresses still cannot fill the SD card). The
sender's address is never stored: only ``sha256(salt + address)``, with a salt made once
per installation and kept in the ``meta`` table. ``GET`` and ``PATCH`` are the head's.

The residents' web form (``hub.web.public``) goes through the same :class:`Intake`.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.concurrency import run_in_threadpool

from hub.api.deps import HubDep, require
from hub.app import Hub
from hub.clock import utc_iso
from hub.services.users import User

router = APIRouter(tags=["feedback"])

Head = Annotated[User, Depends(require("head"))]
Category = Literal["roads", "power", "water", "environment", "security", "loudspeaker", "other"]
CATEGORIES: tuple[str, ...] = get_args(Category)
Status = Literal["new", "read", "done"]
STATUSES: tuple[str, ...] = get_args(Status)

#: The largest JSON body accepted (the longest message, in UTF-8, fits well under it).
BODY_LIMIT = 8 * 1024
#: Reports one sender may make per window.
RATE_LIMIT = 5
RATE_WINDOW_S = 600.0
#: Reports all senders together may make per window.
GLOBAL_LIMIT = 120
#: Senders remembered at most (the least recently seen is forgotten first).
MAX_SENDERS = 4096
SALT_KEY = "feedback_salt"

# XML 1.0 and most displays choke on C0 controls; tabs and new lines are kept.
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = _CONTROLS.sub("", value).replace("\r\n", "\n").replace("\r", "\n").strip()
    return value or None


class FeedbackIn(BaseModel):
    """A resident's report. Only the message is required."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=100, description="Who sends it (optional).")
    contact: str | None = Field(
        None, max_length=100, description="A phone number or address to answer (optional)."
    )
    message: str = Field(min_length=3, max_length=2000, description="What the report says.")
    category: Category | None = Field(None, description="What it is about (optional).")

    @field_validator("name", "contact", "message", mode="before")
    @classmethod
    def _strip(cls, v: Any) -> Any:
        return _clean(v) if isinstance(v, str) else v

    @field_validator("category", mode="before")
    @classmethod
    def _blank_category(cls, v: Any) -> Any:
        return None if v == "" else v


class FeedbackPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Status = Field(description="new, read or done.")


class RateLimiter:
    """Sliding windows of hits per key, in memory, on the hub's monotonic clock.

    Bounded: at most ``max_keys`` keys (least recently used forgotten first), each with at
    most ``limit`` stamps. Thread-safe (API worker threads)."""

    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        global_limit: int | None = None,
        max_keys: int = MAX_SENDERS,
    ) -> None:
        self.limit, self.window_s, self.max_keys = limit, window_s, max_keys
        self.global_limit = global_limit
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._all: deque[float] = deque()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._hits)

    def hit(self, key: str, now: float) -> float:
        """Count a hit and return 0, or return the seconds to wait (nothing counted)."""
        edge = now - self.window_s
        with self._lock:
            q = self._hits.get(key)
            if q is None:
                q = self._hits[key] = deque()
                while len(self._hits) > self.max_keys:
                    self._hits.popitem(last=False)
            else:
                self._hits.move_to_end(key)
            while q and q[0] <= edge:
                q.popleft()
            while self._all and self._all[0] <= edge:
                self._all.popleft()
            if len(q) >= self.limit:
                return q[0] + self.window_s - now
            if self.global_limit is not None and len(self._all) >= self.global_limit:
                return self._all[0] + self.window_s - now
            q.append(now)
            self._all.append(now)
            return 0.0


@dataclass(frozen=True, slots=True)
class Refused:
    """Too many reports: try again in ``retry_after`` seconds."""

    retry_after: int


class Intake:
    """What stands between the public and the ``feedback`` table: the rate limit and the
    salted hash of the sender's address. One per app (see :func:`intake_of`)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.limiter = RateLimiter(RATE_LIMIT, RATE_WINDOW_S, global_limit=GLOBAL_LIMIT)
        self._salt: str | None = None

    def sender(self, address: str) -> str:
        return hashlib.sha256(f"{self.salt()}\x00{address}".encode()).hexdigest()

    def salt(self) -> str:
        if self._salt is None:
            store = self.hub.store
            # Two first reports at once: the first insert wins, both read the same salt.
            store.connection().execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING",
                (SALT_KEY, secrets.token_hex(16)),
            )
            self._salt = store.get_meta(SALT_KEY)
            assert self._salt
        return self._salt

    def accept(
        self, body: FeedbackIn, *, address: str, lang: str | None = None
    ) -> dict[str, Any] | Refused:
        """Store the report (the caller validated it), unless the sender is over the limit."""
        sender = self.sender(address)
        wait = self.limiter.hit(sender, self.hub.clock.monotonic())
        if wait > 0:
            return Refused(max(1, math.ceil(wait)))
        now = self.hub.clock.now().timestamp()
        with self.hub.store.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO feedback(received_at, name, contact, category, message, status,"
                " ip_hash, lang) VALUES (?,?,?,?,?,?,?,?)",
                (now, body.name, body.contact, body.category, body.message, "new", sender, lang),
            )
            fid = cur.lastrowid
        row = self.hub.store.one("SELECT * FROM feedback WHERE id=?", (fid,))
        assert row is not None
        return feedback_json(row)


_intake_lock = threading.Lock()


def intake_of(request: Request) -> Intake:
    state = request.app.state
    with _intake_lock:
        intake: Intake | None = getattr(state, "feedback_intake", None)
        if intake is None:
            intake = state.feedback_intake = Intake(state.hub)
    return intake


def client_address(request: Request) -> str:
    return request.client.host if request.client else "?"


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, or 413 past ``limit`` bytes (declared or streamed)."""
    length = request.headers.get("content-length")
    too_big = HTTPException(413, f"the body is larger than {limit} bytes")
    if length and length.isdigit() and int(length) > limit:
        raise too_big
    size, chunks = 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def explain(e: ValidationError) -> str:
    """ "message: String should have at least 3 characters" — what a person can act on."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" if err["loc"] else err["msg"]
        for err in e.errors()
    )


def feedback_json(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "received_at": _iso(row["received_at"]),
        "name": row["name"],
        "contact": row["contact"],
        "category": row["category"],
        "message": row["message"],
        "status": row["status"],
        # Tells reports of one sender apart without telling who (or where) they are.
        "sender": row["ip_hash"][:12],
        "updated_at": _iso(row["updated_at"]),
        "updated_by": row["updated_by"],
    }


def _iso(ts: float | None) -> str | None:
    return None if ts is None else utc_iso(datetime.fromtimestamp(round(ts), UTC))


def list_feedback(hub: Hub, *, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    sql, args = "SELECT * FROM feedback", list[Any]()
    if status:
        sql += " WHERE status=?"
        args.append(status)
    rows = hub.store.query(sql + " ORDER BY received_at DESC, id DESC LIMIT ?", [*args, limit])
    return [feedback_json(r) for r in rows]


def count_feedback(hub: Hub) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for r in hub.store.query("SELECT status, count(*) AS n FROM feedback GROUP BY status"):
        counts[r["status"]] = int(r["n"])
    return counts


def set_status(hub: Hub, fid: int, status: str, actor: str) -> dict[str, Any]:
    """Mark a report new, read or done (audited); KeyError when there is no such report."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}")
    now = hub.clock.now().timestamp()
    with hub.store.transaction() as conn:
        row = conn.execute("SELECT status FROM feedback WHERE id=?", (fid,)).fetchone()
        if row is None:
            raise KeyError(fid)
        conn.execute(
            "UPDATE feedback SET status=?, updated_at=?, updated_by=? WHERE id=?",
            (status, now, actor, fid),
        )
        hub.store.audit(
            conn,
            ts=now,
            actor=actor,
            action="feedback.status",
            target=str(fid),
            detail={"from": row["status"], "to": status},
        )
    done = hub.store.one("SELECT * FROM feedback WHERE id=?", (fid,))
    assert done is not None
    return feedback_json(done)


# -- HTTP ---------------------------------------------------------------------------------
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
    intake = intake_of(request)
    outcome = await run_in_threadpool(intake.accept, body, address=client_address(request))
    if isinstance(outcome, Refused):
        raise HTTPException(
            429,
            f"too many reports from this address: try again in {outcome.retry_after} s",
            headers={"Retry-After": str(outcome.retry_after)},
        )
    return JSONResponse(outcome, status_code=201)


@router.get("/api/feedback")
def get_feedback(
    hub: HubDep,
    user: Head,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Residents' reports, newest first."""
    return list_feedback(hub, status=status, limit=limit)


@router.patch("/api/feedback/{fid}")
def patch_feedback(hub: HubDep, user: Head, fid: int, patch: FeedbackPatch) -> dict[str, Any]:
    """Mark a report read or done (or new again); audited."""
    try:
        return set_status(hub, fid, patch.status, user.username)
    except KeyError:
        raise HTTPException(404, f"no report {fid}") from None
