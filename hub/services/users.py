"""Users, roles and bearer tokens: passwords hashed with Argon2id, tokens stored as hashes."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
import secrets
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from hub.errors import AuthError
from hub.store import Store

if TYPE_CHECKING:
    from argon2 import PasswordHasher

Role = Literal["admin", "head", "technician"]
ROLES: tuple[Role, ...] = ("admin", "head", "technician")


@functools.cache
def _hasher() -> PasswordHasher:
    """Argon2id at OWASP's minimum (19 MiB, 2 passes): memory-hard, yet a sign-in stays under
    a second and inside the RAM of a Pi Zero 2 W running Mosquitto beside the hub.
    argon2 is imported at the first password hashed or checked, not at start-up: its
    binding takes about 0.5 MB of resident memory that a hub without sign-ins never uses."""
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)


@functools.cache
def _dummy_hash() -> str:
    """Spent on unknown user names too, so response time does not tell which names exist.
    Made at the first sign-in, not at import: Argon2 takes 19 MiB while it hashes."""
    return _hasher().hash(secrets.token_urlsafe(16))


MIN_PASSWORD = 10
USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,31}$"


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    role: Role
    disabled: bool

    def has(self, *roles: Role) -> bool:
        """admin may do everything; others only what their role names."""
        return self.role == "admin" or self.role in roles


def check_password_strength(password: str, username: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"password too short: at least {MIN_PASSWORD} characters")
    if password.lower() == username.lower() or password.lower() in {"1234567890", "password12"}:
        raise ValueError("password too easy to guess")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Users:
    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, username: str, role: str, password: str, *, actor: str, now: float) -> User:
        if not re.match(USERNAME_PATTERN, username):
            raise ValueError("user name: 2-32 letters, digits, '.', '_' or '-'")
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        check_password_strength(password, username)
        pw_hash = _hasher().hash(password)
        with self.store.transaction() as conn:
            try:
                cur = conn.execute(
                    "INSERT INTO users(username, role, password_hash, created_at, updated_at)"
                    " VALUES (?,?,?,?,?)",
                    (username, role, pw_hash, now, now),
                )
            except sqlite3.IntegrityError:
                raise ValueError(f"user {username!r} already exists") from None
            self.store.audit(
                conn, ts=now, actor=actor, action="user.add", target=username, detail={"role": role}
            )
        return User(int(cur.lastrowid or 0), username, role, False)

    def count(self, role: str | None = None) -> int:
        if role:
            row = self.store.one("SELECT count(*) FROM users WHERE role=?", (role,))
        else:
            row = self.store.one("SELECT count(*) FROM users")
        return int(row[0]) if row else 0

    def authenticate(self, username: str, password: str) -> User:
        from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

        row = self.store.one(
            "SELECT id, username, role, password_hash, disabled FROM users WHERE username=?",
            (username,),
        )
        if row is None:
            with contextlib.suppress(VerificationError):
                _hasher().verify(_dummy_hash(), password)
            raise AuthError("wrong user name or password")
        try:
            _hasher().verify(row["password_hash"], password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            raise AuthError("wrong user name or password") from None
        if row["disabled"]:
            raise AuthError("this account is disabled")
        return User(row["id"], row["username"], row["role"], False)

    def issue_token(self, user: User, *, now: float, ttl_s: float) -> str:
        token = secrets.token_urlsafe(32)
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO tokens(token_hash, user_id, created_at, expires_at) VALUES (?,?,?,?)",
                (hash_token(token), user.id, now, now + ttl_s),
            )
            # Expired tokens go as new ones come: the table stays small without a sweeper.
            conn.execute("DELETE FROM tokens WHERE expires_at < ?", (now,))
            self.store.audit(conn, ts=now, actor=user.username, action="auth.token")
        return token

    def from_token(self, token: str, *, now: float) -> User:
        row = self.store.one(
            "SELECT u.id, u.username, u.role, u.disabled FROM tokens t JOIN users u"
            " ON u.id = t.user_id WHERE t.token_hash=? AND t.revoked=0 AND t.expires_at > ?",
            (hash_token(token), now),
        )
        if row is None or row["disabled"]:
            raise AuthError("invalid or expired token")
        return User(row["id"], row["username"], row["role"], False)

    # -- administration (the admin's web page and /api/users); every write is audited -----
    def get(self, user_id: int) -> User | None:
        row = self.store.one(
            "SELECT id, username, role, disabled FROM users WHERE id=?", (user_id,)
        )
        if row is None:
            return None
        return User(row["id"], row["username"], row["role"], bool(row["disabled"]))

    def list_users(self) -> list[User]:
        rows = self.store.query("SELECT id, username, role, disabled FROM users ORDER BY username")
        return [User(r["id"], r["username"], r["role"], bool(r["disabled"])) for r in rows]

    def set_role(self, user_id: int, role: str, *, actor: str, now: float) -> User:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        with self.store.transaction() as conn:
            row = conn.execute("SELECT username, role FROM users WHERE id=?", (user_id,)).fetchone()
            if row is None:
                raise KeyError(user_id)
            conn.execute("UPDATE users SET role=?, updated_at=? WHERE id=?", (role, now, user_id))
            self.store.audit(
                conn,
                ts=now,
                actor=actor,
                action="user.role",
                target=row[0],
                detail={"from": row[1], "to": role},
            )
        user = self.get(user_id)
        assert user is not None
        return user

    def set_password(self, user_id: int, password: str, *, actor: str, now: float) -> None:
        """A new password; the user's sessions and tokens end with the old one."""
        row = self.store.one("SELECT username FROM users WHERE id=?", (user_id,))
        if row is None:
            raise KeyError(user_id)
        check_password_strength(password, row["username"])
        pw_hash = _hasher().hash(password)
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE users SET password_hash=?, updated_at=? WHERE id=?", (pw_hash, now, user_id)
            )
            conn.execute("UPDATE tokens SET revoked=1 WHERE user_id=?", (user_id,))
            self.store.audit(conn, ts=now, actor=actor, action="user.password", target=row[0])

    def set_disabled(self, user_id: int, disabled: bool, *, actor: str, now: float) -> User:
        """Disable (its tokens and sessions are revoked) or enable an account."""
        with self.store.transaction() as conn:
            row = conn.execute("SELECT username FROM users WHERE id=?", (user_id,)).fetchone()
            if row is None:
                raise KeyError(user_id)
            conn.execute(
                "UPDATE users SET disabled=?, updated_at=? WHERE id=?",
                (int(disabled), now, user_id),
            )
            if disabled:
                conn.execute("UPDATE tokens SET revoked=1 WHERE user_id=?", (user_id,))
            self.store.audit(
                conn,
                ts=now,
                actor=actor,
                action="user.disable" if disabled else "user.enable",
                target=row[0],
            )
        user = self.get(user_id)
        assert user is not None
        return user

    def revoke(self, token: str, *, now: float) -> bool:
        """End one token (signing out of the web page); False if it was not valid."""
        with self.store.transaction() as conn:
            row = conn.execute(
                "SELECT t.id, u.username FROM tokens t JOIN users u ON u.id = t.user_id"
                " WHERE t.token_hash=? AND t.revoked=0",
                (hash_token(token),),
            ).fetchone()
            if row is None:
                return False
            conn.execute("UPDATE tokens SET revoked=1 WHERE id=?", (row[0],))
            self.store.audit(conn, ts=now, actor=row[1], action="auth.revoke")
        return True
