"""Which readings the writer commits at once: those that may start or end a rule's
incident, not every reading of a watched metric (40 river gauges committing each reading
would write four times what the rest of the village does)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import TypeAdapter

from hub.automation.rule_model import Rule
from hub.ingest.urgency import WatchedMetrics

FLOOD = TypeAdapter(Rule).validate_python(
    {
        "id": "flood-1",
        "name": "Flood 1",
        "trigger": {
            "type": "metric",
            "metric": "water_level_cm",
            "op": ">=",
            "value": 180,
            "hysteresis": 10,
        },
        "conditions": {"devices": ["muc-nuoc-*"]},
        "actions": [{"type": "notify", "to": ["tech"], "template": "{value}"}],
    }
)


class Engine:
    rules: Mapping[str, Rule] = {"flood-1": FLOOD}


def test_only_readings_near_or_past_the_limit_are_urgent() -> None:
    urgent = WatchedMetrics(Engine())
    calm = {"water_level_cm": 150.0}
    assert not urgent("muc-nuoc-song", {"water_level_cm": 150.0}, calm)
    assert urgent("muc-nuoc-song", {"water_level_cm": 172.0}, calm)  # within the band
    assert urgent("muc-nuoc-song", {"water_level_cm": 185.0}, calm)
    # Falling back from past the limit: the reading that may end the incident.
    assert urgent("muc-nuoc-song", {"water_level_cm": 150.0}, {"water_level_cm": 185.0})
    # Another device, another metric: never.
    assert not urgent("ap-01", {"water_level_cm": 185.0}, calm)
    assert not urgent("muc-nuoc-song", {"battery_pct": 5.0}, calm)
