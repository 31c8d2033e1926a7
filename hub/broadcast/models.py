"""Broadcast stage, its requests: what the village head asks for, and who asks.

``AnnouncementIn`` is the body of ``POST /api/announcements``, of the compose page and
of the MQTT ``cmd/announce`` topic; ``AnnouncementPatch`` a change to one. A meeting's
fields (``meeting_at``, ``meeting_place``) are checked against the category by the
service (:func:`hub.broadcast.meetings.meeting_problem`), where an omitted category is
known from a given one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from hub.errors import Invalid
from hub.events import Priority

Category = Literal["notice", "news", "meeting", "emergency"]
#: A meeting's place as stored and shown: a name, not an essay.
PLACE_MAX = 200
#: An announcement's speaking rate, a factor of its voice's (``audio.rates``): slower for
#: the elderly, not so slow or fast that the words smear on a horn speaker.
RATE_MIN, RATE_MAX = 0.6, 1.4
PAUSE_MAX = 3.0


class AnnouncementError(Invalid):
    """An announcement request that cannot be honoured as given: a field, a zone, a time."""


#: The years a request time may name. Far wider than any village schedule, and narrow
#: enough that the time, moved by any UTC offset (±14 h) into UTC or the village's zone,
#: stays inside what Python's datetime holds (years 1-9999): "0001-01-01T00:00:00" in
#: the village's time would otherwise be a year-0 instant and a 500.
FIRST_YEAR, LAST_YEAR = 1970, 2199


def _in_range(value: datetime) -> datetime:
    # The wall time as written is checked, before any conversion that could overflow.
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(
            f"{value.isoformat()} is out of range: give a time between {FIRST_YEAR} and "
            f"{LAST_YEAR}, like 2026-12-01T19:30:00"
        )
    return value


#: A time in a request body: ISO 8601 (no offset = village time) or epoch seconds.
RequestTime = Annotated[datetime, AfterValidator(_in_range)]


class AnnouncementIn(BaseModel):
    """Body of ``POST /api/announcements`` (and of the MQTT ``cmd/announce`` topic)."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200, description="Short title shown to all.")
    text: str | None = Field(None, max_length=5000, description="Text read by TTS.")
    audio_id: str | None = Field(
        None, min_length=1, max_length=64, description="A recording from POST /api/audio."
    )
    category: Category = Field("notice", description="notice, news, meeting or emergency.")
    priority: Priority = Field("normal", description="normal, high or emergency.")
    zones: list[str] = Field(default_factory=lambda: ["all"], min_length=1, max_length=32)
    start_at: RequestTime | None = Field(
        None, description="First broadcast; no offset = village time; none = now."
    )
    rrule: str | None = Field(None, max_length=500, description="RFC 5545 RRULE.")
    exdates: list[RequestTime] = Field(default_factory=list, max_length=366)
    repeat: int = Field(1, ge=1, le=5, description="Times the message is said per broadcast.")
    expires_at: RequestTime | None = Field(None, description="Nothing plays at or after it.")
    voice: str | None = Field(
        None, max_length=40, description="north, central, south or piper:NAME (GET /api/voices)."
    )
    rate: float | None = Field(
        None,
        ge=RATE_MIN,
        le=RATE_MAX,
        description="Speaking rate, a factor of the voice's own (audio.rates): 0.8 slower for "
        "the elderly, 1.2 faster; none = the voice's. A text only.",
    )
    sentence_pause_s: float | None = Field(
        None,
        ge=0,
        le=PAUSE_MAX,
        description="Silence after each sentence (s); none = audio.sentence_pause_s.",
    )
    corrects: str | None = Field(None, description="The emergency this one corrects/cancels.")
    published: bool = Field(True, description="Shown on the residents' page.")
    meeting_at: RequestTime | None = Field(
        None,
        description="A meeting's own date and time (no offset = village time), which "
        "start_at (the broadcast) is not. Needed when category is meeting; given with the "
        "category left out, it makes the announcement a meeting.",
    )
    meeting_place: str | None = Field(
        None, max_length=PLACE_MAX, description="Where the meeting is (asked for a meeting)."
    )

    @field_validator("text", "meeting_place")
    @classmethod
    def _text(cls, v: str | None) -> str | None:
        return v.strip() if v is not None and v.strip() else None


class AnnouncementPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(None, min_length=1, max_length=200)
    text: str | None = Field(None, max_length=5000)
    audio_id: str | None = Field(None, min_length=1, max_length=64)
    category: Category | None = None
    priority: Priority | None = None
    zones: list[str] | None = Field(None, min_length=1, max_length=32)
    start_at: RequestTime | None = None
    rrule: str | None = Field(None, max_length=500)
    exdates: list[RequestTime] | None = Field(None, max_length=366)
    repeat: int | None = Field(None, ge=1, le=5)
    expires_at: RequestTime | None = None
    voice: str | None = Field(None, max_length=40)
    rate: float | None = Field(None, ge=RATE_MIN, le=RATE_MAX)
    sentence_pause_s: float | None = Field(None, ge=0, le=PAUSE_MAX)
    published: bool | None = None
    meeting_at: RequestTime | None = None
    meeting_place: str | None = Field(None, max_length=PLACE_MAX)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks: a signed-in user, ``mqtt:<topic>``, ``button:panel`` or a rule."""

    name: str
    role: str


def changes_json(changes: dict[str, Any]) -> dict[str, Any]:
    """A patch as the audit log keeps it (times as ISO text)."""
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in changes.items()}
