"""Rules: events turn into announcements, notifications, switched outputs and MQTT messages.

A rule has one trigger (a metric crossing a threshold for a while, with hysteresis
on the way back; a device status; an alert; a button; a schedule), conditions
(devices, kinds, zones, time of day) and actions. Each (rule, device) pair is one
incident from the moment it raises to the moment it clears: actions fire once when
it raises, "clear" actions (a cancellation announcement, an all-clear message) once
when it clears, and a cooldown keeps a flapping sensor from raising again at once.

Threads: ``observe`` and ``tick`` run in the ingest writer thread (as the monitor
does); actions are handed over without blocking it (announcements render in their
own worker, notifications queue, a relay switches in microseconds).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import operator
import re
import string
import tomllib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from devices.events import ButtonPress, Reading
from hub.broadcast.recurrence import Recurrence, in_window
from hub.clock import Clock, utc_iso
from hub.errors import ConfigError
from hub.events import AlertChange, Change, StatusChange, Stored
from hub.store import Store

log = logging.getLogger(__name__)

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- the rule language ---------------------------------------------------------------------


class MetricTrigger(_M):
    type: Literal["metric"]
    metric: str = Field(min_length=1, max_length=64, description="e.g. water_level_cm")
    op: Literal[">", ">=", "<", "<="]
    value: float
    for_s: float = Field(0, ge=0, le=86_400, description="Must hold this long, both ways.")
    hysteresis: float = Field(
        0, ge=0, description="Clears only once the value is this far back past the limit."
    )


class StatusTrigger(_M):
    type: Literal["status"]
    status: Literal["online", "degraded", "offline"]
    for_s: float = Field(0, ge=0, le=7 * 86_400)


class AlertTrigger(_M):
    type: Literal["alert"]
    rule: str | None = Field(None, description="Monitor rule (offline, cpu_pct>90…); any.")
    severity: Literal["warning", "critical"] | None = None


class ButtonTrigger(_M):
    type: Literal["button"]
    action: Literal["emergency", "stop", "announce"]


class ScheduleTrigger(_M):
    type: Literal["schedule"]
    start: datetime = Field(description="First time, village time (no offset).")
    rrule: str | None = Field(None, max_length=500)


Trigger = Annotated[
    MetricTrigger | StatusTrigger | AlertTrigger | ButtonTrigger | ScheduleTrigger,
    Field(discriminator="type"),
]


class Conditions(_M):
    devices: list[str] = Field(default_factory=list, description="Device ids or globs.")
    kinds: list[str] = Field(default_factory=list, description="Device kinds.")
    zones: list[str] = Field(default_factory=list, description="Zones the device stands in.")
    during: str | None = Field(None, pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}$")


class AnnounceAction(_M):
    type: Literal["announce"]
    template: str = Field(min_length=1, max_length=2000)
    title: str = Field("Cảnh báo", max_length=200)
    priority: Literal["normal", "high", "emergency"] = "emergency"
    category: Literal["notice", "news", "meeting", "emergency"] = "emergency"
    zones: list[str] = Field(default_factory=lambda: ["all"])
    repeat: int = Field(1, ge=1, le=5)
    clear_template: str | None = Field(None, max_length=2000, description="Said when it clears.")


class NotifyAction(_M):
    type: Literal["notify"]
    to: list[str] = Field(min_length=1, description="Notification groups or channels.")
    title: str = Field("Làng Số Hub", max_length=200)
    template: str = Field(min_length=1, max_length=2000)
    clear_template: str | None = Field(None, max_length=2000)


class SwitchAction(_M):
    type: Literal["switch"]
    output: str
    duration_s: float = Field(60, gt=0, le=3600)


class PublishAction(_M):
    type: Literal["publish"]
    topic: str = Field(min_length=1, max_length=200)
    payload: str = Field("", max_length=4096)
    retain: bool = False
    qos: Literal[0, 1] = 1


Action = Annotated[
    AnnounceAction | NotifyAction | SwitchAction | PublishAction, Field(discriminator="type")
]


class Rule(_M):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    name: str = Field(min_length=1, max_length=200)
    enabled: bool = True
    trigger: Trigger
    conditions: Conditions = Field(default_factory=Conditions)
    actions: list[Action] = Field(min_length=1, max_length=10)
    cooldown_s: float = Field(600, ge=0, le=7 * 86_400)
    vars: dict[str, str | float] = Field(default_factory=dict, description="For templates.")

    @field_validator("vars")
    @classmethod
    def _vars(cls, v: dict[str, str | float]) -> dict[str, str | float]:
        for k in v:
            if not re.match(r"^[a-z_][a-z0-9_]*$", k):
                raise ValueError(f"vars: {k!r} is not a plain lower-case name")
        return v


# --- templates -------------------------------------------------------------------------------


class _SafeFormatter(string.Formatter):
    """str.format without the sandbox escapes: no ``_private`` attributes, no indexing."""

    def get_field(self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        if "[" in field_name or any(p.startswith("_") for p in field_name.split(".")):
            raise ValueError(f"placeholder {{{field_name}}} is not allowed")
        return super().get_field(field_name, args, kwargs)


_FORMATTER = _SafeFormatter()
#: Emergency texts rendered ahead at most per pass (about 0.5 s of CPU each).
PRERENDER_MAX = 120

PLACEHOLDERS = (
    "device.id",
    "device.name",
    "device.kind",
    "value",
    "metric",
    "status",
    "level",
    "rule.name",
    "time",
    "state",
    "vars",
)


def render_template(template: str, ctx: Mapping[str, Any]) -> str:
    try:
        return _FORMATTER.vformat(template, (), ctx)
    except (KeyError, AttributeError) as e:
        raise ValueError(
            f"unknown placeholder {e}; use {', '.join(PLACEHOLDERS)} or a name from vars"
        ) from None
    except (IndexError, ValueError) as e:
        raise ValueError(f"template: {e}") from None


def _value_text(v: float | None) -> str:
    if v is None:
        return ""
    return f"{v:g}".replace(".", ",")  # Vietnamese decimal comma: 1,5 m


def sample_context(rule: Rule) -> dict[str, Any]:
    dev = SimpleNamespace(id="wl-01", name="Cầu Đông", kind="sensor")
    return {
        "device": dev,
        "value": "182",
        "metric": "water_level_cm",
        "status": "offline",
        "rule": SimpleNamespace(name=rule.name, id=rule.id),
        "time": "19:30",
        "state": "raised",
        "level": str(rule.vars.get("level", "")),
        **{k: str(v) for k, v in rule.vars.items()},
    }


def validate_rule(
    rule: Rule, *, groups: Mapping[str, Sequence[str]], outputs: Sequence[str], zones: Sequence[str]
) -> None:
    """Cross-field checks: templates render, groups, outputs and zones exist."""
    ctx = sample_context(rule)
    for i, a in enumerate(rule.actions):
        where = f"actions.{i}"
        for name in ("template", "clear_template", "topic", "payload"):
            t = getattr(a, name, None)
            if t:
                try:
                    render_template(t, ctx)
                except ValueError as e:
                    raise ValueError(f"{where}.{name}: {e}") from None
        if isinstance(a, NotifyAction):
            bad = [g for g in a.to if g not in groups]
            if bad:
                raise ValueError(
                    f"{where}.to: no notification group or channel {bad[0]!r} "
                    f"(known: {', '.join(sorted(groups)) or 'none'})"
                )
        if isinstance(a, SwitchAction) and a.output not in outputs:
            raise ValueError(
                f"{where}.output: no output {a.output!r} "
                f"(gpio.outputs: {', '.join(outputs) or 'none'})"
            )
        if isinstance(a, AnnounceAction):
            bad = [z for z in a.zones if z != "all" and z not in zones]
            if bad:
                raise ValueError(f"{where}.zones: unknown zone {bad[0]!r}")
    if isinstance(rule.trigger, ScheduleTrigger):
        try:
            Recurrence(rule.trigger.start.replace(tzinfo=None), UTC, rule.trigger.rrule)
        except ValueError as e:
            raise ValueError(f"trigger: {e}") from None


def load_rules_file(path: Path) -> list[Rule]:
    """Rules from TOML (``[[rules]]`` tables); ConfigError as ``file: key: reason``."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), "(file)", "no such file (rules_file)") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(str(path), "(syntax)", str(e)) from None
    rules = []
    for i, raw in enumerate(data.get("rules", [])):
        try:
            rules.append(Rule.model_validate(raw))
        except ValidationError as e:
            err = e.errors()[0]
            key = ".".join(str(p) for p in err["loc"])
            raise ConfigError(str(path), f"rules.{i}.{key}", err["msg"]) from None
    extra = set(data) - {"rules"}
    if extra:
        raise ConfigError(str(path), sorted(extra)[0], "unknown key (only [[rules]])")
    ids = [r.id for r in rules]
    dup = {x for x in ids if ids.count(x) > 1}
    if dup:
        raise ConfigError(str(path), "rules", f"rule id {sorted(dup)[0]!r} is used twice")
    return rules


# --- the engine --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Firing:
    rule_id: str
    device_id: str | None
    state: Literal["raised", "cleared"]
    incident: str
    at: datetime
    cause: dict[str, Any]
    context: dict[str, Any]


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


@dataclass
class DeviceView:
    id: str
    name: str
    kind: str
    zone: str | None = None


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
        """Rules from the config file go in unless the database has them (edited ones win)."""
        now = self.clock.now().timestamp()
        with self.store.transaction() as conn:
            for r in rules:
                self.validate(r)
                conn.execute(
                    "INSERT INTO rules(id, definition, source, created_by, updated_at)"
                    " VALUES (?,?,?,?,?) ON CONFLICT(id) DO NOTHING",
                    (r.id, r.model_dump_json(), "config", "config", now),
                )

    def validate(self, rule: Rule) -> None:
        validate_rule(
            rule, groups=self.effects.groups, outputs=self.effects.outputs, zones=self.effects.zones
        )

    def reload(self) -> None:
        rows = self.store.query("SELECT definition FROM rules")
        rules = {}
        for row in rows:
            try:
                r = Rule.model_validate_json(row["definition"])
            except ValidationError:
                log.exception("a stored rule no longer validates; skipped")
                continue
            rules[r.id] = r
        self.rules = rules
        self._by_type = {}
        for r in rules.values():
            if r.enabled:
                self._by_type.setdefault(type(r.trigger), []).append(r)
        now = self.clock.now()
        for r in rules.values():
            if isinstance(r.trigger, ScheduleTrigger) and r.id not in self._next_schedule:
                self._next_schedule[r.id] = self._recurrence(r.trigger).next_after(
                    now, inclusive=False
                )
        for key in [k for k in self._state if k[0] not in rules]:
            del self._state[key]

    def _recurrence(self, t: ScheduleTrigger) -> Recurrence:
        return Recurrence(t.start.replace(tzinfo=None), self.tz, t.rrule)

    # -- inputs (writer thread) -------------------------------------------------------------
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
        over = _OPS[t.op](value, t.value)
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
    ) -> dict[str, Any]:
        d = self._device(dev) if dev else None
        device = SimpleNamespace(
            id=dev or "", name=(d.name if d else dev) or "", kind=d.kind if d else ""
        )
        local = datetime.fromtimestamp(now, UTC).astimezone(self.tz)
        value = cause.get("value")
        return {
            "device": device,
            "value": _value_text(value) if isinstance(value, int | float) else str(value or ""),
            "metric": cause.get("metric", ""),
            "status": cause.get("status", ""),
            "rule": SimpleNamespace(name=rule.name, id=rule.id),
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
                results.append(self._act(a, rule, state, st, ctx))
            except Exception as e:  # one broken action never stops the others
                log.exception("rule %s action %s failed", rule.id, a.type)
                results.append(f"{a.type}: failed: {type(e).__name__}: {e}")
        self.firings += 1
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO rule_firings(rule_id, device_id, state, incident, at, cause,"
                " actions) VALUES (?,?,?,?,?,?,?)",
                (
                    rule.id,
                    dev,
                    state,
                    st.incident or "",
                    now,
                    json.dumps(cause, ensure_ascii=False, default=str),
                    json.dumps(results, ensure_ascii=False),
                ),
            )

    def _act(self, a: Any, rule: Rule, state: str, st: _Incident, ctx: Mapping[str, Any]) -> str:
        e = self.effects
        raised = state == "raised"
        if isinstance(a, AnnounceAction):
            template = a.template if raised else a.clear_template
            if template is None:
                return "announce: nothing to say when it clears"
            body = {
                "title": a.title if raised else f"{a.title} (đã qua)",
                "text": render_template(template, ctx),
                "category": a.category if raised else "notice",
                "priority": a.priority if raised else "high",
                "zones": a.zones,
                "repeat": a.repeat,
            }
            if not raised and st.announcement:
                body["corrects"] = st.announcement
            aid = e.announce(body, f"rule:{rule.id}")
            if raised:
                st.announcement = aid
            return f"announce: {aid or 'queued'}"
        if isinstance(a, NotifyAction):
            template = (
                a.template
                if raised
                else (a.clear_template or f"Đã trở lại bình thường: {a.template}")
            )
            sent = e.notify(
                a.to,
                {
                    "incident": st.incident or "",
                    "title": a.title,
                    "body": render_template(template, ctx),
                    "state": state,
                    "severity": "critical" if rule.actions and raised else "info",
                },
            )
            return f"notify: {', '.join(sent) or 'no channel configured'}"
        if isinstance(a, SwitchAction):
            if not raised:
                return "switch: nothing to do when it clears"
            e.switch(a.output, a.duration_s)
            return f"switch: {a.output} on for {a.duration_s:g} s"
        if isinstance(a, PublishAction):
            topic = render_template(a.topic, ctx)
            payload = render_template(a.payload, ctx)
            e.publish(topic, payload.encode(), a.retain, a.qos)
            return f"publish: {topic}"
        raise TypeError(type(a).__name__)

    # -- pre-rendering ---------------------------------------------------------------------
    def emergency_texts(self, devices: Sequence[DeviceView]) -> list[dict[str, Any]]:
        """Announcements a metric rule may make, for values around its limit: rendered in
        advance (the render cache keeps them) so the loudspeakers react at once."""
        out = []
        for rule in self.rules.values():
            t = rule.trigger
            if not rule.enabled or not isinstance(t, MetricTrigger):
                continue
            for a in rule.actions:
                if not isinstance(a, AnnounceAction) or a.priority != "emergency":
                    continue
                for d in devices:
                    if not self._matches(rule, d.id, self.clock.now().timestamp()):
                        continue
                    lo, hi = sorted((t.value, t.value + (10 if t.op in (">", ">=") else -10)))
                    for v in range(int(lo), int(hi) + 1):
                        ctx = self.context(
                            rule,
                            d.id,
                            {"value": float(v), "metric": t.metric},
                            self.clock.now().timestamp(),
                        )
                        out.append(
                            {
                                "text": render_template(a.template, ctx),
                                "priority": a.priority,
                                "repeat": a.repeat,
                            }
                        )
        # Once each, and bounded: a village of many gauges must not keep both cores
        # rendering for minutes after a start; the rest render on demand.
        unique = list({(o["text"], o["priority"], o["repeat"]): o for o in out}.values())
        return unique[:PRERENDER_MAX]
