"""Rules repository: the ``rules`` table (event rules as JSON) and ``rule_firings``.

The rule book (``hub/automation/rule_book.py``) writes rules for the staff, the engine
seeds the config file's rules, reads them all at a reload and logs what each fired (ingest
writer thread); the API and the pages read rules and firings. Every function takes the
caller's connection; writes run inside the caller's transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class RuleRow:
    """A stored rule: its definition (a :class:`~hub.automation.rule_model.Rule` as JSON)
    and who last wrote it, ``config`` for the config file's own."""

    id: str
    definition: str
    source: str
    created_by: str
    updated_at: float


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
) -> bool:
    """Add a rule unless one has its id; False when one has (it is left as it is)."""
    cur = conn.execute(
        "INSERT INTO rules(id, definition, source, created_by, updated_at)"
        " VALUES (?,?,?,?,?) ON CONFLICT(id) DO NOTHING",
        (rule_id, definition, source, created_by, at),
    )
    return cur.rowcount == 1


def update(conn: sqlite3.Connection, rule_id: str, definition: str, *, at: float) -> bool:
    """A staff edit (the rule's source becomes ``api``); False when there is no such rule."""
    cur = conn.execute(
        "UPDATE rules SET definition=?, source='api', updated_at=? WHERE id=?",
        (definition, at, rule_id),
    )
    return cur.rowcount == 1


def delete(conn: sqlite3.Connection, rule_id: str) -> bool:
    return conn.execute("DELETE FROM rules WHERE id=?", (rule_id,)).rowcount == 1


def get(conn: sqlite3.Connection, rule_id: str) -> RuleRow | None:
    row = conn.execute(_RULE + " WHERE id=?", (rule_id,)).fetchone()
    return None if row is None else RuleRow(*row)


def every(conn: sqlite3.Connection) -> list[RuleRow]:
    """All rules, by id."""
    return [RuleRow(*r) for r in conn.execute(_RULE + " ORDER BY id")]


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
