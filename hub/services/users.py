"""Accounts service: users, roles, sign-in (throttled) and tokens, for the API and the pages.

Passwords are hashed with Argon2id, tokens stored as SHA-256 hashes; every write is
audited in its own transaction. Called from API worker threads and the pages' thread
pool (Argon2 blocks for a good part of a second: never on the event loop).

Each Argon2 run takes its memory cost in RAM, so at most ``http.max_hashing`` run at once
(the rest wait a moment, then are told to come back), each on one of that many ``argon2``
threads of the service's own: glibc keeps a freed Argon2 block in the arena of the thread
that ran it, so runs spread over the 40 worker threads kept up to 16 arenas of 19 MiB each
(400 MiB resident after 80 sign-ins); on two threads, two blocks at most. Failed sign-ins
are throttled per (name, address), per name and per address, and each is logged in one
line a fail2ban filter reads (deploy/fail2ban/).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import re
import secrets
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import TYPE_CHECKING, Literal, TypeVar

from hub.clock import Clock, SystemClock
from hub.errors import AuthError, Conflict, HubError, Invalid, NotFound, Throttled
from hub.ratelimit import RateLimiter
from hub.settings import HttpSettings
from hub.store import Store
from hub.store import users as repo
from hub.store.users import ROLES, Role, User

if TYPE_CHECKING:
    from argon2 import PasswordHasher

__all__ = [
    "MIN_PASSWORD",
    "ROLES",
    "USERNAME_PATTERN",
    "AccountConflict",
    "AccountError",
    "AccountInvalid",
    "AccountMissing",
    "Role",
    "User",
    "Users",
    "check_password_strength",
    "common_passwords",
    "hash_token",
]

MIN_PASSWORD = 10
USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,31}$"
#: How long a password check waits for a free Argon2 slot before the caller is told to retry.
HASHING_WAIT_S = 2.0

log = logging.getLogger("hub.users")
T = TypeVar("T")

#: Why an account change was refused; the pages say it in words as ``users.err.<reason>``.
Reason = Literal["exists", "short", "easy", "name", "invalid", "missing", "last_admin"]


class AccountError(HubError):
    """A refused change to an account, with its :data:`Reason`."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class AccountInvalid(AccountError, Invalid):
    """A user name, role or password that is not accepted (422)."""


class AccountConflict(AccountError, Conflict):
    """The name is taken, or the change would leave no enabled admin (409)."""


class AccountMissing(AccountError, NotFound):
    """No such user (404)."""


@functools.cache
def _hasher() -> PasswordHasher:
    """Argon2id at OWASP's minimum (19 MiB, 2 passes): memory-hard, yet a sign-in stays under
    a second and inside the RAM of a Pi Zero 2 W running Mosquitto beside the hub.
    argon2 is imported at the first password hashed or checked, not at start-up: its
    binding takes about 0.5 MB of resident memory that a hub without sign-ins never uses."""
    from argon2 import PasswordHasher

    _return_large_blocks()
    return PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)


def _return_large_blocks() -> None:
    """Have glibc give a freed Argon2 block back to the system at once. By default glibc
    raises its mmap threshold to the size of the first large block freed, so every later
    19 MiB block comes from a thread's arena and stays there after the run: measured, 80
    sign-ins left the hub 85 MiB larger, with this 7 MiB. Fixing the threshold (at its
    default, 128 KiB) keeps blocks that large mapped and unmapped per run. Process-wide
    and harmless; nothing to do on a C library without ``mallopt`` (musl)."""
    import ctypes

    m_mmap_threshold = -3  # malloc.h
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).mallopt(m_mmap_threshold, 128 * 1024)


@functools.cache
def _dummy_hash() -> str:
    """Spent on unknown user names too, so response time does not tell which names exist.
    Made at the first sign-in, not at import: Argon2 takes 19 MiB while it hashes."""
    return _hasher().hash(secrets.token_urlsafe(16))


@functools.cache
def common_passwords() -> frozenset[str]:
    """The built-in list of the most guessed passwords (common_passwords.txt), lower case."""
    text = resources.files(__package__).joinpath("common_passwords.txt").read_text("utf-8")
    lines = (line.strip().lower() for line in text.splitlines())
    return frozenset(line for line in lines if line and not line.startswith("#"))


def check_password_strength(password: str, username: str) -> None:
    """Refuse what a guesser tries first: blanks, short ones (spaces around do not count),
    one character repeated, the user's own name, and the most common passwords."""
    core = password.strip()
    if not core:
        raise AccountInvalid("short", "password is empty or only spaces")
    if len(core) < MIN_PASSWORD:
        raise AccountInvalid(
            "short",
            f"password too short: at least {MIN_PASSWORD} characters, not counting spaces "
            "at the start or the end",
        )
    lowered = core.lower()
    if len(set(lowered)) == 1:
        raise AccountInvalid("easy", "password too easy to guess: one character repeated")
    if lowered == username.lower():
        raise AccountInvalid("easy", "password too easy to guess: it is the user name")
    if lowered in common_passwords():
        raise AccountInvalid(
            "easy", "password too easy to guess: it is on the list of the most common passwords"
        )


def _loggable(text: str) -> str:
    """A name as sent, safe in one log line: no line breaks or quotes to forge another
    line (or another address) for fail2ban, cut to 64 characters."""
    return re.sub(r"[^\w.@+-]", "?", text[:64])


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _role(value: str) -> Role:
    for role in ROLES:
        if value == role:
            return role
    raise AccountInvalid("invalid", f"role must be one of {', '.join(ROLES)}")


class Users:
    """The accounts of one hub. ``http`` gives the sign-in throttles (failed sign-ins per
    user name and address, per user name, per address; shared by the API and the pages),
    how many password checks run at once, and the tokens' lifetime; ``clock`` their time.
    Without them (the ``langso user`` commands): the defaults."""

    def __init__(
        self, store: Store, *, http: HttpSettings | None = None, clock: Clock | None = None
    ) -> None:
        self.store = store
        self.http = http or HttpSettings()
        self.clock: Clock = clock or SystemClock()
        window, monotonic = self.http.login_window_s, self.clock.monotonic
        self.throttle = RateLimiter(self.http.login_attempts, window, clock=monotonic)
        self.account_throttle = RateLimiter(self.http.account_attempts, window, clock=monotonic)
        self.address_throttle = RateLimiter(self.http.address_attempts, window, clock=monotonic)
        # One lock over the three throttles: a crowd of sign-ins at the same instant is
        # counted one by one, so no more are judged than the limits allow.
        self._counting = threading.Lock()
        self._hashing = threading.BoundedSemaphore(self.http.max_hashing)
        # Threads started at the first password checked (none for a command that checks none).
        self._argon2_threads = ThreadPoolExecutor(
            self.http.max_hashing, thread_name_prefix="argon2"
        )

    def _argon2(self, work: Callable[[], T]) -> T:
        """Run ``work`` (one or two Argon2 runs) on an ``argon2`` thread once one of the
        ``max_hashing`` slots is free; :class:`Throttled` after :data:`HASHING_WAIT_S`
        without one. Waits on the real clock: it is about threads, not schedules."""
        if not self._hashing.acquire(timeout=HASHING_WAIT_S):
            raise Throttled(
                "the hub is busy checking other passwords; try again in a few seconds",
                retry_after=HASHING_WAIT_S,
            )
        try:
            return self._argon2_threads.submit(work).result()
        finally:
            self._hashing.release()

    def hash_password(self, password: str) -> str:
        return self._argon2(lambda: _hasher().hash(password))

    # -- sign-in and tokens --------------------------------------------------------------
    def sign_in(self, username: str, password: str, *, address: str) -> str:
        """A new token for the right password of an enabled account. :class:`Throttled`
        after too many failures for this name from this address, for this name, or from this
        address, or when the hub is busy checking others; :class:`AuthError` otherwise, the
        same for a wrong password, an unknown name and a disabled account."""
        name = username.lower()
        keys = (
            (self.throttle, f"{name}\x00{address}"),
            (self.account_throttle, name),
            (self.address_throttle, address),
        )
        # Every attempt is counted as a failure before it is judged (so a crowd arriving
        # together is cut at the limits), and taken back if it was right or never judged.
        with self._counting:
            now = self.clock.monotonic()
            wait = max(limiter.wait(key, now) for limiter, key in keys)
            if wait <= 0:
                for limiter, key in keys:
                    limiter.add(key, now)
        if wait > 0:
            log.warning(
                "langso: sign-in refused for user '%s' from %s: too many failures",
                _loggable(username),
                address,
            )
            raise Throttled(
                f"too many failed sign-ins; try again in {wait:.0f} s", retry_after=int(wait) + 1
            )
        try:
            user = self.authenticate(username, password)
        except AuthError:
            log.warning(
                "langso: sign-in failed for user '%s' from %s", _loggable(username), address
            )
            raise
        except Throttled:
            for limiter, key in keys:
                limiter.take_back(key, now)
            raise
        self.throttle.reset(keys[0][1])
        for limiter, key in keys[1:]:
            limiter.take_back(key, now)
        return self.issue_token(
            user, now=self.clock.now().timestamp(), ttl_s=self.http.token_ttl_h * 3600
        )

    def authenticate(self, username: str, password: str) -> User:
        """The enabled account with this password. One answer for every refusal, and one
        Argon2 run for each (an unknown name checks a dummy hash): neither the words nor the
        time tell a wrong password from an unknown name or a disabled account."""
        from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

        found = repo.credentials(self.store.connection(), username)

        def check() -> bool:
            if found is None:
                with contextlib.suppress(VerificationError):
                    _hasher().verify(_dummy_hash(), password)
                return False
            try:
                return _hasher().verify(found.password_hash, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

        if not self._argon2(check) or found is None or found.user.disabled:
            raise AuthError("wrong user name or password")
        return found.user

    def issue_token(self, user: User, *, now: float, ttl_s: float) -> str:
        token = secrets.token_urlsafe(32)
        with self.store.transaction() as conn:
            repo.insert_token(conn, hash_token(token), user.id, now, now + ttl_s)
            # Expired tokens go as new ones come: the table stays small without a sweeper.
            repo.delete_expired_tokens(conn, now)
            self.store.audit(conn, ts=now, actor=user.username, action="auth.token")
        return token

    def from_token(self, token: str, *, now: float) -> User:
        user = repo.token_user(self.store.connection(), hash_token(token), now)
        if user is None or user.disabled:
            raise AuthError("invalid or expired token")
        return user

    def revoke(self, token: str, *, now: float) -> bool:
        """End one token (signing out of the web page); False if it was not valid."""
        with self.store.transaction() as conn:
            found = repo.unrevoked_token(conn, hash_token(token))
            if found is None:
                return False
            token_id, username = found
            repo.revoke_token(conn, token_id)
            self.store.audit(conn, ts=now, actor=username, action="auth.revoke")
        return True

    # -- administration (the admin's web page and /api/users); every write is audited -----
    def count(self, role: str | None = None) -> int:
        return repo.count(self.store.connection(), role)

    def get(self, user_id: int) -> User | None:
        return repo.get(self.store.connection(), user_id)

    def list_users(self) -> list[User]:
        return repo.all_users(self.store.connection())

    def add(self, username: str, role: str, password: str, *, actor: str, now: float) -> User:
        if repo.exists(self.store.connection(), username):
            raise AccountConflict("exists", f"user {username!r} already exists")
        if not re.match(USERNAME_PATTERN, username):
            raise AccountInvalid("name", "user name: 2-32 letters, digits, '.', '_' or '-'")
        checked = _role(role)
        check_password_strength(password, username)
        pw_hash = self.hash_password(password)
        with self.store.transaction() as conn:
            try:
                user = repo.insert(conn, username, checked, pw_hash, now)
            except sqlite3.IntegrityError:  # lost a race with another admin
                raise AccountConflict("exists", f"user {username!r} already exists") from None
            self.store.audit(
                conn, ts=now, actor=actor, action="user.add", target=username, detail={"role": role}
            )
        return user

    def change(
        self,
        user_id: int,
        *,
        role: str | None = None,
        disabled: bool | None = None,
        actor: str,
        now: float,
    ) -> User:
        """Change the role and/or disable (its tokens and sessions revoked) or enable."""
        new_role = None if role is None else _role(role)
        with self.store.transaction() as conn:
            target = repo.get(conn, user_id)
            if target is None:
                raise AccountMissing("missing", f"no user {user_id}")
            _keep_an_admin(
                conn,
                target,
                role=new_role or target.role,
                disabled=target.disabled if disabled is None else disabled,
            )
            if new_role is not None and new_role != target.role:
                repo.set_role(conn, user_id, new_role, now)
                self.store.audit(
                    conn,
                    ts=now,
                    actor=actor,
                    action="user.role",
                    target=target.username,
                    detail={"from": target.role, "to": new_role},
                )
            if disabled is not None and disabled != target.disabled:
                repo.set_disabled(conn, user_id, disabled, now)
                if disabled:
                    repo.revoke_tokens_of(conn, user_id)
                self.store.audit(
                    conn,
                    ts=now,
                    actor=actor,
                    action="user.disable" if disabled else "user.enable",
                    target=target.username,
                )
            changed = repo.get(conn, user_id)
        assert changed is not None
        return changed

    def set_password(self, user_id: int, password: str, *, actor: str, now: float) -> None:
        """A new password; the user's sessions and tokens end with the old one."""
        target = self.get(user_id)
        if target is None:
            raise AccountMissing("missing", f"no user {user_id}")
        check_password_strength(password, target.username)
        pw_hash = self.hash_password(password)
        with self.store.transaction() as conn:
            repo.set_password_hash(conn, user_id, pw_hash, now)
            repo.revoke_tokens_of(conn, user_id)
            self.store.audit(
                conn, ts=now, actor=actor, action="user.password", target=target.username
            )


def _keep_an_admin(conn: sqlite3.Connection, target: User, *, role: Role, disabled: bool) -> None:
    """Refuse to leave the hub with no enabled admin (nobody could manage users)."""
    if target.role != "admin" or target.disabled or (role == "admin" and not disabled):
        return
    admins = [u for u in repo.all_users(conn) if u.role == "admin" and not u.disabled]
    if len(admins) <= 1:
        raise AccountConflict("last_admin", "the last enabled admin must stay one")
