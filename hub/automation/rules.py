"""Rules: events turn into announcements, notifications, switched outputs and MQTT messages.

A rule has one trigger (a metric crossing a threshold for a while, with hysteresis
on the way back; a device status; an alert; a button; a schedule), conditions
(devices, kinds, zones, time of day) and actions. Each (rule, device) pair is one
incident from the moment it raises to the moment it clears: actions fire once when
it raises, "clear" actions (a cancellation announcement, an all-clear message) once
when it clears, and a cooldown keeps a flapping sensor from raising again at once.

The language is in ``rule_model.py``, the actions in ``actions.py``, the stored rules
and firings in ``hub/store/rules.py``; the staff edit rules through ``rule_book.py``, and
one that reaches the loudspeakers, a relay or the broker runs only once a head approved it.

Threads: ``observe`` (:meth:`RulesEngine.on_messages`), ``tick`` and ``reload`` run in the
ingest writer thread (as the monitor does); actions are handed over without blocking it.
"""

from __future__ import annotations

import fnmatch
import logging
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError

from devices.events import ButtonPress, Reading
from hub.automation.actions import DeviceView, Effects, perform
from hub.automation.rule_model import (
    AlertTrigger,
    AnnounceAction,
    ButtonTrigger,
    MetricTrigger,
    Rule,
    ScheduleTrigger,
    StatusTrigger,
    needs_approval,
    validate_rule,
)
from hub.automation.templates import render_template, spoken_context, value_text
from hub.broadcast.recurrence import Recurrence, in_window
from hub.clock import Clock, local_time, utc_iso
from hub.events import AlertChange, Change, MessagesStored, StatusChange, Stored
from hub.ingest.monitor import OPS
from hub.store import Store
from hub.store import rules as repo
from hub.store.rules import Approval, RuleRow
from hub.words.devices import spoken_name

__all__ = ["RulesEngine"]

log = logging.getLogger(__name__)

#: Whole values from a metric rule's limit on, foreseen in its emergency texts.
_PREDICTED_VALUES = 11


@dataclass(slots=True)
class _Incident:
    raw: bool = False
    since: float = 0.0
    active: bool = False
    value: float | None = None
    incident: str | None = None
    last_raised: float = -1e18
    announcement: str | None = None
    suppressed: int = 0
    fired: bool = False


class RulesEngine:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        tz: Any,
        effects: Effects,
        *,
        device: Callable[[str], DeviceView | None],
        status_of: Callable[[str], str | None] = lambda d: None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.tz = tz
        self.effects = effects
        self._device = device
        self._status_of = status_of
        self.rules: dict[str, Rule] = {}
        # Enabled rules by trigger type, built at reload: observe() runs per message.
        self._by_type: dict[type, list[Rule]] = {}
        self._state: dict[tuple[str, str], _Incident] = {}
        self._next_schedule: dict[str, datetime | None] = {}
        self.firings = 0

    # -- rules in the database ------------------------------------------------------------
    def seed(self, rules: Sequence[Rule]) -> None:
        """Rules from the config file go in unless the database has them (edited ones win).

        The file is the installer's, as trusted as the hub's own settings: its rules come
        approved (also those a database from before approvals holds as the file wrote them).
        """
        now = self.clock.now().timestamp()
        approval = Approval("approved", "config", now)
        with self.store.transaction() as conn:
            for r in rules:
                self.validate(r)
                if repo.insert(
                    conn,
                    r.id,
                    r.model_dump_json(),
                    source="config",
                    created_by="config",
                    at=now,
                    approval=approval,
                ):
                    continue
                row = repo.get(conn, r.id)
                if row is not None and row.source == "config" and row.approval is None:
                    repo.set_approval(conn, r.id, approval)

    def validate(self, rule: Rule) -> None:
        """The cross-field checks against this hub's groups, outputs and zones (ValueError)."""
        validate_rule(
            rule, groups=self.effects.groups, outputs=self.effects.outputs, zones=self.effects.zones
        )

    @staticmethod
    def armed(rule: Rule, row: RuleRow) -> bool:
        """Whether a stored rule runs: enabled, and approved when it reaches the
        loudspeakers, a relay or the broker (the rule book stores such a rule disabled
        until a head approves it; this holds even for a row written some other way)."""
        approved = row.approval is not None and row.approval.approved
        return rule.enabled and (approved or not needs_approval(rule))

    def reload(self) -> None:
        rules = {}
        armed: list[Rule] = []
        for row in repo.every(self.store.connection()):
            try:
                r = Rule.model_validate_json(row.definition)
            except ValidationError:
                log.exception("a stored rule no longer validates; skipped")
                continue
            rules[r.id] = r
            if self.armed(r, row):
                armed.append(r)
            elif r.enabled:
                log.warning("rule %s awaits a head's approval: it does not run yet", r.id)
        before = {r.id: r.trigger for rs in self._by_type.values() for r in rs}
        self.rules = rules
        self._by_type = {}
        for r in armed:
            self._by_type.setdefault(type(r.trigger), []).append(r)
        # A schedule counts from the moment its rule runs (again) or its trigger changes: a
        # time that passed while it was off or awaiting approval is not made up for.
        now = self.clock.now()
        schedules = {r.id: r.trigger for r in armed if isinstance(r.trigger, ScheduleTrigger)}
        self._next_schedule = {
            rid: self._next_schedule[rid]
            if before.get(rid) == t and rid in self._next_schedule
            else self._recurrence(t).next_after(now, inclusive=False)
            for rid, t in schedules.items()
        }
        # A rule switched off (or awaiting approval again) keeps no timers: tick() must not
        # raise it from a state it had while it ran.
        running = {r.id for r in armed}
        for key in [k for k in self._state if k[0] not in running]:
            del self._state[key]

    def _recurrence(self, t: ScheduleTrigger) -> Recurrence:
        return Recurrence(t.start.replace(tzinfo=None), self.tz, t.rrule)

    # -- inputs (writer thread) -------------------------------------------------------------
    def on_messages(self, ev: MessagesStored) -> None:
        """A committed batch, from the dispatcher (writer thread, after the commit)."""
        self.observe(list(ev.stored), list(ev.changes))

    def observe(self, stored: Sequence[Stored], changes: Sequence[Change]) -> None:
        now = self.clock.now().timestamp()
        for s in stored:
            ev = s.event
            if isinstance(ev, Reading):
                for rule in self._of_type(MetricTrigger):
                    t = rule.trigger
                    assert isinstance(t, MetricTrigger)
                    v = ev.metrics.get(t.metric)
                    if v is not None and self._matches(rule, ev.device_id, now):
                        self._metric(rule, t, ev.device_id, float(v), now, s)
            elif isinstance(ev, ButtonPress):
                for rule in self._of_type(ButtonTrigger):
                    assert isinstance(rule.trigger, ButtonTrigger)
                    if rule.trigger.action == ev.action and self._matches(rule, ev.device_id, now):
                        self._raise(
                            rule,
                            ev.device_id,
                            now,
                            {
                                "event": "button",
                                "action": ev.action,
                                "template": ev.template,
                                "topic": s.topic,
                            },
                            one_shot=True,
                        )
        for c in changes:
            if isinstance(c, StatusChange):
                for rule in self._of_type(StatusTrigger):
                    assert isinstance(rule.trigger, StatusTrigger)
                    if self._matches(rule, c.device_id, now):
                        self._status(rule, rule.trigger, c.device_id, c.status, now)
            elif isinstance(c, AlertChange):
                for rule in self._of_type(AlertTrigger):
                    t = rule.trigger
                    assert isinstance(t, AlertTrigger)
                    if (
                        (t.rule is None or t.rule == c.rule)
                        and (t.severity is None or t.severity == c.severity)
                        and self._matches(rule, c.device_id, now)
                    ):
                        cause = {
                            "event": "alert",
                            "alert": c.id,
                            "rule": c.rule,
                            "message": c.message,
                        }
                        if c.state == "raised":
                            self._raise(rule, c.device_id, now, cause)
                        else:
                            self._clear(rule, c.device_id, now, cause)

    def tick(self) -> None:
        """Tolerance timers and schedules (writer thread, on the hub's timer)."""
        now_dt = self.clock.now()
        now = now_dt.timestamp()
        for (rid, dev), st in list(self._state.items()):
            rule = self.rules.get(rid)
            if rule is None or st.value is None:
                continue
            if isinstance(rule.trigger, MetricTrigger):
                self._metric(rule, rule.trigger, dev, st.value, now, None, fresh=False)
            elif isinstance(rule.trigger, StatusTrigger):
                status = self._status_of(dev)
                if status:
                    self._status(rule, rule.trigger, dev, status, now)
        for rule in self._of_type(ScheduleTrigger):
            nxt = self._next_schedule.get(rule.id)
            if nxt is not None and nxt <= now_dt:
                assert isinstance(rule.trigger, ScheduleTrigger)
                self._next_schedule[rule.id] = self._recurrence(rule.trigger).next_after(nxt)
                self._raise(
                    rule, None, now, {"event": "schedule", "at": utc_iso(nxt)}, one_shot=True
                )

    def _of_type(self, kind: type) -> list[Rule]:
        return self._by_type.get(kind, [])

    def _matches(self, rule: Rule, device_id: str | None, now: float) -> bool:
        c = rule.conditions
        if c.during and not in_window(c.during, datetime.fromtimestamp(now, UTC), self.tz):
            return False
        if device_id is None:
            return not (c.devices or c.kinds or c.zones)
        if c.devices and not any(fnmatch.fnmatchcase(device_id, p) for p in c.devices):
            return False
        if c.kinds or c.zones:
            d = self._device(device_id)
            if d is None:
                return False
            if c.kinds and d.kind not in c.kinds:
                return False
            if c.zones and d.zone not in c.zones:
                return False
        return True

    # -- trigger state machines ----------------------------------------------------------------
    def _metric(
        self,
        rule: Rule,
        t: MetricTrigger,
        dev: str,
        value: float,
        now: float,
        s: Stored | None,
        *,
        fresh: bool = True,
    ) -> None:
        st = self._state.setdefault((rule.id, dev), _Incident(since=now))
        if fresh:
            st.value = value
        over = OPS[t.op](value, t.value)
        back = t.value - t.hysteresis if t.op in (">", ">=") else t.value + t.hysteresis
        under = (value < back) if t.op in (">", ">=") else (value > back)
        # The raw condition: raising while over, clearing only once back past hysteresis.
        raw = over if not st.active else not under
        if raw != st.raw:
            st.raw, st.since = raw, now
        held = now - st.since >= t.for_s
        cause = {
            "event": "metric",
            "metric": t.metric,
            "value": value,
            "limit": t.value,
            "op": t.op,
            **({"topic": s.topic} if s else {}),
        }
        if not st.active and raw and held:
            self._raise(rule, dev, now, cause)
        elif st.active and not raw and held:
            self._clear(rule, dev, now, cause)

    def _status(self, rule: Rule, t: StatusTrigger, dev: str, status: str, now: float) -> None:
        st = self._state.setdefault((rule.id, dev), _Incident(since=now))
        raw = status == t.status
        st.value = 1.0
        if raw != st.raw:
            st.raw, st.since = raw, now
        cause = {"event": "status", "status": status, "for_s": t.for_s}
        if raw and not st.active and now - st.since >= t.for_s:
            self._raise(rule, dev, now, cause)
        elif not raw and st.active:
            self._clear(rule, dev, now, cause)

    def _raise(
        self,
        rule: Rule,
        dev: str | None,
        now: float,
        cause: dict[str, Any],
        *,
        one_shot: bool = False,
    ) -> None:
        st = self._state.setdefault((rule.id, dev or ""), _Incident(since=now))
        st.active = not one_shot
        if now - st.last_raised < rule.cooldown_s:
            st.suppressed += 1  # a flapping sensor: within the cooldown it stays quiet
            st.fired = False
            return
        st.last_raised, st.fired = now, True
        st.incident = f"{rule.id}:{dev or '-'}:{uuid.uuid4().hex[:8]}"
        self._fire(rule, dev, "raised", st, now, cause)

    def _clear(self, rule: Rule, dev: str | None, now: float, cause: dict[str, Any]) -> None:
        st = self._state.get((rule.id, dev or ""))
        if st is None or not st.active:
            return
        st.active = False
        if not st.fired:
            return  # its raise was suppressed: nothing was said, nothing to take back
        self._fire(rule, dev, "cleared", st, now, cause)
        st.incident, st.announcement, st.fired = None, None, False

    # -- actions ---------------------------------------------------------------------------------
    def context(
        self, rule: Rule, dev: str | None, cause: Mapping[str, Any], now: float
    ) -> dict[str, str]:
        """What a firing's templates are filled from: a text for each placeholder."""
        d = self._device(dev) if dev else None
        local = local_time(now, self.tz)
        value = cause.get("value")
        # A device the hub has no row of is still never read out as its id.
        spoken = d.spoken_name if d else (spoken_name(dev, "") if dev else "")
        return {
            "device": (d.name if d else dev) or "",
            "device.id": dev or "",
            "device.name": (d.name if d else dev) or "",
            "device.spoken": spoken,
            "device.kind": d.kind if d else "",
            "location": d.location if d else "",
            "zone": (d.zone_name or d.zone or "") if d else "",
            "value": value_text(value) if isinstance(value, int | float) else str(value or ""),
            "metric": str(cause.get("metric", "")),
            "status": str(cause.get("status", "")),
            "rule.name": rule.name,
            "rule.id": rule.id,
            "time": local.strftime("%H:%M"),
            "level": str(rule.vars.get("level", "")),
            **{k: str(v) for k, v in rule.vars.items()},
        }

    def _fire(
        self,
        rule: Rule,
        dev: str | None,
        state: Literal["raised", "cleared"],
        st: _Incident,
        now: float,
        cause: dict[str, Any],
    ) -> None:
        ctx = {**self.context(rule, dev, cause, now), "state": state}
        results: list[str] = []
        for a in rule.actions:
            try:
                line, made = perform(
                    self.effects,
                    a,
                    rule.id,
                    state,
                    incident=st.incident or "",
                    corrects=st.announcement,
                    ctx=ctx,
                )
            except Exception as e:  # one broken action never stops the others
                log.exception("rule %s action %s failed", rule.id, a.type)
                results.append(f"{a.type}: failed: {type(e).__name__}: {e}")
                continue
            if state == "raised" and isinstance(a, AnnounceAction):
                st.announcement = made  # the clearing announcement corrects this one
            results.append(line)
        self.firings += 1
        with self.store.transaction() as conn:
            repo.add_firing(
                conn,
                rule_id=rule.id,
                device_id=dev,
                state=state,
                incident=st.incident or "",
                at=now,
                cause=cause,
                actions=results,
            )

    # -- pre-rendering ---------------------------------------------------------------------
    def emergency_texts(
        self,
        devices: Sequence[DeviceView],
        readings: Mapping[str, Mapping[str, float]] | None = None,
    ) -> list[dict[str, Any]]:
        """The emergency announcements the running rules may make for these devices, each
        once, the most urgent first: rendered ahead (kept as emergency audio) so that the
        loudspeakers react at once. The caller takes at most ``audio.prerender_max``.

        A text that does not change with the reading (a button's, a status's, a template
        without {value}) is exactly what the rule will say. One with the reading in it is
        predicted for the whole values from the limit on (where a gauge reporting whole
        centimetres stands when its rule fires), the value nearest the device's latest
        reading first; without ``readings`` (device id -> its latest metrics), the limit
        of every rule and device first, then the next value of each, and so on. With
        readings, a device that does not report the rule's metric (a weather station has
        no water level) has none. A text with the time in it is never said as rendered
        now: it renders when needed.
        """
        now = self.clock.now().timestamp()
        running = {r.id for rs in self._by_type.values() for r in rs}
        # (how far the device is from saying it, round, rule order, position): text
        ranked: list[tuple[float, int, int, int, dict[str, Any]]] = []
        for order, rule in enumerate(r for r in self.rules.values() if r.id in running):
            says = [
                a
                for a in rule.actions
                if isinstance(a, AnnounceAction) and a.priority == "emergency"
            ]
            t = rule.trigger
            for dev in self._prerender_targets(rule, devices, now) if says else []:
                # (distance, round, cause) of each firing foreseen for this device
                foreseen: list[tuple[float, int, dict[str, Any]]] = [(0.0, 0, {})]
                if isinstance(t, MetricTrigger):
                    latest = None if readings is None else readings.get(dev or "", {})
                    if latest is not None and t.metric not in latest:
                        continue
                    sign = 1 if t.op in (">", ">=") else -1
                    first = t.value + (0 if t.op in (">=", "<=") else sign)
                    foreseen = []
                    for k in range(_PREDICTED_VALUES):
                        v = first + sign * k
                        far = math.inf if latest is None else abs(v - latest[t.metric])
                        foreseen.append((far, k, {"value": float(v), "metric": t.metric}))
                elif isinstance(t, StatusTrigger):
                    foreseen = [(0.0, 0, {"status": t.status})]
                for a in says:
                    for far, k, cause in foreseen:
                        text = self._said(rule, a.template, dev, cause, now)
                        if text is not None:
                            said = {
                                "text": text,
                                "priority": a.priority,
                                "repeat": a.repeat,
                                "group": f"{rule.id}/{dev or ''}",
                            }
                            ranked.append((far, k, order, len(ranked), said))
        unique: dict[tuple[str, int], dict[str, Any]] = {}
        for *_, item in sorted(ranked, key=lambda r: r[:4]):
            unique.setdefault((item["text"], item["repeat"]), item)
        return list(unique.values())

    def _prerender_targets(
        self, rule: Rule, devices: Sequence[DeviceView], now: float
    ) -> list[str | None]:
        """The devices (None: no device) a rule's firing may name."""
        t = rule.trigger
        named = [d for d in devices if self._matches(rule, d.id, now)]
        if isinstance(t, MetricTrigger | StatusTrigger):  # a device's reading or status
            return [d.id for d in named]
        unnamed: list[str | None] = [None] if self._matches(rule, None, now) else []
        if isinstance(t, ScheduleTrigger):
            return unnamed
        if isinstance(t, ButtonTrigger):  # a button box's, or any when none is known yet
            return [d.id for d in named if d.kind == "button"] or unnamed
        return [*unnamed, *(d.id for d in named)]  # an alert, about a device or the hub

    def _said(
        self, rule: Rule, template: str, dev: str | None, cause: dict[str, Any], now: float
    ) -> str | None:
        """What a firing would say, or None when it cannot be known now: the text changes
        with the time, or (no device known) with the device."""
        ctx = {**self.context(rule, dev, cause, now), "state": "raised"}
        other = {**ctx, "time": "--:--"}
        if dev is None:
            other |= {k: "--" for k in ctx if k == "device" or k.startswith("device.")}
        try:
            text = render_template(template, spoken_context(ctx))
            if render_template(template, spoken_context(other)) != text:
                return None
        except ValueError:  # a template this hub no longer fills: said by no firing
            return None
        return text
