"""Ingest: which readings could change a rule's state, so the writer commits them at once.

The writer groups readings into one commit every ``ingest.commit_interval_s`` (few
writes on the SD card); a reading that may start or end a rule's incident must not wait
that long, or a flood alarm would sound seconds late. A reading is urgent when an enabled
metric rule watches it and its value, or the device's previous one, stands past the
rule's limit or within its hysteresis band before it: a river at 150 cm under a 180 cm
alarm waits for its group (40 gauges committing every reading would write four times what
the whole village does), a river at 175 cm and rising, or falling back from 185 cm, does
not. :class:`WatchedMetrics` answers from the rules engine's public ``rules`` (replaced
whole on each reload, in the writer thread, where this runs too), recomputed only when the
rules changed. It may say yes for a device a rule's kind or zone condition then leaves
out: one early commit, never a late one.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Protocol

from hub.automation.rule_model import MetricTrigger, Rule

#: metric -> (device patterns (empty: any device), is-hot test of a value)
_Watch = dict[str, list[tuple[tuple[str, ...], MetricTrigger]]]


def _hot(t: MetricTrigger, v: float) -> bool:
    """Past the limit, or within the hysteresis band before it (never less than the limit)."""
    if t.op in (">", ">="):
        return v >= t.value - t.hysteresis
    return v <= t.value + t.hysteresis


class HasRules(Protocol):
    @property
    def rules(self) -> Mapping[str, Rule]: ...


class WatchedMetrics:
    """``(device_id, metric names) -> bool`` for :meth:`hub.ingest.writer.Ingest.watch`."""

    def __init__(self, engine: HasRules) -> None:
        self._engine = engine
        self._seen: Mapping[str, Rule] | None = None
        self._watch: _Watch = {}

    def _refresh(self, rules: Mapping[str, Rule]) -> None:
        watch: _Watch = {}
        for r in rules.values():
            if r.enabled and isinstance(r.trigger, MetricTrigger):
                watch.setdefault(r.trigger.metric, []).append(
                    (tuple(r.conditions.devices), r.trigger)
                )
        self._watch, self._seen = watch, rules

    def __call__(
        self, device_id: str, metrics: Mapping[str, float], before: Mapping[str, float]
    ) -> bool:
        rules = self._engine.rules
        if rules is not self._seen:
            self._refresh(rules)
        watch = self._watch
        if not watch:
            return False
        for m, v in metrics.items():
            for patterns, trigger in watch.get(m, ()):
                hot = _hot(trigger, v) or (m in before and _hot(trigger, before[m]))
                if hot and (
                    not patterns or any(fnmatch.fnmatchcase(device_id, p) for p in patterns)
                ):
                    return True
        return False
