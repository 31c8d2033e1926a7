"""A notification: one thing to tell technicians or the village head, and its two forms.

The rules stage makes them; the notifier (``hub/automation/notify.py``) queues them; the
channels (``hub/automation/channels.py``) send them as plain text (e-mail, Telegram) or as
JSON (webhook), and the outbox keeps that same JSON on disk. Pure values: any thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from types import MappingProxyType
from typing import Any, Literal

from hub.clock import utc_iso

State = Literal["raised", "cleared"]


@dataclass(frozen=True, slots=True)
class Notification:
    """One thing to tell people. ``incident`` names the incident from raise to clear
    (an alert id, or rule + device) and is the de-duplication key with ``state``.

    ``channels`` empty means every configured channel. ``data`` goes into the
    webhook's JSON as it is (datetimes become ISO 8601 UTC).
    """

    incident: str
    title: str
    body: str
    severity: str
    state: State
    at: datetime
    data: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    channels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.incident:
            raise ValueError("a notification needs an incident key")
        if self.state not in ("raised", "cleared"):
            raise ValueError(f"state must be raised or cleared, not {self.state!r}")
        if self.at.tzinfo is None:
            raise ValueError("'at' must be an aware datetime (UTC)")
        object.__setattr__(self, "data", MappingProxyType(dict(self.data)))
        object.__setattr__(self, "channels", tuple(self.channels))


def label(n: Notification) -> str:
    """How bad, in a word: the e-mail subject's tag and the text's signature."""
    if n.state == "cleared":
        return "Đã khắc phục"
    return "Nghiêm trọng" if n.severity == "critical" else "Cảnh báo"


def render_text(n: Notification, tz: tzinfo = UTC) -> str:
    """The plain text of an e-mail or a Telegram message (local time of the village)."""
    when = n.at.astimezone(tz).strftime("%H:%M %d/%m/%Y")
    return f"{n.title}\n\n{n.body}\n\n— {label(n)} · {when} · mã sự cố {n.incident}"


def webhook_json(n: Notification) -> dict[str, Any]:
    """The message as a webhook receives it, and as the outbox stores it."""
    return {
        "incident": n.incident,
        "title": n.title,
        "body": n.body,
        "severity": n.severity,
        "state": n.state,
        "at": utc_iso(n.at),
        "data": dict(n.data),
    }


def from_webhook_json(d: Mapping[str, Any], channels: tuple[str, ...] = ()) -> Notification:
    """:func:`webhook_json` read back (the outbox after a restart)."""
    return Notification(
        incident=d["incident"],
        title=d["title"],
        body=d["body"],
        severity=d["severity"],
        state=d["state"],
        at=datetime.fromisoformat(d["at"]),
        data=MappingProxyType(d["data"]),
        channels=channels,
    )


def json_default(o: object) -> object:
    """``json.dumps``' fallback for what ``data`` may hold."""
    if isinstance(o, datetime):
        return utc_iso(o)
    if isinstance(o, set | frozenset | tuple):
        return list(o)
    if isinstance(o, Mapping):
        return dict(o)
    return str(o)
