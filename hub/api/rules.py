"""Event rules over HTTP: list, add, change, delete, and what each one fired."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import ValidationError

from hub.api.deps import HubDep, iso, require
from hub.automation.rules import Rule
from hub.services.users import User

router = APIRouter(tags=["rules"])

Staff = Annotated[User, Depends(require("technician", "head"))]


def _rule_json(row: Any) -> dict[str, Any]:
    return {
        **json.loads(row["definition"]),
        "source": row["source"],
        "updated_at": iso(row["updated_at"]),
        "created_by": row["created_by"],
    }


def _check(hub: HubDep, rule: Rule) -> None:
    try:
        hub.rules.validate(rule)
    except ValueError as e:
        raise HTTPException(422, str(e)) from None


@router.get("/api/rules")
def list_rules(hub: HubDep, user: Staff) -> list[dict[str, Any]]:
    return [_rule_json(r) for r in hub.store.query("SELECT * FROM rules ORDER BY id")]


@router.post("/api/rules", status_code=201)
def add_rule(hub: HubDep, user: Staff, rule: Rule) -> dict[str, Any]:
    _check(hub, rule)
    now = hub.clock.now().timestamp()
    with hub.store.transaction() as conn:
        if conn.execute("SELECT 1 FROM rules WHERE id=?", (rule.id,)).fetchone():
            raise HTTPException(409, f"a rule {rule.id!r} exists: PATCH it or pick another id")
        conn.execute(
            "INSERT INTO rules(id, definition, source, created_by, updated_at) VALUES (?,?,?,?,?)",
            (rule.id, rule.model_dump_json(), "api", user.username, now),
        )
        hub.store.audit(
            conn,
            ts=now,
            actor=user.username,
            action="rule.add",
            target=rule.id,
            detail=json.loads(rule.model_dump_json()),
        )
    hub.reload_rules()
    return get_rule(hub, user, rule.id)


@router.get("/api/rules/{rule_id}")
def get_rule(hub: HubDep, user: Staff, rule_id: str) -> dict[str, Any]:
    row = hub.store.one("SELECT * FROM rules WHERE id=?", (rule_id,))
    if row is None:
        raise HTTPException(404, f"no rule {rule_id!r}")
    return _rule_json(row)


@router.patch("/api/rules/{rule_id}")
def patch_rule(hub: HubDep, user: Staff, rule_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Change some fields (e.g. ``{"enabled": false}`` or a new ``trigger``)."""
    row = hub.store.one("SELECT * FROM rules WHERE id=?", (rule_id,))
    if row is None:
        raise HTTPException(404, f"no rule {rule_id!r}")
    if "id" in changes and changes["id"] != rule_id:
        raise HTTPException(422, "id: a rule keeps its id (delete it and add a new one)")
    data = {**json.loads(row["definition"]), **changes}
    try:
        rule = Rule.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        raise HTTPException(422, f"{'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    _check(hub, rule)
    now = hub.clock.now().timestamp()
    with hub.store.transaction() as conn:
        conn.execute(
            "UPDATE rules SET definition=?, source='api', updated_at=? WHERE id=?",
            (rule.model_dump_json(), now, rule_id),
        )
        hub.store.audit(
            conn, ts=now, actor=user.username, action="rule.change", target=rule_id, detail=changes
        )
    hub.reload_rules()
    return get_rule(hub, user, rule_id)


@router.delete("/api/rules/{rule_id}", status_code=204)
def delete_rule(hub: HubDep, user: Staff, rule_id: str) -> None:
    now = hub.clock.now().timestamp()
    with hub.store.transaction() as conn:
        if conn.execute("DELETE FROM rules WHERE id=?", (rule_id,)).rowcount == 0:
            raise HTTPException(404, f"no rule {rule_id!r}")
        hub.store.audit(conn, ts=now, actor=user.username, action="rule.delete", target=rule_id)
    hub.reload_rules()


@router.get("/api/rules/{rule_id}/firings")
def rule_firings(
    hub: HubDep, user: Staff, rule_id: str, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    """What the rule fired, newest first, with the cause and each action's result."""
    if hub.store.one("SELECT 1 FROM rules WHERE id=?", (rule_id,)) is None:
        raise HTTPException(404, f"no rule {rule_id!r}")
    rows = hub.store.query(
        "SELECT * FROM rule_firings WHERE rule_id=? ORDER BY at DESC, id DESC LIMIT ?",
        (rule_id, limit),
    )
    return [
        {
            "rule_id": r["rule_id"],
            "device_id": r["device_id"],
            "state": r["state"],
            "incident": r["incident"],
            "at": iso(r["at"]),
            "cause": json.loads(r["cause"]),
            "actions": json.loads(r["actions"]),
        }
        for r in rows
    ]
