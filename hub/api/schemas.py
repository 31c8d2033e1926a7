"""The API's answers as the OpenAPI schema describes them, one model per JSON shape.

The routes return the shapes the stores and ``hub/wire.py`` build (the MQTT mirror and the
live stream carry the same ones); these models only say what those shapes are, for
``/openapi.json`` and its readers. They are declared with ``responses=`` and
``response_model=None``: nothing is re-validated on the way out, and the schemathesis test
(tests/integration/test_openapi.py) checks every answer against them over real HTTP.
Times are ISO 8601 in UTC (``2026-12-01T12:30:00Z``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, Field

from hub.events import BroadcastStatus, Priority
from hub.services.users import Role

Time = str

#: A numeric id in a path (a report, a user): SQLite's rowids are 64-bit, and a larger
#: number would fail in the driver (a 500), so it is a 422 before it gets there.
RowId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The row's numeric id.")]


class BroadcastOut(BaseModel):
    """A line of the playout log (as-run report)."""

    announcement_id: str
    title: str | None = Field(None, description="The announcement's title, where listed.")
    scheduled_for: Time
    started_at: Time | None
    ended_at: Time | None
    status: BroadcastStatus
    zones: list[str]
    priority: Priority
    detail: str | None


class MeetingGuessOut(BaseModel):
    """What the hub made of an announcement sent without a category that reads as a
    meeting invitation (or that gave ``meeting_at``)."""

    category: Literal["meeting"]
    applied: bool = Field(
        description="true: it was made a meeting with this time and place; false: it stays "
        "a notice (its meeting time could not be read), and ``detail`` says what to send."
    )
    meeting_at: Time | None = Field(description="The meeting time given or read (UTC).")
    meeting_place: str | None = Field(description="The place given or read.")
    detail: str = Field(description="What was read, in words.")


class AnnouncementOut(BaseModel):
    """An announcement, with its next run and its last broadcast. ``voice``, ``rate``,
    ``sentence_pause_s``, ``published``, ``created_by`` and ``approved_by`` are shown to a
    signed-in head or admin only."""

    id: str
    title: str
    text: str | None
    audio_id: str | None
    category: Literal["notice", "news", "meeting", "emergency", "live"]
    priority: Priority
    zones: list[str]
    start_at: Time
    rrule: str | None
    exdates: list[Time]
    repeat: int
    expires_at: Time | None
    status: Literal["draft", "scheduled", "done", "cancelled", "expired", "replaced"]
    corrects: str | None = Field(description="The announcement this one follows up or corrects.")
    stopped_at: Time | None = Field(None, description="When a person stopped it on air.")
    ended_at: Time | None = Field(None, description="When the head ended the emergency.")
    ended_by: str | None = Field(None, description="Who ended it (a user, or rule:<id>).")
    follow_kind: Literal["all_clear", "correction"] | None = Field(
        None, description="What a follow-up says of the one it ``corrects``."
    )
    followed_by: str | None = Field(None, description="The newest follow-up of this one.")
    next_run: Time | None
    schedule_words: dict[str, str] = Field(description="The schedule in words, by language.")
    meeting_at: Time | None = Field(
        None,
        description="A meeting's own date and time (UTC), which start_at and next_run (its "
        "invitation's broadcasts) are not; null for other categories.",
    )
    meeting_place: str | None = Field(None, description="Where the meeting is.")
    duration_s: float | None
    audio_url: str
    created_at: Time | None
    last_broadcast: BroadcastOut | None
    guess: MeetingGuessOut | None = Field(
        None,
        description="In the answer to POST only, when the category was left out and it "
        "reads as a meeting invitation: what the hub made of it.",
    )
    voice: str | None = None
    rate: float | None = Field(None, description="Its own speaking rate (None: its voice's).")
    sentence_pause_s: float | None = Field(
        None, description="Its own pause after each sentence, s (None: the settings')."
    )
    published: bool | None = None
    created_by: str | None = None
    approved_by: str | None = None


class FollowUpIn(BaseModel):
    """What is said after an emergency ends: it plays now, linked to the emergency."""

    kind: Literal["all_clear", "correction"] = Field(
        description="all_clear: the danger is over; correction: the emergency was wrong."
    )
    text: str = Field(min_length=1, max_length=2000, description="What the loudspeakers say.")


class EndIn(BaseModel):
    """Ending an emergency, optionally with a follow-up announcement."""

    follow_up: FollowUpIn | None = None


class EndedOut(BaseModel):
    """The ended emergency, and its follow-up when one was sent."""

    announcement: AnnouncementOut
    follow_up: AnnouncementOut | None


class AudioOut(BaseModel):
    """An uploaded recording, for an announcement's ``audio_id``."""

    id: str
    duration_s: float


class StoppedOut(BaseModel):
    stopped: bool = Field(description="Whether something was on air and was cut.")


class PlayoutOut(BaseModel):
    """What is on air now, and the queue."""

    state: Literal["idle", "playing"]
    announcement_id: str | None
    title: str | None
    priority: str | None
    started_at: Time | None
    zones: list[str]
    queue: list[str]


class AlertOut(BaseModel):
    id: str
    device_id: str
    rule: str
    severity: str
    state: Literal["raised", "cleared"]
    message: str
    raised_at: Time
    cleared_at: Time | None
    acked_by: str | None = None
    acked_at: Time | None = None


class DeviceOut(BaseModel):
    id: str
    kind: str
    name: str
    source: str
    status: Literal["online", "degraded", "offline", "unknown"]
    status_since: Time | None
    status_reason: str | None
    first_seen: Time | None
    last_seen: Time | None
    metrics: dict[str, float] = Field(description="The latest reading of each metric.")
    info: dict[str, Any] = Field(description="What the device says of itself (ssid, fw...).")


class DeviceDetailOut(DeviceOut):
    open_alerts: list[AlertOut] = Field(description="Its open alerts, the newest first.")


class EventOut(BaseModel):
    id: int
    ts: Time
    received_at: Time
    device_id: str | None
    type: str
    topic: str
    data: dict[str, Any]


class DeadLetterOut(BaseModel):
    id: int
    received_at: Time
    topic: str
    size: int
    reason: str
    payload: str | None = Field(description="The payload as text, when it is UTF-8.")
    payload_hex: str | None = Field(description="The payload in hex, when it is not.")


class FeedbackOut(BaseModel):
    """A resident's report (phản ánh)."""

    id: int
    received_at: Time
    name: str | None
    contact: str | None
    category: str | None
    message: str
    status: Literal["new", "read", "done"]
    sender: str = Field(description="Tells reports of one sender apart, not who they are.")
    updated_at: Time | None
    updated_by: str | None


class UserOut(BaseModel):
    id: int
    username: str
    role: Role
    disabled: bool


class IngestOut(BaseModel):
    received: int
    stored: int
    duplicates: int
    dead_letters: int
    internal_errors: int
    pending: int
    last_error: str | None
    paused: bool = Field(
        description="The writer holds a batch the storage refused (the broker keeps the rest)."
    )


class StorageOut(BaseModel):
    state: Literal["ok", "low", "full", "failing"] = Field(
        description="full: writes refused for lack of space; failing: refused for another "
        "reason (an I/O error); low: little space left."
    )
    free_bytes: int | None = Field(description="Free space of the data folder (None: unknown).")
    total_bytes: int | None
    detail: str | None = Field(description="The failure or the warning, in words.")
    since: str | None = Field(description="When the storage began to refuse writes.")


class HealthClockOut(BaseModel):
    source: Literal["ntp", "rtc", "phone", "none"] = Field(
        description="What makes the clock trusted: NTP, an RTC read at boot, the head's phone "
        "this boot; none: scheduled broadcasts wait (emergencies never do)."
    )
    synced: bool
    now: str = Field(description="The hub's time (ISO 8601, UTC).")


class HealthOut(BaseModel):
    status: Literal["ok", "error"]
    mqtt: Literal["connected", "disconnected"]
    db: Literal["ok", "error"]
    clock_synced: bool | None
    clock: HealthClockOut
    version: str
    ingest: IngestOut
    storage: StorageOut
    problems: list[str] = Field(default_factory=list, description="Why it is not ok.")


def json_of(model: Any, description: str = "OK") -> dict[str, Any]:
    """A ``responses=`` entry whose JSON is ``model`` (a class or ``list[...]``)."""
    return {"model": model, "description": description}


#: The audio the hub serves (renders and previews), for ``responses=``.
AUDIO: dict[str, Any] = {
    "description": "The audio",
    "content": {
        kind: {"schema": {"type": "string", "format": "binary"}}
        for kind in ("audio/ogg", "audio/mpeg", "audio/wav")
    },
}
