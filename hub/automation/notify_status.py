"""Notify, what became of each message: the rule's firing log and the hub's alert say it.

Its place in the flow: a rule's notify action (``hub/automation/actions.py``) logs one line
per action when it fires: the channels it was queued for, or that it had none. The notifier
(``hub/automation/notify.py``) reports each attempt's outcome (:class:`Delivery`) to
:meth:`NotifyStatus.delivered`, which rewrites that line (retrying, sent, failed) and keeps
one hub alert, ``notify_undelivered`` (warning), open while a notification went nowhere: a
channel whose last message failed after its retries (or was dropped), or a group with no
channel at all (:meth:`NotifyStatus.unconfigured`). It is raised once, whatever follows,
and cleared when every channel that failed has since delivered a later message. A group
with no channel only gets one by a settings change, which means a restart: the alert left
open then is cleared by the next delivered message, and raised again if a rule still
notifies nobody.

The line is read back by the pages (:func:`parse`) to say, in words, "not sent: no channel
configured", "failed (attempt 3)" or "sent to …".

Threads: ``unconfigured`` runs in the ingest writer (the rules); ``delivered`` in the
notifier's worker, which hands the firing log's update to the writer (``handover``): the
writer logs the firing after its actions ran, so the update must queue behind it.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from hub.automation.notify import Delivery
from hub.broadcast.hub_alerts import HubAlerts
from hub.events import AlertChange
from hub.store import Store
from hub.store import rules as firing_rows

__all__ = ["ALERT_RULE", "NotifyPart", "NotifyStatus", "line", "parse", "queued_line"]

log = logging.getLogger(__name__)

#: The hub alert's rule name (its words: ``alert.rule.notify_undelivered``).
ALERT_RULE = "notify_undelivered"
#: The firing log's line for a notify action that had no channel.
UNCONFIGURED = "notify: no channel configured"
#: An error kept in a line: short, and without the separator of the channels' parts.
_ERROR_MAX = 160

Outcome = Literal["unconfigured", "queued", "retrying", "sent", "failed", "dropped", "handed"]
#: What still counts as a notification that went nowhere.
UNDELIVERED: frozenset[str] = frozenset({"unconfigured", "failed", "dropped"})

_PART = re.compile(
    r"^(?P<ch>[a-z0-9][a-z0-9-]*): (?:(?P<queued>queued)"
    r"|(?P<outcome>sent|retrying|failed) \(attempt (?P<n>\d+)\)(?:: (?P<err>.*))?"
    r"|dropped: (?P<dropped>.*))$"
)
_LEGACY = re.compile(r"^[a-z0-9][a-z0-9-]*(?:, [a-z0-9][a-z0-9-]*)*$")


@dataclass(frozen=True, slots=True)
class NotifyPart:
    """One channel's state in a notify action's line (``channel`` None: no channel at all).

    ``handed``: a line written before outcomes were logged, only the channels it went to."""

    channel: str | None
    outcome: Outcome
    attempts: int = 0
    error: str | None = None

    @property
    def undelivered(self) -> bool:
        return self.outcome in UNDELIVERED

    def text(self) -> str:
        ch = self.channel or ""
        if self.outcome == "queued":
            return f"{ch}: queued"
        if self.outcome == "dropped":
            return f"{ch}: dropped: {self.error or 'queue full'}"
        if self.outcome == "handed":
            return ch
        tail = f": {self.error}" if self.error else ""
        return f"{ch}: {self.outcome} (attempt {self.attempts}){tail}"


def line(parts: Sequence[NotifyPart]) -> str:
    """A notify action's line in the firing log: ``notify: hook: sent (attempt 1); …``."""
    if not parts or parts[0].outcome == "unconfigured":
        return UNCONFIGURED
    return "notify: " + "; ".join(p.text() for p in parts)


def queued_line(channels: Sequence[str]) -> str:
    """The line when the rule fires: queued for each channel, or no channel at all."""
    return line([NotifyPart(ch, "queued") for ch in channels])


def parse(text: str) -> list[NotifyPart] | None:
    """A logged line read back; None when it is not a notify action's result (or one
    whose action itself failed: the page shows that line as it is)."""
    if not text.startswith("notify: "):
        return None
    if text == UNCONFIGURED:
        return [NotifyPart(None, "unconfigured")]
    body = text[len("notify: ") :]
    if _LEGACY.match(body):
        return [NotifyPart(ch, "handed") for ch in body.split(", ")]
    out: list[NotifyPart] = []
    for chunk in body.split("; "):
        m = _PART.match(chunk)
        if m is None:
            return None
        if m["queued"]:
            out.append(NotifyPart(m["ch"], "queued"))
        elif m["dropped"] is not None:
            out.append(NotifyPart(m["ch"], "dropped", error=m["dropped"] or None))
        else:
            outcome: Outcome = m["outcome"]  # type: ignore[assignment]
            out.append(NotifyPart(m["ch"], outcome, int(m["n"]), m["err"] or None))
    return out


def _error(reason: str | None) -> str | None:
    if not reason:
        return None
    flat = " ".join(reason.replace(";", ",").split())
    return flat if len(flat) <= _ERROR_MAX else flat[: _ERROR_MAX - 1] + "…"


def part_of(d: Delivery) -> NotifyPart:
    """A notifier's report as its channel's part of the line."""
    if d.outcome == "retry":
        return NotifyPart(d.channel, "retrying", d.attempts, _error(d.error))
    if d.outcome == "dropped":
        return NotifyPart(d.channel, "dropped", d.attempts, _error(d.error))
    return NotifyPart(d.channel, d.outcome, d.attempts, _error(d.error))


def with_part(text: str, new: NotifyPart) -> str | None:
    """``text`` with ``new.channel``'s part replaced; None when the line has no such part."""
    parts = parse(text)
    if not parts or not any(p.channel == new.channel for p in parts):
        return None
    return line([new if p.channel == new.channel else p for p in parts])


class NotifyStatus:
    """Outcomes into the firing log, and the ``notify_undelivered`` alert.

    ``handover`` runs a firing-log update in the thread that writes the firing log (the
    ingest writer's ``call``); without it the update runs in the caller's thread."""

    def __init__(
        self,
        store: Store,
        alerts: HubAlerts,
        *,
        handover: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        self.store = store
        self.alerts = alerts
        self._handover = handover or (lambda job: job())
        self._lock = threading.Lock()  # the writer and the notifier's worker both report
        # What keeps the alert open: "channel:<name>" (its last message failed) or
        # "to:<names>" (a notification to these groups had no channel); "*" for an alert
        # a previous run left open, cleared by the next delivered message.
        self._broken: dict[str, str] = {}
        self._alert: AlertChange | None = alerts.open_alert(ALERT_RULE)
        if self._alert is not None:
            self._broken["*"] = "left open by the previous run"

    # -- the rules (ingest writer thread) ---------------------------------------------------
    def unconfigured(self, incident: str, state: str, to: Sequence[str]) -> None:
        """A notify action named groups or channels that resolve to no channel."""
        names = ", ".join(to) or "nobody"
        log.warning("notification %s (%s) to %s: no channel configured", incident, state, names)
        self._broken_by(f"to:{names}", f"a rule notifies {names}, which has no channel")

    # -- the notifier (its worker thread; a dropped message: the sender's thread) ----------------
    def delivered(self, d: Delivery) -> None:
        """What became of one message on one channel: into its firing's line, and the
        alert raised or cleared."""
        part = part_of(d)
        self._handover(lambda: self._log(d.incident, d.state, part))
        if d.outcome == "sent":
            self._repaired(d.channel)
        elif d.outcome in ("failed", "dropped"):
            what = f"{d.outcome} after {d.attempts} attempt(s)" if d.attempts else d.outcome
            self._broken_by(f"channel:{d.channel}", f"{d.channel}: {what}: {d.error or '?'}")

    def _log(self, incident: str, state: str, part: NotifyPart) -> None:
        try:
            with self.store.transaction() as conn:
                firing_rows.update_result(conn, incident, state, lambda text: with_part(text, part))
        except Exception:  # a full disk: the delivery happened all the same
            log.exception("firing log of %s not updated", incident)

    # -- the alert --------------------------------------------------------------------------
    def _broken_by(self, key: str, why: str) -> None:
        with self._lock:
            self._broken[key] = why
            if self._alert is None:
                self._alert = self.alerts.raise_(
                    ALERT_RULE,
                    "warning",
                    f"a notification went nowhere ({why}); see the rule's firings",
                )

    def _repaired(self, channel: str) -> None:
        with self._lock:
            self._broken.pop(f"channel:{channel}", None)
            self._broken.pop("*", None)
            if self._alert is not None and not self._broken:
                raised, self._alert = self._alert, None
                self.alerts.clear(raised)
