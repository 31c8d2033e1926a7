"""Feedback service: residents' reports (phản ánh) in, the village head's inbox out.

Used by POST /api/feedback and the residents' form alike (API worker threads, the pages'
thread pool). Reports are limited to ``RATE_LIMIT`` per sender per ``RATE_WINDOW_S``, plus
``GLOBAL_LIMIT`` for all senders together, so a flood from many addresses still cannot fill
the SD card. The sender's address is never stored: only ``sha256(salt + address)``, with a
salt made once per installation and kept in the ``meta`` table.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub.clock import Clock
from hub.errors import Invalid, NotFound, Throttled
from hub.ratelimit import RateLimiter
from hub.store import Store
from hub.store import feedback as repo

Category = Literal["roads", "power", "water", "environment", "security", "loudspeaker", "other"]
CATEGORIES: tuple[str, ...] = get_args(Category)
Status = Literal["new", "read", "done"]
STATUSES: tuple[str, ...] = get_args(Status)

#: Reports one sender may make per window.
RATE_LIMIT = 5
RATE_WINDOW_S = 600.0
#: Reports all senders together may make per window.
GLOBAL_LIMIT = 120
#: Senders remembered at most (the least recently seen is forgotten first).
MAX_SENDERS = 4096

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


class Feedback:
    """The ``feedback`` table behind its rate limit, on ``clock`` (one per hub)."""

    def __init__(self, store: Store, *, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.limiter = RateLimiter(
            RATE_LIMIT,
            RATE_WINDOW_S,
            global_limit=GLOBAL_LIMIT,
            max_keys=MAX_SENDERS,
            clock=clock.monotonic,
        )
        self._salt: str | None = None

    def sender(self, address: str) -> str:
        """The salted hash that stands for ``address``."""
        if self._salt is None:
            self._salt = repo.salt(self.store.connection())
        return hashlib.sha256(f"{self._salt}\x00{address}".encode()).hexdigest()

    def submit(
        self, report: FeedbackIn, *, address: str, lang: str | None = None
    ) -> dict[str, Any]:
        """Store a validated report; :class:`Throttled` when its sender is over the limit."""
        sender = self.sender(address)
        wait = self.limiter.hit(sender)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            raise Throttled(
                f"too many reports from this address: try again in {retry_after} s", retry_after
            )
        with self.store.transaction() as conn:
            fid = repo.insert(
                conn,
                now=self.clock.now().timestamp(),
                name=report.name,
                contact=report.contact,
                category=report.category,
                message=report.message,
                sender=sender,
                lang=lang,
            )
        return self.get(fid)

    def get(self, fid: int) -> dict[str, Any]:
        row = repo.get(self.store.connection(), fid)
        if row is None:
            raise NotFound(f"no report {fid}")
        return repo.feedback_json(row)

    def recent(self, *, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Reports newest first, only those with ``status`` when given."""
        rows = repo.recent(self.store.connection(), status=status, limit=limit)
        return [repo.feedback_json(r) for r in rows]

    def counts(self) -> dict[str, int]:
        """How many reports have each status (every status named, 0 included)."""
        return {**dict.fromkeys(STATUSES, 0), **repo.counts(self.store.connection())}

    def set_status(self, fid: int, status: str, *, actor: str) -> dict[str, Any]:
        """Mark a report new, read or done (audited)."""
        if status not in STATUSES:
            raise Invalid(f"status must be one of {', '.join(STATUSES)}")
        now = self.clock.now().timestamp()
        with self.store.transaction() as conn:
            row = repo.get(conn, fid)
            if row is None:
                raise NotFound(f"no report {fid}")
            repo.set_status(conn, fid, status, actor=actor, now=now)
            self.store.audit(
                conn,
                ts=now,
                actor=actor,
                action="feedback.status",
                target=str(fid),
                detail={"from": row["status"], "to": status},
            )
        return self.get(fid)
