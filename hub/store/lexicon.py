"""Lexicon repository: the ``lexicon`` table, the village's own words (word -> how to say
it), for :mod:`hub.services.lexicon` (the head's edits) and the renderer (which reads the
pairs at every render, through the calling thread's connection).

The table's ``COLLATE NOCASE`` folds ASCII letters only: "Đông" and "đông" would be two
rows. The service finds a word's row by its canonical form (:func:`audio.lexicon.canonical`)
among :func:`rows`, and a village keeps a few hundred entries at most.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from hub.clock import iso


def rows(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM lexicon ORDER BY word").fetchall()


def pairs(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(word, say) of every entry: what the renderer compiles."""
    return [(str(r[0]), str(r[1])) for r in conn.execute("SELECT word, say FROM lexicon")]


def count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM lexicon").fetchone()[0])


def put(
    conn: sqlite3.Connection, *, word: str, say: str, note: str | None, by: str, at: float
) -> None:
    conn.execute(
        "INSERT INTO lexicon(word, say, note, updated_by, updated_at) VALUES (?,?,?,?,?)"
        " ON CONFLICT(word) DO UPDATE SET word=excluded.word, say=excluded.say,"
        " note=excluded.note, updated_by=excluded.updated_by, updated_at=excluded.updated_at",
        (word, say, note, by, at),
    )


def delete(conn: sqlite3.Connection, word: str) -> None:
    """Deletes the row spelled exactly ``word`` (as :func:`rows` gave it)."""
    conn.execute("DELETE FROM lexicon WHERE word=? COLLATE BINARY", (word,))


def entry_json(row: sqlite3.Row) -> dict[str, Any]:
    """An entry as the API returns it and the page lists it."""
    return {
        "word": row["word"],
        "say": row["say"],
        "note": row["note"],
        "updated_by": row["updated_by"],
        "updated_at": iso(row["updated_at"]),
    }
