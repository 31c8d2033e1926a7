"""Rule actions: what a firing rule does, through the effects the composition root injects.

The engine (``hub/automation/rules.py``) decides when a rule raises or clears; this module
turns each of its actions into an announcement, a notification, a switched output or an
MQTT message, and into the one line the firing log keeps. Runs in the ingest writer thread:
every effect only hands work over (announcements render in their own worker, notifications
queue, a relay switches in microseconds).

An emergency that reads a live value (``{value}``: the river's level) is assembled when it
fires (``hub/broadcast/rendering.py``); when the value could not be spoken in time the
fixed words play without it, and :class:`SpokenValues` writes that on the firing's line:
the head sees the residents did not hear the number.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
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
from hub.automation.templates import reads_value, render_template, spoken_context
from hub.store import Store
from hub.store import rules as firing_rows
from hub.words.devices import spoken_name

log = logging.getLogger(__name__)

#: Announcements awaiting their render that SpokenValues remembers (a burst of firings).
_PENDING_MAX = 256
#: The mark an announce line gets when its value was not spoken.
UNSPOKEN = "value not spoken"


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


class SpokenValues:
    """Which firing made which emergency text with a live value, until its render says the
    value could not be spoken: then the firing's announce line says so.

    ``expect`` runs in the ingest writer (the rule fires); ``unspoken`` in the renderer's
    caller (the ``announce-cmd`` worker), which hands the line's update to the writer
    (``handover``): the firing is logged after its actions, so the update queues behind."""

    def __init__(self, store: Store, handover: Callable[[Callable[[], None]], Any]) -> None:
        self.store = store
        self._handover = handover
        self._lock = threading.Lock()
        self._pending: OrderedDict[str, str] = OrderedDict()

    def expect(self, text: str, incident: str) -> None:
        with self._lock:
            self._pending[text] = incident
            self._pending.move_to_end(text)
            while len(self._pending) > _PENDING_MAX:
                self._pending.popitem(last=False)

    def unspoken(self, text: str, reason: str) -> None:
        with self._lock:
            incident = self._pending.pop(text, None)
        if incident is not None:
            self._handover(lambda: self._mark(incident, reason))

    def _mark(self, incident: str, reason: str) -> None:
        def change(line: str) -> str | None:
            if not line.startswith("announce: ") or UNSPOKEN in line:
                return None
            return f"{line} ({UNSPOKEN}: {reason})"

        try:
            with self.store.transaction() as conn:
                firing_rows.update_result(conn, incident, "raised", change)
        except Exception:  # a full disk: the broadcast happened all the same
            log.exception("firing log of %s not updated", incident)


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
    #: Emergencies with a live value, followed to their render (None: not followed).
    values: SpokenValues | None = None


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
        # Read aloud: the device by its spoken name, not by what the pages call it.
        text = render_template(template, spoken_context(ctx))
        body = {
            "title": a.title if raised else f"{a.title} (đã qua)",
            "text": text,
            "category": a.category if raised else "notice",
            "priority": a.priority if raised else "high",
            "zones": a.zones,
            "repeat": a.repeat,
        }
        if not raised and corrects:
            body["corrects"] = corrects
        if e.values is not None and body["priority"] == "emergency" and reads_value(template):
            e.values.expect(text, incident)  # before the render can report on it
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
