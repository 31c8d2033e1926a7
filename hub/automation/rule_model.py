"""The rule language: triggers, conditions and actions as frozen pydantic models.

Rules come from ``config/rules.toml`` (:func:`load_rules_file`) or from the staff through
the API and the pages (``hub/automation/rule_book.py``); :func:`validate_rule` makes the
cross-field checks a schema cannot (templates render; groups, outputs and zones exist).
The engine (``hub/automation/rules.py``) runs them. Pure values: any thread.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub.automation.templates import OUTPUT_MAX, check_template
from hub.broadcast.recurrence import Recurrence
from hub.errors import ConfigError


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricTrigger(_M):
    type: Literal["metric"]
    metric: str = Field(min_length=1, max_length=64, description="e.g. water_level_cm")
    op: Literal[">", ">=", "<", "<="]
    value: float = Field(allow_inf_nan=False)
    for_s: float = Field(0, ge=0, le=86_400, description="Must hold this long, both ways.")
    hysteresis: float = Field(
        0,
        ge=0,
        allow_inf_nan=False,
        description="Clears only once the value is this far back past the limit.",
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
    category: Literal["notice", "news", "emergency"] = Field(
        "emergency",
        description="notice, news or emergency (a meeting needs its own time and place, which "
        'a rule cannot give: a rule\'s "meeting" is read as a notice).',
    )
    # At least one: an announcement to no zone would switch the amplifier on for silence.
    zones: list[str] = Field(default_factory=lambda: ["all"], min_length=1)
    repeat: int = Field(1, ge=1, le=5)
    clear_template: str | None = Field(None, max_length=2000, description="Said when it clears.")

    @field_validator("category", mode="before")
    @classmethod
    def _meeting_is_a_notice(cls, v: object) -> object:
        # Rules stored before meetings had their own time keep announcing.
        return "notice" if v == "meeting" else v


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


# --- checks ----------------------------------------------------------------------------------
#: Actions that reach the loudspeakers, a relay or the broker: a technician's rule with one of
#: these waits for the head's approval (the same second person as an announcement's).
LOUD_ACTIONS = frozenset({"announce", "switch", "publish"})

#: The longest a filled template may be, by field (the rest: ``OUTPUT_MAX`` characters). A
#: topic and a payload may be as long as their field; a spoken or sent text is capped.
OUTPUT_LIMITS = {"topic": 200, "payload": 4096}


def output_limit(field: str) -> int:
    return OUTPUT_LIMITS.get(field, OUTPUT_MAX)


def needs_approval(rule: Rule) -> bool:
    """Whether the rule reaches the loudspeakers, a relay or an MQTT publish."""
    return any(a.type in LOUD_ACTIONS for a in rule.actions)


def sample_context(rule: Rule) -> dict[str, str]:
    """What a rule's templates are tried with when it is saved: every placeholder set."""
    return {
        "device.id": "wl-01",
        "device.name": "Cầu Đông",
        "device.kind": "sensor",
        "value": "182",
        "metric": "water_level_cm",
        "status": "offline",
        "rule.name": rule.name,
        "rule.id": rule.id,
        "time": "19:30",
        "state": "raised",
        "level": str(rule.vars.get("level", "")),
        **{k: str(v) for k, v in rule.vars.items()},
    }


def validate_rule(
    rule: Rule, *, groups: Mapping[str, Sequence[str]], outputs: Sequence[str], zones: Sequence[str]
) -> None:
    """Cross-field checks: templates fill (named fields only, output capped), groups,
    outputs and zones exist."""
    ctx = sample_context(rule)
    for i, a in enumerate(rule.actions):
        where = f"actions.{i}"
        for name in ("template", "clear_template", "topic", "payload"):
            t = getattr(a, name, None)
            if t:
                try:
                    check_template(t, ctx, limit=output_limit(name))
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
