"""Event rules over HTTP: list, add, change, approve, delete, and what each one fired.

Thin: the rule book (``hub/automation/rule_book.py``) checks, stores, audits and reloads,
and decides what a technician's rule that reaches the loudspeakers, a relay or MQTT needs
(a head's approval); its domain errors become 403, 404, 409 and 422 in ``hub/api/errors.py``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from hub.api.deps import HubDep, require
from hub.api.errors import documented
from hub.automation.rule_book import approval_state
from hub.automation.rule_model import Rule
from hub.clock import iso
from hub.services.users import User
from hub.store.rules import FiringRow, RuleRow

router = APIRouter(tags=["rules"])

Staff = Annotated[User, Depends(require("technician", "head"))]
Head = Annotated[User, Depends(require("head"))]


def rule_json(row: RuleRow) -> dict[str, Any]:
    """The rule, who wrote it, and ``approval``: ``not_needed`` (it only sends messages),
    ``awaiting`` a head's approval (it stays off) or ``approved`` (``approved_by`` whom)."""
    state = approval_state(row)
    a = row.approval
    return {
        **json.loads(row.definition),
        "source": row.source,
        "updated_at": iso(row.updated_at),
        "created_by": row.created_by,
        "approval": state,
        "approved_by": a.by if a is not None and state == "approved" else None,
        "approved_at": iso(a.at) if a is not None and state == "approved" else None,
    }


def firing_json(f: FiringRow) -> dict[str, Any]:
    return {
        "rule_id": f.rule_id,
        "device_id": f.device_id,
        "state": f.state,
        "incident": f.incident,
        "at": iso(f.at),
        "cause": f.cause,
        "actions": f.actions,
    }


@router.get("/api/rules", responses=documented(401, 403))
def list_rules(hub: HubDep, user: Staff) -> list[dict[str, Any]]:
    return [rule_json(r) for r in hub.rule_book.all()]


@router.post("/api/rules", status_code=201, responses=documented(400, 401, 403, 409, 413, 422))
def add_rule(hub: HubDep, user: Staff, rule: Rule) -> dict[str, Any]:
    """A technician's rule that reaches the loudspeakers, a relay or MQTT is stored switched
    off, ``approval: awaiting``, until a head approves it."""
    return rule_json(hub.rule_book.add(rule, user))


@router.get("/api/rules/{rule_id}", responses=documented(401, 403, 404, 422))
def get_rule(hub: HubDep, user: Staff, rule_id: str) -> dict[str, Any]:
    return rule_json(hub.rule_book.get(rule_id))


@router.patch("/api/rules/{rule_id}", responses=documented(400, 401, 403, 404, 409, 413, 422))
def patch_rule(hub: HubDep, user: Staff, rule_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Change some fields (e.g. ``{"enabled": false}`` or a new ``trigger``). A technician's
    change to what an approved rule does withdraws the approval (the rule is switched off)."""
    return rule_json(hub.rule_book.change(rule_id, changes, user))


@router.post("/api/rules/{rule_id}/approve", responses=documented(401, 403, 404, 409, 422))
def approve_rule(hub: HubDep, user: Head, rule_id: str) -> dict[str, Any]:
    """A head approves a rule awaiting approval, and it is switched on (audited); not the
    person who asked for it."""
    return rule_json(hub.rule_book.approve(rule_id, user))


@router.delete("/api/rules/{rule_id}", status_code=204, responses=documented(401, 403, 404, 422))
def delete_rule(hub: HubDep, user: Staff, rule_id: str) -> None:
    hub.rule_book.delete(rule_id, user.username)


@router.get("/api/rules/{rule_id}/firings", responses=documented(401, 403, 404, 422))
def rule_firings(
    hub: HubDep, user: Staff, rule_id: str, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    """What the rule fired, newest first, with the cause and each action's result."""
    return [firing_json(f) for f in hub.rule_book.firings(rule_id, limit)]
