"""Broadcast stage, its requests: what the village head asks for, and who asks.

``AnnouncementIn`` is the body of ``POST /api/announcements``, of the compose page and
of the MQTT ``cmd/announce`` topic; ``AnnouncementPatch`` a change to one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub.errors import Invalid
from hub.events import Priority

Category = Literal["notice", "news", "meeting", "emergency"]


class AnnouncementError(Invalid):
    """An announcement request that cannot be honoured as given: a field, a zone, a time."""


class AnnouncementIn(BaseModel):
    """Body of ``POST /api/announcements`` (and of the MQTT ``cmd/announce`` topic)."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200, description="Short title shown to all.")
    text: str | None = Field(None, max_length=5000, description="Text read by TTS.")
    audio_id: str | None = Field(None, description="A recording from POST /api/audio.")
    category: Category = Field("notice", description="notice, news, meeting or emergency.")
    priority: Priority = Field("normal", description="normal, high or emergency.")
    zones: list[str] = Field(default_factory=lambda: ["all"], min_length=1, max_length=32)
    start_at: datetime | None = Field(
        None, description="First broadcast; no offset = village time; none = now."
    )
    rrule: str | None = Field(None, max_length=500, description="RFC 5545 RRULE.")
    exdates: list[datetime] = Field(default_factory=list, max_length=366)
    repeat: int = Field(1, ge=1, le=5, description="Times the message is said per broadcast.")
    expires_at: datetime | None = Field(None, description="Nothing plays at or after it.")
    voice: str | None = Field(None, max_length=40, description="north, central or south.")
    corrects: str | None = Field(None, description="The emergency this one corrects/cancels.")
    published: bool = Field(True, description="Shown on the residents' page.")

    @field_validator("text")
    @classmethod
    def _text(cls, v: str | None) -> str | None:
        return v.strip() if v is not None and v.strip() else None


class AnnouncementPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(None, min_length=1, max_length=200)
    text: str | None = Field(None, max_length=5000)
    audio_id: str | None = None
    category: Category | None = None
    priority: Priority | None = None
    zones: list[str] | None = Field(None, min_length=1, max_length=32)
    start_at: datetime | None = None
    rrule: str | None = Field(None, max_length=500)
    exdates: list[datetime] | None = Field(None, max_length=366)
    repeat: int | None = Field(None, ge=1, le=5)
    expires_at: datetime | None = None
    voice: str | None = Field(None, max_length=40)
    published: bool | None = None


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks: a signed-in user, ``mqtt:<topic>``, ``button:panel`` or a rule."""

    name: str
    role: str


def changes_json(changes: dict[str, Any]) -> dict[str, Any]:
    """A patch as the audit log keeps it (times as ISO text)."""
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in changes.items()}
