"""The rule book: event rules as the staff keep them, for the API and the pages alike.

Each change is checked (the schema, then the engine's cross-checks against this hub's
groups, outputs and zones), stored and audited in one transaction, and then the engine
reloads (in the ingest writer thread, through ``reload``). Refusals are domain errors
(:mod:`hub.errors`) whose message says what to fix; the callers map them to a status.

Roles mean what they say, as for announcements: a rule that reaches the loudspeakers, a
relay or the broker runs only with a head's say. A head's (or an admin's) save carries it;
a technician's is stored disabled and awaiting approval until a head (another person)
approves it; a technician's later change to what an approved rule does withdraws the
approval. Rules that only send messages stay the technicians' own.

Threads: any request thread; each uses its own connection (``Store.connection``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import ValidationError

from hub.automation.rule_model import Rule, needs_approval
from hub.automation.rules import RulesEngine
from hub.clock import Clock
from hub.errors import Conflict, Forbidden, Invalid, NotFound
from hub.store import Store
from hub.store import rules as repo
from hub.store.rules import Approval, FiringRow, RuleRow
from hub.store.users import User

ApprovalState = Literal["approved", "awaiting", "not_needed"]


def _awaiting(rule_id: str) -> str:
    return (
        f"rule {rule_id!r} reaches the loudspeakers, a relay or MQTT, so it waits for the "
        f"head's approval (POST /api/rules/{rule_id}/approve, or Approve on the rules page)"
    )


def approval_state(row: RuleRow) -> ApprovalState:
    """Whether a stored rule needs a head's approval, and whether it has it (a rule that no
    longer reads as a rule does not run: it counts as awaiting)."""
    try:
        rule = Rule.model_validate_json(row.definition)
    except ValidationError:
        return "awaiting"
    if not needs_approval(rule):
        return "not_needed"
    return "approved" if row.approval is not None and row.approval.approved else "awaiting"


def _content(rule: Rule) -> dict[str, Any]:
    # What an approval covers: all a rule does and when, its name and vars too (both can be
    # said aloud), only not whether it is switched on.
    return rule.model_dump(exclude={"enabled"})


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
    def add(self, rule: Rule, user: User) -> RuleRow:
        """Check and store a new rule: a technician's loud rule disabled, awaiting approval."""
        self.validate(rule)
        now = self.clock.now().timestamp()
        rule, approval = self._approval(rule, user, now, changed=True, before=None)
        definition = rule.model_dump_json()
        with self.store.transaction() as conn:
            if not repo.insert(
                conn,
                rule.id,
                definition,
                source="api",
                created_by=user.username,
                at=now,
                approval=approval,
            ):
                raise Conflict(f"a rule {rule.id!r} exists: PATCH it or pick another id")
            self.store.audit(
                conn,
                ts=now,
                actor=user.username,
                action="rule.add",
                target=rule.id,
                detail=json.loads(definition),
            )
        self._reload()
        return self.get(rule.id)

    def change(self, rule_id: str, changes: Mapping[str, Any], user: User) -> RuleRow:
        """Change some fields (e.g. ``{"enabled": false}`` or a new ``trigger``)."""
        row = self.get(rule_id)
        if "id" in changes and changes["id"] != rule_id:
            raise Invalid("id: a rule keeps its id (delete it and add a new one)")
        before = Rule.model_validate_json(row.definition)
        rule = self.parse({**json.loads(row.definition), **changes})
        now = self.clock.now().timestamp()
        changed = _content(rule) != _content(before)
        rule, approval = self._approval(rule, user, now, changed=changed, before=row)
        with self.store.transaction() as conn:
            repo.update(conn, rule_id, rule.model_dump_json(), at=now, approval=approval)
            self.store.audit(
                conn,
                ts=now,
                actor=user.username,
                action="rule.change",
                target=rule_id,
                detail=dict(changes),
            )
        self._reload()
        return self.get(rule_id)

    def approve(self, rule_id: str, user: User) -> RuleRow:
        """A head approves a technician's loud rule: it is switched on (audited). Refused for
        the person who asked for it: approval needs a second person."""
        if not user.has("head"):
            raise Forbidden("only the head (or an admin) approves a rule")
        row = self.get(rule_id)
        rule = Rule.model_validate_json(row.definition)
        state = approval_state(row)
        if state == "not_needed":
            raise Conflict(f"rule {rule_id!r} only sends messages: it needs no approval")
        if state == "approved":
            assert row.approval is not None
            raise Conflict(f"rule {rule_id!r} is approved already (by {row.approval.by})")
        asked_by = row.approval.by if row.approval is not None else row.created_by
        if asked_by == user.username:
            raise Forbidden("approval needs a second person: another head or an admin")
        self.validate(rule)  # the hub's outputs, groups or zones may have changed since
        now = self.clock.now().timestamp()
        on = rule.model_copy(update={"enabled": True})
        with self.store.transaction() as conn:
            repo.update(
                conn,
                rule_id,
                on.model_dump_json(),
                at=now,
                approval=Approval("approved", user.username, now),
            )
            self.store.audit(
                conn,
                ts=now,
                actor=user.username,
                action="rule.approve",
                target=rule_id,
                detail={"asked_by": asked_by},
            )
        self._reload()
        return self.get(rule_id)

    @staticmethod
    def _approval(
        rule: Rule, user: User, now: float, *, changed: bool, before: RuleRow | None
    ) -> tuple[Rule, Approval | None]:
        """The rule as it is stored (a technician's loud rule disabled) and its approval."""
        if not needs_approval(rule):
            return rule, None
        if user.has("head"):
            return rule, Approval("approved", user.username, now)
        kept = before.approval if before is not None else None
        if not changed and kept is not None and kept.approved:
            return rule, kept  # switched off or on again: the head approved just this
        if not changed and rule.enabled:
            raise Forbidden(f"not switched on: {_awaiting(rule.id)}")
        asked = kept if not changed and kept is not None else None
        return rule.model_copy(update={"enabled": False}), asked or Approval(
            "awaiting", user.username, now
        )

    def delete(self, rule_id: str, actor: str) -> None:
        now = self.clock.now().timestamp()
        with self.store.transaction() as conn:
            if not repo.delete(conn, rule_id):
                raise NotFound(f"no rule {rule_id!r}")
            self.store.audit(conn, ts=now, actor=actor, action="rule.delete", target=rule_id)
        self._reload()
