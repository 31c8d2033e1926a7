"""Ingest's limits: what one device may not make the writer (hub/ingest/writer.py) keep.

Between decoding (devices/adapters) and the store, the writer asks two things of each
event; both are pure and cost nothing on the usual message:

- a command (``cmd/announce``, a button event) that arrives retained is the broker
  replaying an old one at a new subscription, at each start on a new session: it runs
  when it is sent, never again (:func:`replayed_command`);
- a device has at most ``ingest.max_metrics_per_device`` metric names, and as many info
  names: one AP sending 100 new keys per message would otherwise grow its row, the
  device list and Home Assistant's discovery configs without end (:func:`cap_names`).

What these refuse becomes a dead letter with the reason given here. Beside them,
:class:`TopicLimit` bounds the retained discovery configs the hub publishes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from devices.events import AnnounceCommand, ButtonPress, Event, Reading

log = logging.getLogger(__name__)

#: Dead-letter reasons, also the counters' names (``dead_by_reason``).
RETAINED_COMMAND = "retained command"
TOO_MANY_NAMES = "too many metric names"

RETAINED_COMMAND_REASON = (
    f"{RETAINED_COMMAND}: ignored, a command runs when it is sent, not when the broker"
    " replays it (clear it: mosquitto_pub -r -n -t TOPIC)"
)


def replayed_command(ev: Event, retain: bool) -> bool:
    """A command the broker delivered as retained: a replay, not a new command.

    A retained message published while the hub is subscribed reaches it with the
    retain flag cleared (MQTT 3.1.1 §3.3.1.3), so a live command still runs once.
    """
    return retain and isinstance(ev, AnnounceCommand | ButtonPress)


def cap_names(
    ev: Reading, metrics: Mapping[str, object], info: Mapping[str, object], cap: int
) -> tuple[Reading | None, str] | None:
    """None while the device (whose known names are ``metrics`` and ``info``) stays
    within ``cap`` names of each: the usual case, four lengths compared. Else the reading
    with the names it may keep (known ones, then new ones while there is room; None when
    that leaves nothing) and the dead letter's reason for the rest."""
    if len(metrics) + len(ev.metrics) <= cap and len(info) + len(ev.info) <= cap:
        return None
    dropped: list[str] = []
    kept_metrics = _within(ev.metrics, metrics, cap, dropped)
    kept_info = _within(ev.info, info, cap, dropped)
    if not dropped:
        return None
    shown = ", ".join(repr(name[:40]) for name in dropped[:3])
    more = f" and {len(dropped) - 3} more" if len(dropped) > 3 else ""
    reason = (
        f"{TOO_MANY_NAMES} for device {ev.device_id} (limit {cap}): {shown}{more} not kept;"
        " raise ingest.max_metrics_per_device if the device really has them"
    )
    if not kept_metrics and not kept_info:
        return None, reason
    return Reading(ev.source, ev.device_id, ev.kind, kept_metrics, ev.ts, kept_info), reason


def _within(
    new: Mapping[str, Any], known: Mapping[str, object], cap: int, dropped: list[str]
) -> dict[str, Any]:
    """The entries of ``new`` a device may keep: names it has, then new names while it
    has fewer than ``cap``; the names left out are added to ``dropped``."""
    kept: dict[str, Any] = {}
    room = cap - len(known)
    for name, value in new.items():
        if name in known:
            kept[name] = value
        elif room > 0:
            kept[name] = value
            room -= 1
        else:
            dropped.append(name)
    return kept


class TopicLimit:
    """At most ``limit`` distinct topics published, counted by who they are for.

    :meth:`allow` answers which of a key's topics may go out: those it already has,
    then new ones while the total stays within the limit; the rest are counted in
    :attr:`withheld` and the first refusal is logged. Thread-safe (the writer thread
    and paho's call it).
    """

    def __init__(self, limit: int, what: str, setting: str) -> None:
        self.limit = limit
        self.what = what
        self.setting = setting
        self._lock = threading.Lock()
        self._sent: dict[str, frozenset[str]] = {}
        self._total = 0
        self._withheld: dict[str, int] = {}
        self._warned = False

    @property
    def total(self) -> int:
        return self._total

    @property
    def withheld(self) -> int:
        """Topics refused, as of each key's last :meth:`allow`."""
        with self._lock:
            return sum(self._withheld.values())

    def reset(self) -> None:
        """Everything is published again (after a reconnect): count from zero."""
        with self._lock:
            self._sent.clear()
            self._withheld.clear()
            self._total = 0

    def allow(self, key: str, topics: Sequence[str]) -> frozenset[str]:
        with self._lock:
            sent = self._sent.get(key, frozenset())
            new = [t for t in dict.fromkeys(topics) if t not in sent]
            room = max(0, self.limit - self._total)
            now = sent | frozenset(new[:room])
            self._sent[key] = now
            self._total += len(now) - len(sent)
            refused = len(new) - min(room, len(new))
            if not refused:
                self._withheld.pop(key, None)
                return now
            self._withheld[key] = refused
            warn, self._warned = not self._warned, True
        if warn:
            log.warning(
                "%s: the limit of %d is reached (%s); %d more for %s and any later ones are"
                " not published. Raise the limit, or find the device that keeps sending new"
                " names.",
                self.what,
                self.limit,
                self.setting,
                refused,
                key,
            )
        return now
