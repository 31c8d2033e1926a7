"""What the rules fired and what became of their notifications, for the pages.

Plain functions over the hub, as :mod:`hub.web.views` is for the devices: a firing's result
lines in words (:func:`action_results`: a notification sent, failed, waiting or sent
nowhere), the incidents the rules still hold raised (:func:`raised_rules`: the alerts page
lists them above the device alerts, so a flood is never "everything is fine"), and the
dashboard's line while notifications go nowhere (:func:`notify_notice`, drawn by
``templates/_notify_status.html``). Read from :mod:`hub.store.rules` (the firing log, its
lines written by :mod:`hub.automation.notify_status`) and the alerts service.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from hub.app import Hub
from hub.automation import notify_status
from hub.automation.notify_status import NotifyPart
from hub.broadcast.hub_alerts import HUB
from hub.errors import NotFound
from hub.store import rules as firing_rows
from hub.store.alerts import Alert
from hub.web.staff_words import cause_words, result_parts
from hub.web.views import alert_title
from hub.words import Translator

Tone = Literal["ok", "warn", "failed", "pending"]


@dataclass(frozen=True, slots=True)
class ResultView:
    """One action's result on a firing, in words: ``what`` (the action), ``how`` it went,
    its ``tone`` (the colour and the sign) and a small ``detail`` (a channel's error)."""

    what: str
    how: str
    tone: Tone
    detail: str = ""


def _notify_words(t: Translator, what: str, p: NotifyPart) -> ResultView:
    ch = p.channel or ""
    n = str(p.attempts)
    error = t("rules.notify.channel", channel=ch) + (f": {p.error}" if p.error else "")
    if p.outcome == "unconfigured":
        return ResultView(what, t("rules.notify.unconfigured"), "warn")
    if p.outcome == "queued":
        return ResultView(what, t("rules.notify.queued", channel=ch), "pending")
    if p.outcome == "retrying":
        return ResultView(
            what, t("rules.notify.retrying", channel=ch, n=n), "pending", p.error or ""
        )
    if p.outcome == "sent":
        return ResultView(what, t("rules.notify.sent", channel=ch), "ok")
    if p.outcome == "failed":
        return ResultView(what, t("rules.notify.failed", n=n), "failed", error)
    if p.outcome == "dropped":
        return ResultView(what, t("rules.notify.dropped"), "failed", error)
    return ResultView(what, t("rules.notify.handed", channel=ch), "ok")


def action_results(t: Translator, lines: Sequence[str]) -> list[ResultView]:
    """A firing's result lines (``actions`` of :class:`~hub.store.rules.FiringRow`) in words;
    a notify action's, one per channel: sent, failed, waiting, or sent nowhere."""
    out: list[ResultView] = []
    for text in lines:
        parts = notify_status.parse(text)
        what, how, failed = result_parts(t, text)
        if parts is None:
            out.append(ResultView(what, how, "failed" if failed else "ok"))
        else:
            out.extend(_notify_words(t, what, p) for p in parts)
    return out


@dataclass(frozen=True, slots=True)
class RaisedRule:
    """A rule's incident still raised (a flood level, a device down): the alerts page
    lists it above the device alerts, with the announcement it made."""

    rule_id: str
    name: str
    level: str
    device: str | None
    at: float
    cause: str
    results: list[ResultView]
    announcement: Mapping[str, Any] | None
    emergency: bool


#: Raised incidents listed at most (one per rule and device).
RAISED_SHOWN = 50


def raised_rules(hub: Hub, t: Translator) -> list[RaisedRule]:
    """What the running rules fired that has not cleared, emergencies first, then newest."""
    running = hub.rules.rules
    out: list[RaisedRule] = []
    for f in firing_rows.still_raised(hub.store.connection(), RAISED_SHOWN):
        rule = running.get(f.rule_id)
        if rule is None or not rule.enabled:
            continue  # switched off or deleted: its incident will never clear
        made = [a for text in f.actions if (a := _announced(text))]
        shown = hub.announcements.get(made[0], staff=True) if made else None
        device = _device_name(hub, f.device_id) if f.device_id else None
        out.append(
            RaisedRule(
                rule_id=rule.id,
                name=rule.name,
                level=str(rule.vars.get("level", "")),
                device=device,
                at=f.at,
                cause=cause_words(t, f.cause, hub.settings.tz),
                results=action_results(t, f.actions),
                announcement=shown,
                emergency=shown is not None and shown.get("priority") == "emergency",
            )
        )
    out.sort(key=lambda r: (not r.emergency, -r.at))
    return out


def _device_name(hub: Hub, device_id: str) -> str:
    try:
        return hub.devices.get(device_id).name or device_id
    except NotFound:
        return device_id


def _announced(text: str) -> str | None:
    kind, _, aid = text.partition(": ")
    aid = aid.split(" ", 1)[0]  # "<id> (value not spoken: …)"
    return aid if kind == "announce" and _AID.match(aid) else None


_AID = re.compile(r"^[A-Za-z0-9_-]{4,64}$")


@dataclass(frozen=True, slots=True)
class NotifyNotice:
    """The dashboard's line while notifications go nowhere: how many since the
    ``notify_undelivered`` alert opened (0: some, not counted: a non-rule message)."""

    count: int
    text: str
    href: str = "/app/alerts"


#: How far back the dashboard counts undelivered notifications, and how many firings.
NOTICE_WINDOW_S = 7 * 86_400.0
NOTICE_FIRINGS = 500


def notify_notice(hub: Hub, t: Translator) -> NotifyNotice | None:
    """None while every notification went somewhere; else how many went nowhere since the
    alert last cleared (the firing log's undelivered, unconfigured and failed results)."""
    if not any(a.rule == notify_status.ALERT_RULE for a in hub.alerts.open(HUB)):
        return None
    since = hub.clock.now().timestamp() - NOTICE_WINDOW_S
    for a in hub.alerts.cleared(HUB, 30):
        if a.rule == notify_status.ALERT_RULE and a.cleared_at is not None:
            since = max(since, a.cleared_at)
            break
    count = sum(
        1
        for f in firing_rows.since(hub.store.connection(), since, NOTICE_FIRINGS)
        for text in f.actions
        for p in notify_status.parse(text) or ()
        if p.undelivered
    )
    text = t("notify.undelivered", n=str(count)) if count else t("notify.undelivered_some")
    return NotifyNotice(count, text)


def alert_title_counted(t: Translator, a: Alert, notice: NotifyNotice | None) -> str:
    """:func:`alert_title`, with the count on the undelivered notifications' alert."""
    if a.rule == notify_status.ALERT_RULE and notice is not None and notice.count:
        return t("alert.notify_undelivered_n", n=str(notice.count))
    return alert_title(t, a)
