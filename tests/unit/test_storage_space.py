"""The storage's refusals told apart (hub.store.space) on real SQLite: a database capped by
``max_page_count`` refuses with SQLITE_FULL as a full disk does."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest

from hub.errors import StorageFailed, StorageFull
from hub.store import immediate
from hub.store.space import classify, root_cause, storage_error


def _full_error(tmp_path: Path) -> BaseException:
    conn = sqlite3.connect(tmp_path / "capped.db", isolation_level=None)
    conn.execute("CREATE TABLE t(x BLOB)")
    conn.execute("PRAGMA max_page_count=3")
    with pytest.raises(sqlite3.Error) as caught, immediate(conn):
        conn.execute("INSERT INTO t VALUES (zeroblob(100000))")
    conn.close()
    return caught.value


def test_a_full_database_is_full_even_behind_a_failed_rollback(tmp_path: Path) -> None:
    e = _full_error(tmp_path)
    # SQLite rolled back by itself: the hub's ROLLBACK fails, its context is the real error.
    assert classify(e) == "full"
    assert "full" in str(root_cause(e))
    assert isinstance(storage_error(e), StorageFull)


def test_what_is_not_the_storage_is_no_storage_error(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db")
    conn.execute("CREATE TABLE t(x UNIQUE)")
    conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(sqlite3.IntegrityError) as caught:
        conn.execute("INSERT INTO t VALUES (1)")
    conn.close()
    assert classify(caught.value) is None
    assert storage_error(caught.value) is None
    assert classify(OSError(errno.ENOSPC, "No space left on device")) == "full"
    assert isinstance(storage_error(OSError(errno.EIO, "I/O error")), StorageFailed)
    assert classify(FileNotFoundError(errno.ENOENT, "gone")) is None
