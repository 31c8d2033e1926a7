"""The rule book: event rules as the staff keep them, for the API and the pages alike.

Each change is checked (the schema, then the engine's cross-checks against this hub's
groups, outputs and zones), stored and audited in one transaction, and then the engine
reloads (in the ingest writer thread, through ``reload``). Refusals are domain errors
(:mod:`hub.errors`) whose message says what to fix; the callers map them to a status.

Threads: any request thread; each uses its own connection (``Store.connection``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from hub.automation.rule_model import Rule
from hub.automation.rules import RulesEngine
from hub.clock import Clock
from hub.errors import Conflict, Invalid, NotFound
from hub.store import Store
from hub.store import rules as repo
from hub.store.rules import FiringRow, RuleRow


class RuleBook:
    def __init__(
        self, store: Store, clock: Clock, engine: RulesEngine, *, reload: Callable[[], None]
    ) -> None:
        self.store = store
        self.clock = clock
        self.engine = engine
        # Runs the engine's reload in the writer thread, where its state lives, and waits.
        self._reload = reload

    # -- reads ----------------------------------------------------------------------------
    def all(self) -> list[RuleRow]:
        return repo.every(self.store.connection())

    def get(self, rule_id: str) -> RuleRow:
        row = repo.get(self.store.connection(), rule_id)
        if row is None:
            raise NotFound(f"no rule {rule_id!r}")
        return row

    def firings(self, rule_id: str, limit: int = 100) -> list[FiringRow]:
        """What the rule fired, newest first, with the cause and each action's result."""
        self.get(rule_id)
        return repo.firings(self.store.connection(), rule_id, limit)

    # -- checks ---------------------------------------------------------------------------
    def parse(self, data: Mapping[str, Any]) -> Rule:
        """A rule from its fields (JSON or TOML), checked as :meth:`validate` checks it."""
        try:
            rule = Rule.model_validate(data)
        except ValidationError as e:
            err = e.errors()[0]
            raise Invalid(f"{'.'.join(map(str, err['loc']))}: {err['msg']}") from None
        self.validate(rule)
        return rule

    def validate(self, rule: Rule) -> None:
        try:
            self.engine.validate(rule)
        except ValueError as e:
            raise Invalid(str(e)) from None

    # -- changes --------------------------------------------------------------------------
    def add(self, rule: Rule, actor: str) -> RuleRow:
        self.validate(rule)
        now = self.clock.now().timestamp()
        definition = rule.model_dump_json()
        with self.store.transaction() as conn:
            if not repo.insert(conn, rule.id, definition, source="api", created_by=actor, at=now):
                raise Conflict(f"a rule {rule.id!r} exists: PATCH it or pick another id")
            self.store.audit(
                conn,
                ts=now,
                actor=actor,
                action="rule.add",
                target=rule.id,
                detail=json.loads(definition),
            )
        self._reload()
        return self.get(rule.id)

    def change(self, rule_id: str, changes: Mapping[str, Any], actor: str) -> RuleRow:
        """Change some fields (e.g. ``{"enabled": false}`` or a new ``trigger``)."""
        row = self.get(rule_id)
        if "id" in changes and changes["id"] != rule_id:
            raise Invalid("id: a rule keeps its id (delete it and add a new one)")
        rule = self.parse({**json.loads(row.definition), **changes})
        now = self.clock.now().timestamp()
        with self.store.transaction() as conn:
            repo.update(conn, rule_id, rule.model_dump_json(), at=now)
            self.store.audit(
                conn,
                ts=now,
                actor=actor,
                action="rule.change",
                target=rule_id,
                detail=dict(changes),
            )
        self._reload()
        return self.get(rule_id)

    def delete(self, rule_id: str, actor: str) -> None:
        now = self.clock.now().timestamp()
        with self.store.transaction() as conn:
            if not repo.delete(conn, rule_id):
                raise NotFound(f"no rule {rule_id!r}")
            self.store.audit(conn, ts=now, actor=actor, action="rule.delete", target=rule_id)
        self._reload()
