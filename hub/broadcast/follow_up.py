"""Broadcast stage, an emergency's end: what is in force, and the follow-up that says it is over.

An emergency stays in force (the residents' red banner) until it is stopped on air, ended by
the head or a rule that clears, or expires. Ending one may send a follow-up: an "all clear"
or a correction, a new announcement played now and linked to the emergency through
``corrects`` (each page links the other). The service (:mod:`hub.broadcast.announcements`)
does the writes; this module only says what the follow-up is.
"""

from __future__ import annotations

import json
from typing import Literal

from hub.broadcast.models import AnnouncementIn
from hub.store.announcements import Row

FollowKind = Literal["all_clear", "correction"]
FOLLOW_KINDS: tuple[FollowKind, ...] = ("all_clear", "correction")

#: The follow-up's title before the emergency's own: the loudspeakers' language.
TITLE_PREFIX: dict[FollowKind, str] = {
    "all_clear": "Hết khẩn cấp",
    "correction": "Đính chính",
}
#: What the follow-up says may be long, not endless: the same bound as the API's text.
FOLLOW_TEXT_LIMIT = 2000


def is_emergency(row: Row) -> bool:
    return bool(row["priority"] == "emergency" or row["category"] == "emergency")


def follow_up_body(original: Row, kind: FollowKind, text: str) -> AnnouncementIn:
    """The follow-up as a request: priority high (it must be heard, it must not cut an
    emergency still to come), to the emergency's zones, now, linked to it."""
    title = f"{TITLE_PREFIX[kind]}: {original['title']}"
    return AnnouncementIn(
        title=title[:200],
        text=text.strip()[:FOLLOW_TEXT_LIMIT],
        category="notice",
        priority="high",
        zones=json.loads(original["zones"]),
        corrects=original["id"],
        published=bool(original["published"]),
    )
