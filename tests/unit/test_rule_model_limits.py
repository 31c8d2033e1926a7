"""A rule the engine could never keep is refused where it is written: a limit of nan or
inf (TOML has both literals) never compares true, and an announcement to no zone would
switch the amplifier on for silence."""

from __future__ import annotations

import tomllib

import pytest
from pydantic import TypeAdapter, ValidationError

from hub.automation.rule_model import AnnounceAction, Rule

RULE = """
id = "flood"
name = "Lũ"
[trigger]
type = "metric"
metric = "water_level_cm"
op = ">="
value = {value}
hysteresis = {hysteresis}
[[actions]]
type = "announce"
template = "Mực nước {{value}} cm."
zones = {zones}
"""


def rule(value: str = "200", hysteresis: str = "10", zones: str = '["all"]') -> Rule:
    data = tomllib.loads(RULE.format(value=value, hysteresis=hysteresis, zones=zones))
    return TypeAdapter(Rule).validate_python(data)


def test_a_plain_rule_is_kept() -> None:
    assert rule().trigger.value == 200  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"value": "nan"}, "value"),
        ({"value": "inf"}, "value"),
        ({"hysteresis": "inf"}, "hysteresis"),
        ({"zones": "[]"}, "zones"),
    ],
)
def test_refused(fields: dict[str, str], where: str) -> None:
    with pytest.raises(ValidationError) as e:
        rule(**fields)
    assert any(where in ".".join(str(p) for p in err["loc"]) for err in e.value.errors())


def test_a_rules_meeting_announcement_is_read_as_a_notice() -> None:
    # A meeting needs its own time and place (the API refuses one without): a rule cannot
    # give them, and a rule stored before meetings had them keeps announcing.
    action = AnnounceAction.model_validate(
        {"type": "announce", "template": "Họp", "category": "meeting"}
    )
    assert action.category == "notice"
