"""Store: one SQLite file (WAL) through sqlite-utils, schema versioned and migrated at start.

Timestamps are stored as UTC epoch seconds (REAL): compact, fast to compare,
and converted to ISO 8601 only at the API. One writer thread (ingest) does
the hot writes; API requests read through their own connections.

A damaged file (SD card, power cut) is told apart from one that cannot be reached
(permissions, a full disk): :func:`check_file` and opening raise
:class:`DatabaseCorrupt` only for the first, which ``hub.store.backup`` moves aside.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from hub.errors import StoreError

# Each migration moves the schema from version i to i+1; never edit one that has shipped.
MIGRATIONS: list[str] = [
    # 1: the event spine
    """
    CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE devices(
        id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT, source TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'unknown', status_since REAL, status_reason TEXT,
        first_seen REAL NOT NULL, last_seen REAL,
        metrics TEXT NOT NULL DEFAULT '{}', info TEXT NOT NULL DEFAULT '{}');
    CREATE TABLE events(
        id INTEGER PRIMARY KEY, ts REAL NOT NULL, received_at REAL NOT NULL,
        device_id TEXT, type TEXT NOT NULL, topic TEXT NOT NULL, data TEXT NOT NULL,
        mid INTEGER, digest BLOB);
    CREATE INDEX events_device_ts ON events(device_id, ts);
    CREATE INDEX events_ts ON events(ts);
    CREATE TABLE metrics_rollup(
        device_id TEXT NOT NULL, name TEXT NOT NULL, hour REAL NOT NULL,
        n INTEGER NOT NULL, min REAL NOT NULL, max REAL NOT NULL, sum REAL NOT NULL,
        PRIMARY KEY(device_id, name, hour)) WITHOUT ROWID;
    CREATE TABLE alerts(
        id TEXT PRIMARY KEY, device_id TEXT, rule TEXT NOT NULL, severity TEXT NOT NULL,
        state TEXT NOT NULL, message TEXT NOT NULL, raised_at REAL NOT NULL,
        cleared_at REAL, acked_by TEXT, acked_at REAL);
    CREATE INDEX alerts_state ON alerts(state, raised_at);
    CREATE INDEX alerts_device ON alerts(device_id, raised_at);
    CREATE TABLE dead_letters(
        id INTEGER PRIMARY KEY, received_at REAL NOT NULL, topic TEXT NOT NULL,
        payload BLOB NOT NULL, size INTEGER NOT NULL, reason TEXT NOT NULL,
        mid INTEGER, digest BLOB);
    CREATE TABLE users(
        id INTEGER PRIMARY KEY, username TEXT NOT NULL UNIQUE COLLATE NOCASE,
        role TEXT NOT NULL, password_hash TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL, updated_at REAL NOT NULL);
    CREATE TABLE tokens(
        id INTEGER PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE,
        user_id INTEGER NOT NULL REFERENCES users(id), created_at REAL NOT NULL,
        expires_at REAL NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE audit_log(
        id INTEGER PRIMARY KEY, ts REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
        target TEXT, detail TEXT NOT NULL DEFAULT '{}');
    """,
    # 2: announcements on the loudspeakers
    """
    CREATE TABLE audio_assets(
        id TEXT PRIMARY KEY, kind TEXT NOT NULL, path TEXT NOT NULL, sha256 TEXT NOT NULL,
        duration_s REAL NOT NULL, original_name TEXT, codec TEXT,
        created_at REAL NOT NULL, created_by TEXT NOT NULL);
    CREATE TABLE announcements(
        id TEXT PRIMARY KEY, title TEXT NOT NULL, text TEXT, audio_id TEXT
            REFERENCES audio_assets(id),
        category TEXT NOT NULL, priority TEXT NOT NULL, zones TEXT NOT NULL,
        start_local TEXT NOT NULL, rrule TEXT, exdates TEXT NOT NULL DEFAULT '[]',
        repeat INTEGER NOT NULL DEFAULT 1, expires_at REAL, voice TEXT,
        status TEXT NOT NULL, corrects TEXT, published INTEGER NOT NULL DEFAULT 1,
        render_wav TEXT, render_web TEXT, render_sha TEXT, duration_s REAL,
        next_run REAL, last_run REAL,
        created_by TEXT NOT NULL, approved_by TEXT, created_at REAL NOT NULL,
        updated_at REAL NOT NULL);
    CREATE INDEX announcements_status ON announcements(status, next_run);
    CREATE TABLE broadcasts(
        id INTEGER PRIMARY KEY, announcement_id TEXT NOT NULL REFERENCES announcements(id),
        scheduled_for REAL NOT NULL, started_at REAL, ended_at REAL, status TEXT NOT NULL,
        zones TEXT NOT NULL, priority TEXT NOT NULL, detail TEXT);
    CREATE INDEX broadcasts_time ON broadcasts(scheduled_for);
    CREATE UNIQUE INDEX broadcasts_occurrence ON broadcasts(announcement_id, scheduled_for)
        WHERE status != 'preempted';
    """,
    # 3: event rules and what each fired
    """
    CREATE TABLE rules(
        id TEXT PRIMARY KEY, definition TEXT NOT NULL, source TEXT NOT NULL,
        created_by TEXT NOT NULL, updated_at REAL NOT NULL);
    CREATE TABLE rule_firings(
        id INTEGER PRIMARY KEY, rule_id TEXT NOT NULL, device_id TEXT, state TEXT NOT NULL,
        incident TEXT NOT NULL, at REAL NOT NULL, cause TEXT NOT NULL, actions TEXT NOT NULL);
    CREATE INDEX rule_firings_rule ON rule_firings(rule_id, at);
    """,
    # 4: residents' feedback (phản ánh); the sender's address only as a salted hash
    """
    CREATE TABLE feedback(
        id INTEGER PRIMARY KEY, received_at REAL NOT NULL, name TEXT, contact TEXT,
        category TEXT, message TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'new',
        ip_hash TEXT NOT NULL, lang TEXT, updated_at REAL, updated_by TEXT);
    CREATE INDEX feedback_status ON feedback(status, received_at);
    CREATE INDEX feedback_received ON feedback(received_at);
    """,
    # 5: the announcements API's reads: newest first, and the last broadcast of each
    # (broadcasts_occurrence is partial, so a plain announcement_id lookup cannot use it)
    """
    CREATE INDEX announcements_created ON announcements(created_at);
    CREATE INDEX broadcasts_announcement ON broadcasts(announcement_id, scheduled_for);
    """,
    # 6: notifications not yet delivered, so that a restart (a power cut in a storm, the
    # Internet down) does not lose them
    """
    CREATE TABLE notify_outbox(
        id INTEGER PRIMARY KEY, channel TEXT NOT NULL, notification TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, queued_at REAL NOT NULL);
    """,
    # 7: rules that announce, switch or publish need a head's approval (hub/store/rules.py
    # keeps it in the definition). Those running before approvals existed keep running:
    # a flood alarm edited on the page must not fall silent at an upgrade.
    """
    UPDATE rules SET definition = json_set(definition, '$.approval',
        json_object('state', 'approved', 'by', 'upgrade', 'at', updated_at))
    WHERE json_extract(definition, '$.approval') IS NULL AND EXISTS (
        SELECT 1 FROM json_each(rules.definition, '$.actions') AS a
        WHERE json_extract(a.value, '$.type') IN ('announce', 'switch', 'publish'));
    """,
    # 8: cmd/announce is a command, never a device: the row earlier versions made goes
    """
    DELETE FROM devices WHERE id = 'cmd' AND kind = 'gateway';
    """,
    # 9: households' phones for emergency SMS (opt-in, kept by the head), and every SMS
    # queued for the modem with what became of it (hub/store/households.py, outbox.py)
    """
    CREATE TABLE households(
        id INTEGER PRIMARY KEY, name TEXT NOT NULL, phone TEXT NOT NULL UNIQUE,
        zone TEXT NOT NULL, opted_in_at REAL NOT NULL, added_by TEXT NOT NULL);
    CREATE INDEX households_zone ON households(zone);
    CREATE TABLE sms_log(
        id INTEGER PRIMARY KEY, at REAL NOT NULL, channel TEXT NOT NULL, phone TEXT NOT NULL,
        incident TEXT NOT NULL, digest TEXT NOT NULL, text TEXT NOT NULL,
        parts INTEGER NOT NULL, files TEXT NOT NULL DEFAULT '[]', status TEXT NOT NULL,
        detail TEXT, updated_at REAL NOT NULL);
    CREATE INDEX sms_log_phone ON sms_log(phone, at);
    CREATE INDEX sms_log_at ON sms_log(at);
    CREATE INDEX sms_log_status ON sms_log(status, at);
    """,
    # 10: what a technician calls a device on the pages, what the loudspeakers say for it,
    # where it stands and its loudspeaker zone; NULL: the config file's name, else a default
    """
    ALTER TABLE devices ADD COLUMN display_name TEXT;
    ALTER TABLE devices ADD COLUMN spoken_name TEXT;
    ALTER TABLE devices ADD COLUMN location TEXT;
    ALTER TABLE devices ADD COLUMN zone TEXT;
    """,
    # 11: an emergency is in force until it is stopped on air or ended by the head (with a
    # linked follow-up: ``corrects`` names the original, ``follow_kind`` says what it is)
    """
    ALTER TABLE announcements ADD COLUMN ended_at REAL;
    ALTER TABLE announcements ADD COLUMN ended_by TEXT;
    ALTER TABLE announcements ADD COLUMN stopped_at REAL;
    ALTER TABLE announcements ADD COLUMN stopped_by TEXT;
    ALTER TABLE announcements ADD COLUMN follow_kind TEXT;
    CREATE INDEX announcements_corrects ON announcements(corrects) WHERE corrects IS NOT NULL;
    """,
    # 12: a meeting invitation says when and where the meeting is (local date-time, as
    # start_local), which is not when it is broadcast
    """
    ALTER TABLE announcements ADD COLUMN meeting_local TEXT;
    ALTER TABLE announcements ADD COLUMN meeting_place TEXT;
    CREATE INDEX announcements_meeting ON announcements(meeting_local)
        WHERE meeting_local IS NOT NULL;
    """,
    # 13: the village's own words: how the loudspeakers say a word or an abbreviation
    # (hamlet and family names, local abbreviations), applied before the built-in rules
    """
    CREATE TABLE lexicon(
        word TEXT PRIMARY KEY COLLATE NOCASE, say TEXT NOT NULL, note TEXT,
        updated_by TEXT NOT NULL, updated_at REAL NOT NULL);
    """,
    # 14: clarity on a horn speaker: an announcement's own speaking rate (a factor of its
    # voice's) and pause after each sentence; NULL follows the settings
    """
    ALTER TABLE announcements ADD COLUMN rate REAL;
    ALTER TABLE announcements ADD COLUMN sentence_pause_s REAL;
    """,
    # 15: a year on an SD card (hub/store/readings.py says why): raw readings time-major and
    # packed, names as numbers, rollups hour-major, the packet ids' digests in a table of
    # their own. The JSON readings of ``events`` are converted after this script, in
    # chunks of their own transactions (``readings_json`` marks the work left), by
    # hub/store/upgrade.py.
    """
    CREATE TABLE codes(
        id INTEGER PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, UNIQUE(kind, name));
    CREATE TABLE readings(
        keep INTEGER NOT NULL, slot INTEGER NOT NULL, device INTEGER NOT NULL,
        ms INTEGER NOT NULL, lag INTEGER NOT NULL, topic INTEGER NOT NULL,
        info INTEGER NOT NULL, vals BLOB NOT NULL,
        PRIMARY KEY(keep, slot, device, ms)) WITHOUT ROWID;
    CREATE TABLE rollups(
        hour INTEGER NOT NULL, device INTEGER NOT NULL, metric INTEGER NOT NULL,
        n INTEGER NOT NULL, k INTEGER NOT NULL, lo NOT NULL, hi NOT NULL, total NOT NULL,
        PRIMARY KEY(hour, device, metric)) WITHOUT ROWID;
    CREATE TABLE mqtt_seen(mid INTEGER PRIMARY KEY, digest BLOB NOT NULL);
    INSERT OR IGNORE INTO codes(kind, name) SELECT DISTINCT 'd', device_id FROM metrics_rollup;
    INSERT OR IGNORE INTO codes(kind, name) SELECT DISTINCT 'm', name FROM metrics_rollup;
    INSERT INTO rollups(hour, device, metric, n, k, lo, hi, total)
        SELECT CAST(r.hour / 3600 AS INTEGER), d.id, m.id, r.n, 0, r.min, r.max, r.sum
        FROM metrics_rollup r JOIN codes d ON d.kind = 'd' AND d.name = r.device_id
        JOIN codes m ON m.kind = 'm' AND m.name = r.name ORDER BY 1, 2, 3;
    DROP TABLE metrics_rollup;
    INSERT OR REPLACE INTO mqtt_seen(mid, digest)
        SELECT mid, digest FROM (
            SELECT received_at, id, mid, digest FROM (SELECT received_at, id, mid, digest
                FROM events WHERE mid IS NOT NULL AND digest IS NOT NULL
                ORDER BY id DESC LIMIT 65536)
            UNION ALL SELECT received_at, id, mid, digest FROM (SELECT received_at, id, mid,
                digest FROM dead_letters WHERE mid IS NOT NULL AND digest IS NOT NULL
                ORDER BY id DESC LIMIT 65536))
        ORDER BY received_at, id;
    INSERT INTO meta(key, value) VALUES ('readings_json', '0')
        ON CONFLICT(key) DO UPDATE SET value = '0';
    """,
    # 16: daily rollups, folded from the hourly ones by the sweep (``daily_until`` marks
    # the hours folded): device-major, so a year's chart is one range of 365 rows instead
    # of 8,760 lookups in the hour-major hourly table (bench/year.py). Values as floats.
    """
    CREATE TABLE rollups_daily(
        device INTEGER NOT NULL, metric INTEGER NOT NULL, day INTEGER NOT NULL,
        n INTEGER NOT NULL, lo REAL NOT NULL, hi REAL NOT NULL, total REAL NOT NULL,
        PRIMARY KEY(device, metric, day)) WITHOUT ROWID;
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)

#: SQLite's result codes for a damaged file; anything else (CANTOPEN, FULL, IOERR, BUSY,
#: PERM) is the disk or the system, and moving the file aside would not help.
_DAMAGED = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})


class DatabaseCorrupt(StoreError):
    """The database file is damaged: SQLite calls it corrupt, not a database, or its
    quick or integrity check finds faults. ``hub.store.backup`` moves such a file aside."""


def is_damaged(e: sqlite3.Error) -> bool:
    return getattr(e, "sqlite_errorcode", None) in _DAMAGED


def check_file(path: Path, *, thorough: bool = False, name: str | None = None) -> None:
    """Raise :class:`DatabaseCorrupt` when the file at ``path`` is damaged.

    ``PRAGMA quick_check`` (every page read, no index cross-check: about a second per
    100 MB on a Pi's SD card) at start; ``integrity_check`` (indexes against their
    tables too) for a copy about to be trusted, a backup. A missing file is a new
    database; an empty one is not (the hub writes its schema in the file's first
    transaction, so an empty ``hub.db`` is one whose contents were lost). Errors that
    are not damage (permissions, a full disk) raise :class:`StoreError`. Messages call
    the file ``name`` (default: its path), the backup a copy was unpacked from.
    """
    shown = name or str(path)
    try:
        if not path.exists():
            return
        if path.stat().st_size == 0:
            raise DatabaseCorrupt(f"{shown} is empty (0 bytes): its contents were lost")
        # Read-only: the last connection to close a database in WAL mode checkpoints and
        # deletes the -wal, and a damaged file's -wal must go aside as it was.
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0)
    except OSError as e:
        raise StoreError(f"cannot read the database {shown}: {e}") from e
    except sqlite3.Error as e:
        raise _classified(shown, e) from e
    try:
        pragma = "integrity_check" if thorough else "quick_check"
        faults = [str(r[0]) for r in conn.execute(f"PRAGMA {pragma}").fetchall()]
    except sqlite3.Error as e:
        raise _classified(shown, e) from e
    finally:
        conn.close()
    if faults != ["ok"]:
        shown = "; ".join(faults[:3]) + (
            f" (and {len(faults) - 3} more)" if len(faults) > 3 else ""
        )
        raise DatabaseCorrupt(f"{shown} failed its {pragma.replace('_', ' ')}: {shown}")


def _classified(path: Path | str, e: sqlite3.Error, *, hint: bool = False) -> StoreError:
    if is_damaged(e):
        return DatabaseCorrupt(
            f"{path} is damaged: {e}"
            + (
                " (`langso run` moves it aside and starts from the newest good backup; "
                "`langso restore FILE` puts a chosen backup in place)"
                if hint
                else ""
            )
        )
    return StoreError(f"cannot open the database {path}: {e}")


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=10.0, check_same_thread=False, isolation_level=None)
    # WAL: readers never block the writer. synchronous=NORMAL: a commit survives the hub
    # being killed (the WAL is in the OS), and only a power cut can lose the last commits;
    # FULL would fsync every batch and wear the SD card.
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


class Store:
    """Opens connections to the hub's database and runs the migrations once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite_utils.Database(_connect(path))
            self.migrate()
        except OSError as e:
            raise StoreError(f"cannot open the database {path}: {e}") from e
        except sqlite3.Error as e:
            raise _classified(path, e, hint=True) from e

    def migrate(self) -> None:
        conn = self.db.conn
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema {version}, newer than this hub ({SCHEMA_VERSION}): "
                "upgrade the hub or restore an older backup"
            )
        for i in range(version, SCHEMA_VERSION):
            with immediate(conn):
                for stmt in _statements(MIGRATIONS[i]):
                    conn.execute(stmt)
                conn.execute(f"PRAGMA user_version={i + 1}")
        # Work a migration leaves in chunks (each its own transaction, resumed after a cut).
        from hub.store.upgrade import convert_json_readings

        convert_json_readings(conn)

    def connection(self) -> sqlite3.Connection:
        """A connection of the calling thread (API worker threads each get one)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path)
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        return conn

    def new_connection(self) -> sqlite3.Connection:
        """A private connection, for a thread that owns it (the ingest writer)."""
        conn = _connect(self.path)
        conn.row_factory = sqlite3.Row
        return conn

    def writer_connection(self) -> sqlite3.Connection:
        """The ingest writer's connection, tuned for few writes (an SD card wears by them).

        Each commit appends the pages it dirtied to the WAL (synchronous=NORMAL: no fsync
        per commit, only at checkpoints); a checkpoint copies each page changed since the
        last one back to the database once. Time-major tables (:mod:`hub.store.readings`)
        make a commit dirty the same last pages as the one before, so the bigger the WAL
        between checkpoints, the more of those rewrites a checkpoint folds into one copy:
        4,000 pages (16 MiB; default 1,000), about an hour of a village's readings.
        ``journal_size_limit`` truncates the WAL back to 32 MiB after a checkpoint; a 4 MiB
        page cache (default 2 MiB) keeps the tables' last pages and the devices in memory
        between commits, so a commit reads nothing back from the card.
        """
        conn = self.new_connection()
        conn.execute("PRAGMA cache_size=-4096")
        conn.execute("PRAGMA wal_autocheckpoint=4000")
        conn.execute("PRAGMA journal_size_limit=33554432")
        return conn

    def query(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        return self.connection().execute(sql, params).fetchall()

    def one(self, sql: str, params: Any = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.connection().execute(sql, params).fetchone()
        return row

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """A write transaction on the calling thread's connection."""
        return immediate(self.connection())

    def audit(
        self,
        conn: sqlite3.Connection,
        *,
        ts: float,
        actor: str,
        action: str,
        target: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Every write is audited, inside the write's own transaction."""
        conn.execute(
            "INSERT INTO audit_log(ts, actor, action, target, detail) VALUES (?,?,?,?,?)",
            (ts, actor, action, target, json.dumps(detail or {}, ensure_ascii=False)),
        )

    def get_meta(self, key: str) -> str | None:
        row = self.one("SELECT value FROM meta WHERE key=?", (key,))
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        self.connection().execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    def check(self) -> bool:
        try:
            self.connection().execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        self.db.conn.close()


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` on a connection in autocommit mode, ``ROLLBACK``
    on any error. IMMEDIATE takes the write lock at once, so a busy database makes the
    transaction wait (busy_timeout) at its start rather than fail at its first write."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        # SQLite has already rolled back after some errors (SQLITE_FULL): a second
        # ROLLBACK would fail with "cannot rollback" and hide the error that matters.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
