"""Ingest: which readings the rules watch, so the writer commits them at once.

The writer groups readings into one commit every ``ingest.commit_interval_s`` (few
writes on the SD card); a reading an enabled metric rule watches must not wait that
long, or a flood alarm would sound seconds late. :class:`WatchedMetrics` answers per
reading from the rules engine's public ``rules`` (replaced whole on each reload, in the
writer thread, where this runs too): the metric names of enabled metric rules and their
device patterns, recomputed only when the rules changed. It may say yes for a device a
rule's kind or zone condition then leaves out: one early commit, never a late one.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from typing import Protocol

from hub.automation.rule_model import MetricTrigger, Rule


class HasRules(Protocol):
    @property
    def rules(self) -> Mapping[str, Rule]: ...


class WatchedMetrics:
    """``(device_id, metric names) -> bool`` for :meth:`hub.ingest.writer.Ingest.watch`."""

    def __init__(self, engine: HasRules) -> None:
        self._engine = engine
        self._seen: Mapping[str, Rule] | None = None
        # metric -> device patterns (empty: any device)
        self._watch: dict[str, list[tuple[str, ...]]] = {}

    def _refresh(self, rules: Mapping[str, Rule]) -> None:
        watch: dict[str, list[tuple[str, ...]]] = {}
        for r in rules.values():
            if r.enabled and isinstance(r.trigger, MetricTrigger):
                watch.setdefault(r.trigger.metric, []).append(tuple(r.conditions.devices))
        self._watch, self._seen = watch, rules

    def __call__(self, device_id: str, metrics: Sequence[str]) -> bool:
        rules = self._engine.rules
        if rules is not self._seen:
            self._refresh(rules)
        watch = self._watch
        if not watch:
            return False
        for m in metrics:
            for patterns in watch.get(m, ()):
                if not patterns or any(fnmatch.fnmatchcase(device_id, p) for p in patterns):
                    return True
        return False
