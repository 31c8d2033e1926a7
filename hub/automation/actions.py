"""Rule actions: what a firing rule does, through the effects the composition root injects.

The engine (``hub/automation/rules.py``) decides when a rule raises or clears; this module
turns each of its actions into an announcement, a notification, a switched output or an
MQTT message, and into the one line the firing log keeps. Runs in the ingest writer thread:
every effect only hands work over (announcements render in their own worker, notifications
queue, a relay switches in microseconds).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from hub.automation.notify_status import queued_line
from hub.automation.rule_model import (
    Action,
    AnnounceAction,
    NotifyAction,
    PublishAction,
    SwitchAction,
    output_limit,
)
from hub.automation.templates import render_template, spoken_context
from hub.words.devices import spoken_name


@dataclass
class DeviceView:
    """A device as rules see it: its names for templates, its kind and zone for conditions.

    ``name`` is what the pages and notifications call it; ``spoken`` what the loudspeakers
    say (empty: derived from ``name``, else its kind and number, never its id spelled out);
    ``zone_name`` the zone as people call it."""

    id: str
    name: str
    kind: str
    zone: str | None = None
    spoken: str | None = None
    location: str = ""
    zone_name: str = ""

    @property
    def spoken_name(self) -> str:
        return spoken_name(self.id, self.kind, spoken=self.spoken, display=self.name)


@dataclass
class Effects:
    """What actions do, injected by the composition root (and by tests)."""

    announce: Callable[[dict[str, Any], str], str | None]
    notify: Callable[[Sequence[str], dict[str, Any]], list[str]]
    switch: Callable[[str, float], None]
    publish: Callable[[str, bytes, bool, int], None]
    groups: Mapping[str, Sequence[str]] = field(default_factory=dict)
    outputs: Sequence[str] = ()
    zones: Sequence[str] = ()


def perform(
    e: Effects,
    a: Action,
    rule_id: str,
    state: Literal["raised", "cleared"],
    *,
    incident: str,
    corrects: str | None,
    ctx: Mapping[str, str],
) -> tuple[str, str | None]:
    """Do one action; (the firing log's line, the announcement it made when it raised one).

    ``corrects`` is the announcement the raise made: the clearing one is linked to it."""
    raised = state == "raised"
    if isinstance(a, AnnounceAction):
        template = a.template if raised else a.clear_template
        if template is None:
            return "announce: nothing to say when it clears", None
        body = {
            "title": a.title if raised else f"{a.title} (đã qua)",
            # Read aloud: the device by its spoken name, not by what the pages call it.
            "text": render_template(template, spoken_context(ctx)),
            "category": a.category if raised else "notice",
            "priority": a.priority if raised else "high",
            "zones": a.zones,
            "repeat": a.repeat,
        }
        if not raised and corrects:
            body["corrects"] = corrects
        aid = e.announce(body, f"rule:{rule_id}")
        return f"announce: {aid or 'queued'}", aid
    if isinstance(a, NotifyAction):
        template = (
            a.template if raised else (a.clear_template or f"Đã trở lại bình thường: {a.template}")
        )
        sent = e.notify(
            a.to,
            {
                "incident": incident,
                "title": a.title,
                "body": render_template(template, ctx),
                "state": state,
                "severity": "critical" if raised else "info",
            },
        )
        # Queued for each channel (the notifier's outcomes rewrite it), or sent nowhere.
        return queued_line(sent), None
    if isinstance(a, SwitchAction):
        if not raised:
            return "switch: nothing to do when it clears", None
        e.switch(a.output, a.duration_s)
        return f"switch: {a.output} on for {a.duration_s:g} s", None
    if isinstance(a, PublishAction):
        topic = render_template(a.topic, ctx, limit=output_limit("topic"))
        payload = render_template(a.payload, ctx, limit=output_limit("payload"))
        e.publish(topic, payload.encode(), a.retain, a.qos)
        return f"publish: {topic}", None
    raise TypeError(type(a).__name__)
