"""Rules repository: the ``rules`` table (event rules as JSON) and ``rule_firings``.

The rule book (``hub/automation/rule_book.py``) writes rules for the staff, the engine
seeds the config file's rules, reads them all at a reload and logs what each fired (ingest
writer thread); the API and the pages read rules and firings. Every function takes the
caller's connection; writes run inside the caller's transaction.

A rule's approval (a head's, for a rule that reaches the loudspeakers, a relay or the
broker) is kept in its ``definition`` under the ``approval`` key, which the rule language
does not have: the rows this module returns carry it apart, as :class:`Approval`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

_APPROVAL = "approval"


@dataclass(frozen=True, slots=True)
class Approval:
    """``approved`` by a head (or ``config`` for the file's rules), or ``awaiting`` a head's
    approval since a technician (``by``) saved it; ``at`` when (epoch seconds)."""

    state: Literal["approved", "awaiting"]
    by: str
    at: float

    @property
    def approved(self) -> bool:
        return self.state == "approved"


@dataclass(frozen=True, slots=True)
class RuleRow:
    """A stored rule: its definition (a :class:`~hub.automation.rule_model.Rule` as JSON),
    who wrote it first (``config`` for the config file's own), and its approval."""

    id: str
    definition: str
    source: str
    created_by: str
    updated_at: float
    approval: Approval | None = None


@dataclass(frozen=True, slots=True)
class FiringRow:
    """A rule raised or cleared: the cause, and one result line per action."""

    id: int
    rule_id: str
    device_id: str | None
    state: str
    incident: str
    at: float
    cause: dict[str, Any]
    actions: list[str]


_RULE = "SELECT id, definition, source, created_by, updated_at FROM rules"
_FIRING = "SELECT id, rule_id, device_id, state, incident, at, cause, actions FROM rule_firings"


def _pack(definition: str, approval: Approval | None) -> str:
    if approval is None:
        return definition
    data = json.loads(definition)
    data[_APPROVAL] = {"state": approval.state, "by": approval.by, "at": approval.at}
    return json.dumps(data, ensure_ascii=False)


def _rule(r: Sequence[Any]) -> RuleRow:
    definition: str = r[1]
    approval = None
    data = json.loads(definition)
    if isinstance(data, dict) and _APPROVAL in data:
        a = data.pop(_APPROVAL)
        approval = Approval(a["state"], a["by"], float(a["at"]))
        definition = json.dumps(data, ensure_ascii=False)
    return RuleRow(r[0], definition, r[2], r[3], r[4], approval)


def _firing(r: Sequence[Any]) -> FiringRow:
    return FiringRow(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), json.loads(r[7]))


def insert(
    conn: sqlite3.Connection,
    rule_id: str,
    definition: str,
    *,
    source: str,
    created_by: str,
    at: float,
    approval: Approval | None,
) -> bool:
    """Add a rule unless one has its id; False when one has (it is left as it is)."""
    cur = conn.execute(
        "INSERT INTO rules(id, definition, source, created_by, updated_at)"
        " VALUES (?,?,?,?,?) ON CONFLICT(id) DO NOTHING",
        (rule_id, _pack(definition, approval), source, created_by, at),
    )
    return cur.rowcount == 1


def update(
    conn: sqlite3.Connection,
    rule_id: str,
    definition: str,
    *,
    at: float,
    approval: Approval | None,
) -> bool:
    """A staff edit (the rule's source becomes ``api``); False when there is no such rule."""
    cur = conn.execute(
        "UPDATE rules SET definition=?, source='api', updated_at=? WHERE id=?",
        (_pack(definition, approval), at, rule_id),
    )
    return cur.rowcount == 1


def set_approval(conn: sqlite3.Connection, rule_id: str, approval: Approval) -> bool:
    """The approval alone, the rule and its source as they are (the file's rules at a start
    after an upgrade); False when there is no such rule."""
    row = get(conn, rule_id)
    if row is None:
        return False
    conn.execute(
        "UPDATE rules SET definition=? WHERE id=?", (_pack(row.definition, approval), rule_id)
    )
    return True


def delete(conn: sqlite3.Connection, rule_id: str) -> bool:
    return conn.execute("DELETE FROM rules WHERE id=?", (rule_id,)).rowcount == 1


def get(conn: sqlite3.Connection, rule_id: str) -> RuleRow | None:
    row = conn.execute(_RULE + " WHERE id=?", (rule_id,)).fetchone()
    return None if row is None else _rule(row)


def every(conn: sqlite3.Connection) -> list[RuleRow]:
    """All rules, by id."""
    return [_rule(r) for r in conn.execute(_RULE + " ORDER BY id")]


def add_firing(
    conn: sqlite3.Connection,
    *,
    rule_id: str,
    device_id: str | None,
    state: str,
    incident: str,
    at: float,
    cause: Mapping[str, Any],
    actions: Sequence[str],
) -> None:
    conn.execute(
        "INSERT INTO rule_firings(rule_id, device_id, state, incident, at, cause, actions)"
        " VALUES (?,?,?,?,?,?,?)",
        (
            rule_id,
            device_id,
            state,
            incident,
            at,
            json.dumps(cause, ensure_ascii=False, default=str),
            json.dumps(list(actions), ensure_ascii=False),
        ),
    )


def firings(conn: sqlite3.Connection, rule_id: str, limit: int) -> list[FiringRow]:
    """What a rule fired, newest first."""
    rows = conn.execute(
        _FIRING + " WHERE rule_id=? ORDER BY at DESC, id DESC LIMIT ?", (rule_id, limit)
    )
    return [_firing(r) for r in rows]


def last_firing(conn: sqlite3.Connection, rule_id: str) -> FiringRow | None:
    found = firings(conn, rule_id, 1)
    return found[0] if found else None


def update_result(
    conn: sqlite3.Connection, incident: str, state: str, change: Callable[[str], str | None]
) -> bool:
    """Rewrite the result lines of the firing ``(incident, state)`` that ``change`` returns
    a new text for (the notifier's outcomes); False when no line changed. A rule's incident
    starts with its rule id, which finds the firing through the rule's index."""
    rule_id = incident.partition(":")[0]
    rows = conn.execute(
        "SELECT id, actions FROM rule_firings WHERE rule_id=? AND incident=? AND state=?",
        (rule_id, incident, state),
    ).fetchall()
    changed = False
    for fid, actions in rows:
        lines: list[str] = json.loads(actions)
        new = [change(text) or text for text in lines]
        if new != lines:
            conn.execute(
                "UPDATE rule_firings SET actions=? WHERE id=?",
                (json.dumps(new, ensure_ascii=False), fid),
            )
            changed = True
    return changed


def since(conn: sqlite3.Connection, at: float, limit: int) -> list[FiringRow]:
    """Every rule's firings from ``at`` on, newest first."""
    rows = conn.execute(_FIRING + " WHERE at >= ? ORDER BY at DESC, id DESC LIMIT ?", (at, limit))
    return [_firing(r) for r in rows]


#: Causes whose incident lasts until it clears (a button's or a schedule's fires once).
LASTING = ("metric", "status", "alert")


def still_raised(conn: sqlite3.Connection, limit: int) -> list[FiringRow]:
    """The incidents still raised: per rule and device, the latest firing of a lasting
    cause, when it raised; newest first."""
    marks = ",".join("?" * len(LASTING))
    rows = conn.execute(
        _FIRING + " AS f WHERE state='raised'"
        f" AND json_extract(cause, '$.event') IN ({marks})"
        " AND NOT EXISTS (SELECT 1 FROM rule_firings AS later"
        "   WHERE later.rule_id = f.rule_id AND later.device_id IS f.device_id"
        "   AND (later.at > f.at OR (later.at = f.at AND later.id > f.id)))"
        " ORDER BY at DESC, id DESC LIMIT ?",
        (*LASTING, limit),
    )
    return [_firing(r) for r in rows]
