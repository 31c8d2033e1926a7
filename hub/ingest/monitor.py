"""Monitor: device health (online / degraded / offline) and the alerts raised and cleared.

Runs in the ingest writer thread: ``observe`` is called for each stored event,
``tick`` on a timer for silence and tolerance timers. It decides; the caller
(ingest) writes the returned changes in the same transaction and publishes them.
Times are UTC epoch seconds from the hub's clock, never the device's.
"""

from __future__ import annotations

import operator
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import time
from zoneinfo import ZoneInfo

from devices.events import Availability, Reading
from hub.clock import local_time
from hub.events import AlertChange, Change, DeviceStatus, StatusChange
from hub.settings import HealthSettings, Threshold

__all__ = ["AlertChange", "Change", "Monitor", "StatusChange"]

Status = DeviceStatus

#: The comparisons a threshold (and a rule's metric trigger) may use.
OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass(slots=True)
class _Cond:
    """One threshold's debounced state: the raw condition and since when it has held."""

    raw: bool = False
    since: float = 0.0
    active: bool = False
    value: float | None = None
    alert_id: str | None = None
    raised_at: float = 0.0


@dataclass(slots=True)
class DeviceHealth:
    device_id: str
    kind: str
    status: Status = "unknown"
    last_seen: float | None = None
    said_offline: bool = False  # its status topic / will said offline
    silent: bool = False  # no data for longer than its timeout
    expected_offline: bool = False
    offline_alert: str | None = None
    offline_raised_at: float = 0.0
    conds: dict[str, _Cond] = field(default_factory=dict)


def _call(reason: str | Callable[[], str]) -> str:
    return reason if isinstance(reason, str) else reason()


def rule_name(t: Threshold) -> str:
    return f"{t.metric}{t.op}{t.value:g}"


def _in_window(window: str | None, at: float, tz: ZoneInfo) -> bool:
    if window is None:
        return True
    start_s, end_s = window.split("-")
    start, end = time.fromisoformat(start_s), time.fromisoformat(end_s)
    local = local_time(at, tz).time()
    if start <= end:
        return start <= local < end
    return local >= start or local < end  # a window across midnight


class Monitor:
    def __init__(
        self,
        settings: HealthSettings,
        tz: ZoneInfo,
        *,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex[:12],
    ) -> None:
        self.settings = settings
        self.tz = tz
        self.devices: dict[str, DeviceHealth] = {}
        self._new_id = new_id
        self._rule_names: dict[int, tuple[Threshold, str]] = {}

    # -- configuration per device ------------------------------------------------------
    def thresholds(self, device_id: str, kind: str) -> list[Threshold]:
        override = self.settings.devices.get(device_id)
        if override is not None and override.thresholds is not None:
            return override.thresholds
        k = self.settings.kinds.get(kind)
        return k.thresholds if k else []

    def sleeps(self, device_id: str) -> bool:
        override = self.settings.devices.get(device_id)
        return override is not None and override.sleeps

    def offline_after(self, device_id: str, kind: str) -> float | None:
        override = self.settings.devices.get(device_id)
        if override is not None and override.offline_after_s is not None:
            return override.offline_after_s
        k = self.settings.kinds.get(kind)
        return k.offline_after_s if k else None

    def restore(
        self,
        device_id: str,
        kind: str,
        status: Status,
        last_seen: float | None,
        open_alerts: Iterable[tuple[str, str, float]] = (),
    ) -> None:
        """Load what the database remembers at start (status, open alerts by rule)."""
        h = DeviceHealth(device_id, kind, status=status, last_seen=last_seen)
        h.said_offline = status == "offline"
        for alert_id, rule, raised_at in open_alerts:
            if rule == "offline":
                h.offline_alert, h.offline_raised_at = alert_id, raised_at
            else:
                h.conds[rule] = _Cond(
                    raw=True, since=raised_at, active=True, alert_id=alert_id, raised_at=raised_at
                )
        self.devices[device_id] = h

    # -- inputs -------------------------------------------------------------------------
    def observe(self, event: Reading | Availability, at: float) -> list[Change]:
        h = self.devices.get(event.device_id)
        if h is None:
            h = self.devices[event.device_id] = DeviceHealth(event.device_id, event.kind)
        changes: list[Change] = []
        if isinstance(event, Availability):
            if not event.online and self.sleeps(h.device_id):
                return changes  # going to sleep; its silence is what offline_after_s watches
            h.said_offline = not event.online
            h.expected_offline = event.expected and not event.online
            if event.online:
                h.last_seen = at
                h.silent = False
        else:
            h.last_seen = at
            h.silent = False
            h.said_offline = False  # data flowing means it is up, whatever the last will said
            for t in self.thresholds(h.device_id, h.kind):
                v = event.metrics.get(t.metric)
                if v is not None:
                    self._update_cond(h, t, float(v), at, changes)
        self._settle(h, at, changes, reason=lambda: self._reason(h, event))
        return changes

    def tick(self, now: float) -> list[Change]:
        """Silence timeouts and tolerance timers that expire without new data."""
        changes: list[Change] = []
        for h in self.devices.values():
            limit = self.offline_after(h.device_id, h.kind)
            if (
                limit is not None
                and h.last_seen is not None
                and not h.silent
                and now - h.last_seen >= limit
            ):
                h.silent = True
            for t in self.thresholds(h.device_id, h.kind):
                c = h.conds.get(self._rule_name(t))
                if c is not None and c.value is not None:
                    self._update_cond(h, t, c.value, now, changes, fresh=False)
            self._settle(h, now, changes, reason=f"no data for {limit:g} s" if h.silent else "")
        return changes

    # -- the state machine -------------------------------------------------------------
    def _update_cond(
        self,
        h: DeviceHealth,
        t: Threshold,
        value: float,
        at: float,
        changes: list[Change],
        *,
        fresh: bool = True,
    ) -> None:
        name = self._rule_name(t)
        c = h.conds.get(name)
        if c is None:
            c = h.conds[name] = _Cond(since=at)
        raw = OPS[t.op](value, t.value) and _in_window(t.during, at, self.tz)
        if fresh:
            c.value = value
        if raw != c.raw:
            c.raw, c.since = raw, at
        # Tolerance both ways: the condition must hold for_s to raise and be gone for_s to clear.
        if raw != c.active and at - c.since >= t.for_s:
            c.active = raw
            if raw:
                c.alert_id, c.raised_at = self._new_id(), at
                changes.append(
                    AlertChange(
                        c.alert_id,
                        h.device_id,
                        name,
                        t.severity,
                        "raised",
                        f"{h.device_id}: {t.metric} {value:g} {t.op} {t.value:g} for {t.for_s:g} s",
                        at,
                    )
                )
            elif c.alert_id:
                changes.append(
                    AlertChange(
                        c.alert_id,
                        h.device_id,
                        name,
                        t.severity,
                        "cleared",
                        f"{h.device_id}: {t.metric} back to {value:g}",
                        c.raised_at,
                        at,
                    )
                )
                c.alert_id = None

    def _rule_name(self, t: Threshold) -> str:
        # Once per threshold, not per message (the tuple keeps ``t`` alive: its id stays its own).
        hit = self._rule_names.get(id(t))
        if hit is None:
            hit = self._rule_names[id(t)] = (t, rule_name(t))
        return hit[1]

    def _settle(
        self,
        h: DeviceHealth,
        at: float,
        changes: list[Change],
        *,
        reason: str | Callable[[], str],
    ) -> None:
        """A callable ``reason`` is only called when something changes (text for people)."""
        offline = h.said_offline or h.silent
        if offline:
            new: Status = "offline"
        elif h.last_seen is None:
            new = h.status
        elif any(c.active for c in h.conds.values()):
            new = "degraded"
        else:
            new = "online"
        if new != h.status:
            changes.append(StatusChange(h.device_id, h.kind, new, h.status, at, _call(reason)))
            h.status = new
        if offline and h.offline_alert is None and not h.expected_offline:
            h.offline_alert, h.offline_raised_at = self._new_id(), at
            changes.append(
                AlertChange(
                    h.offline_alert,
                    h.device_id,
                    "offline",
                    "critical",
                    "raised",
                    f"{h.device_id} is offline ({_call(reason) or 'status offline'})",
                    at,
                )
            )
        elif not offline and h.offline_alert is not None:
            changes.append(
                AlertChange(
                    h.offline_alert,
                    h.device_id,
                    "offline",
                    "critical",
                    "cleared",
                    f"{h.device_id} is back online",
                    h.offline_raised_at,
                    at,
                )
            )
            h.offline_alert = None

    @staticmethod
    def _reason(h: DeviceHealth, event: Reading | Availability) -> str:
        if isinstance(event, Availability):
            return "its status topic said " + ("online" if event.online else "offline")
        active = [n for n, c in h.conds.items() if c.active]
        return ("thresholds: " + ", ".join(active)) if active else "data received"
