"""Migrations of a database made by an earlier version of the hub."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from hub.store import MIGRATIONS, Store
from hub.store import rules as repo

LOUD = {
    "id": "flood",
    "name": "Báo động lũ",
    "trigger": {"type": "button"},
    "actions": [{"type": "announce", "template": "Nước lên"}],
}
QUIET = {
    "id": "tell",
    "name": "Báo kỹ thuật",
    "trigger": {"type": "button"},
    "actions": [{"type": "notify", "to": "technicians"}],
}


def test_rules_running_before_approvals_existed_stay_approved(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    conn = sqlite3.connect(path)
    for script in MIGRATIONS[:6]:
        conn.executescript(script)
    for rule in (LOUD, QUIET):
        conn.execute(
            "INSERT INTO rules(id, definition, source, created_by, updated_at) VALUES (?,?,?,?,?)",
            (rule["id"], json.dumps(rule), "api", "tech", 1_700_000_000.0),
        )
    conn.execute("PRAGMA user_version=6")
    conn.commit()
    conn.close()

    store = Store(path)
    try:
        loud = repo.get(store.connection(), "flood")
        quiet = repo.get(store.connection(), "tell")
        assert loud is not None and loud.approval is not None
        assert (loud.approval.state, loud.approval.by, loud.approval.at) == (
            "approved",
            "upgrade",
            1_700_000_000.0,
        )
        assert json.loads(loud.definition) == LOUD
        assert quiet is not None and quiet.approval is None
    finally:
        store.close()
