"""Accounts repository: the ``users`` and ``tokens`` tables, read and written for
:mod:`hub.services.users` inside the caller's connection or transaction."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Literal

Role = Literal["admin", "head", "technician"]
ROLES: tuple[Role, ...] = ("admin", "head", "technician")


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    role: Role
    disabled: bool

    def has(self, *roles: Role) -> bool:
        """admin may do everything; others only what their role names."""
        return self.role == "admin" or self.role in roles


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a sign-in checks: the account and its Argon2 hash."""

    user: User
    password_hash: str


def _user(row: sqlite3.Row) -> User:
    return User(row[0], row[1], row[2], bool(row[3]))


_COLUMNS = "id, username, role, disabled"


def insert(conn: sqlite3.Connection, username: str, role: Role, pw_hash: str, now: float) -> User:
    """A new account; :class:`sqlite3.IntegrityError` when the name is taken (any case)."""
    cur = conn.execute(
        "INSERT INTO users(username, role, password_hash, created_at, updated_at)"
        " VALUES (?,?,?,?,?)",
        (username, role, pw_hash, now, now),
    )
    return User(int(cur.lastrowid or 0), username, role, False)


def exists(conn: sqlite3.Connection, username: str) -> bool:
    return conn.execute("SELECT 1 FROM users WHERE username=?", (username,)).fetchone() is not None


def count(conn: sqlite3.Connection, role: str | None = None) -> int:
    if role:
        row = conn.execute("SELECT count(*) FROM users WHERE role=?", (role,)).fetchone()
    else:
        row = conn.execute("SELECT count(*) FROM users").fetchone()
    return int(row[0]) if row else 0


def get(conn: sqlite3.Connection, user_id: int) -> User | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM users WHERE id=?", (user_id,)).fetchone()
    return None if row is None else _user(row)


def all_users(conn: sqlite3.Connection) -> list[User]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM users ORDER BY username").fetchall()
    return [_user(r) for r in rows]


def credentials(conn: sqlite3.Connection, username: str) -> Credentials | None:
    row = conn.execute(
        f"SELECT {_COLUMNS}, password_hash FROM users WHERE username=?", (username,)
    ).fetchone()
    return None if row is None else Credentials(_user(row), row[4])


def set_role(conn: sqlite3.Connection, user_id: int, role: Role, now: float) -> None:
    conn.execute("UPDATE users SET role=?, updated_at=? WHERE id=?", (role, now, user_id))


def set_password_hash(conn: sqlite3.Connection, user_id: int, pw_hash: str, now: float) -> None:
    conn.execute(
        "UPDATE users SET password_hash=?, updated_at=? WHERE id=?", (pw_hash, now, user_id)
    )


def set_disabled(conn: sqlite3.Connection, user_id: int, disabled: bool, now: float) -> None:
    conn.execute(
        "UPDATE users SET disabled=?, updated_at=? WHERE id=?", (int(disabled), now, user_id)
    )


# -- tokens: bearer tokens and web sessions alike, stored as SHA-256 hashes ---------------
def insert_token(
    conn: sqlite3.Connection, token_hash: str, user_id: int, now: float, expires_at: float
) -> None:
    conn.execute(
        "INSERT INTO tokens(token_hash, user_id, created_at, expires_at) VALUES (?,?,?,?)",
        (token_hash, user_id, now, expires_at),
    )


def delete_expired_tokens(conn: sqlite3.Connection, now: float) -> None:
    conn.execute("DELETE FROM tokens WHERE expires_at < ?", (now,))


def token_user(conn: sqlite3.Connection, token_hash: str, now: float) -> User | None:
    """The account of a live token (not revoked, not expired), disabled or not."""
    row = conn.execute(
        "SELECT u.id, u.username, u.role, u.disabled FROM tokens t JOIN users u"
        " ON u.id = t.user_id WHERE t.token_hash=? AND t.revoked=0 AND t.expires_at > ?",
        (token_hash, now),
    ).fetchone()
    return None if row is None else _user(row)


def unrevoked_token(conn: sqlite3.Connection, token_hash: str) -> tuple[int, str] | None:
    """(token id, user name) of a token not yet revoked, expired or not."""
    row = conn.execute(
        "SELECT t.id, u.username FROM tokens t JOIN users u ON u.id = t.user_id"
        " WHERE t.token_hash=? AND t.revoked=0",
        (token_hash,),
    ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


def revoke_token(conn: sqlite3.Connection, token_id: int) -> None:
    conn.execute("UPDATE tokens SET revoked=1 WHERE id=?", (token_id,))


def revoke_tokens_of(conn: sqlite3.Connection, user_id: int) -> None:
    conn.execute("UPDATE tokens SET revoked=1 WHERE user_id=?", (user_id,))
