"""Sign-in rules of the accounts service (hub/services/users.py) on a real SQLite file: the
password policy, the throttles per account and per address, the bound on Argon2 runs, the
fail2ban line (checked with fail2ban's own fail2ban-regex against deploy/fail2ban/), and
which X-Forwarded-For is believed (hub/api/deps.py)."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from configparser import RawConfigParser
from pathlib import Path

import pytest

from hub.api.deps import forwarded_for
from hub.clock import FakeClock
from hub.errors import AuthError, Throttled
from hub.ratelimit import RateLimiter
from hub.services.users import HASHING_WAIT_S, AccountInvalid, Users, common_passwords
from hub.settings import HttpSettings
from hub.store import Store

ROOT = Path(__file__).parents[2]
FILTER = ROOT / "deploy" / "fail2ban" / "filter.d" / "langso.conf"
JAIL = ROOT / "deploy" / "fail2ban" / "jail.d" / "langso.conf"
#: The line format of `langso run` (hub/cli.py): what the journal, and fail2ban, see.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
GOOD = "nuoc-len-bo-de-3"


@pytest.fixture
def users(tmp_path: Path) -> Iterator[Users]:
    store = Store(tmp_path / "hub.db")
    try:
        yield Users(store, http=HttpSettings(), clock=FakeClock())
    finally:
        store.close()


@pytest.mark.parametrize(
    ("password", "reason", "words"),
    [
        ("", "short", "empty or only spaces"),
        (" " * 10, "short", "empty or only spaces"),
        ("\t \n " * 4, "short", "empty or only spaces"),
        ("   short   ", "short", "at least 10 characters"),
        ("aaaaaaaaaaaa", "easy", "one character repeated"),
        ("1234567890", "easy", "most common"),
        ("Password123", "easy", "most common"),
        ("matkhau123", "easy", "most common"),
        ("admin12345", "easy", "most common"),
        ("QWERTYUIOP", "easy", "most common"),
        ("  iloveyou123  ", "easy", "most common"),
        ("truong-thon-a", "easy", "user name"),
    ],
)
def test_the_password_policy_refuses_blanks_and_the_obvious_with_a_reason(
    users: Users, password: str, reason: str, words: str
) -> None:
    with pytest.raises(AccountInvalid) as refused:
        users.add("truong-thon-a", "head", password, actor="test", now=0)
    assert refused.value.reason == reason
    assert words in str(refused.value)
    assert users.count() == 0
    users.add("truong-thon-a", "head", GOOD, actor="test", now=0)
    with pytest.raises(AccountInvalid) as again:
        users.set_password(1, password, actor="test", now=1)
    assert again.value.reason == reason


def test_the_common_passwords_list_is_shipped_and_long_enough() -> None:
    listed = common_passwords()
    assert len(listed) >= 300
    assert {"1234567890", "password123", "matkhau123", "admin12345", "qwertyuiop"} <= listed
    assert all(p == p.strip().lower() for p in listed)


def test_a_disabled_account_and_a_wrong_password_get_the_same_answer(users: Users) -> None:
    users.add("pho-thon", "head", GOOD, actor="test", now=0)
    other = users.add("ke-toan", "technician", GOOD, actor="test", now=0)
    users.change(other.id, disabled=True, actor="test", now=1)
    answers = []
    for name, password in (("pho-thon", "sai-mat-khau-1"), ("ke-toan", GOOD), ("nobody", GOOD)):
        with pytest.raises(AuthError) as refused:
            users.sign_in(name, password, address="10.0.0.9")
        answers.append((type(refused.value), str(refused.value)))
    assert answers[0] == answers[1] == answers[2]
    assert users.sign_in("pho-thon", GOOD, address="10.0.0.9")


def test_failures_are_throttled_per_account_from_any_address(users: Users) -> None:
    users.add("truong", "head", GOOD, actor="test", now=0)
    limit = users.http.account_attempts
    judged = throttled = 0
    for i in range(50):  # 50 addresses, 5 guesses each: under every per-address limit
        for guess in range(5):
            try:
                users.sign_in("truong", f"doan-sai-{guess}-{i}", address=f"10.1.{i}.1")
            except Throttled:
                throttled += 1
            except AuthError:
                judged += 1
    assert (judged, throttled) == (limit, 250 - limit)
    # The account waits out the window, whoever asks, even with the right password.
    with pytest.raises(Throttled):
        users.sign_in("truong", GOOD, address="10.9.9.9")
    assert isinstance(users.clock, FakeClock)
    users.clock.advance(users.http.login_window_s)
    assert users.sign_in("truong", GOOD, address="10.9.9.9")


def test_failures_are_throttled_per_address_for_any_name(users: Users) -> None:
    limit = users.http.address_attempts
    outcomes = []
    for i in range(limit + 5):
        try:
            users.sign_in(f"ten-{i}", "doan-sai-mat-khau", address="192.0.2.7")
        except Throttled:
            outcomes.append("429")
        except AuthError:
            outcomes.append("401")
    assert outcomes == ["401"] * limit + ["429"] * 5
    with pytest.raises(AuthError):  # another address is not held back
        users.sign_in("ten-0", "doan-sai-mat-khau", address="192.0.2.8")


def test_a_right_password_is_not_counted_against_the_account(users: Users) -> None:
    users.add("truong", "head", GOOD, actor="test", now=0)
    for _ in range(users.http.account_attempts * 2):
        assert users.sign_in("truong", GOOD, address="10.0.0.1")
    assert users.account_throttle.wait("truong") == 0.0


def test_at_most_max_hashing_password_checks_run_and_the_rest_get_429(users: Users) -> None:
    users.add("truong", "head", GOOD, actor="test", now=0)
    for _ in range(users.http.max_hashing):  # every slot taken, as by long checks
        users._hashing.acquire()
    try:
        started = time.monotonic()
        with pytest.raises(Throttled) as busy:
            users.sign_in("truong", GOOD, address="10.0.0.1")
        waited = time.monotonic() - started
    finally:
        for _ in range(users.http.max_hashing):
            users._hashing.release()
    assert HASHING_WAIT_S - 0.1 <= waited < HASHING_WAIT_S + 2
    assert "busy" in str(busy.value) and busy.value.retry_after > 0
    # Not judged, so not counted: the right password works at once.
    assert users.sign_in("truong", GOOD, address="10.0.0.1")


def test_concurrent_sign_ins_never_run_more_argon2_than_max_hashing(users: Users) -> None:
    """Sixteen threads at once: each answer is a 401 or a 429, never more checks in flight
    than allowed (the semaphore's own count says how many are taken)."""
    users.add("truong", "head", GOOD, actor="test", now=0)
    limit = users.http.max_hashing
    in_flight: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            in_flight.append(limit - users._hashing._value)
            time.sleep(0.001)

    results: list[str] = []
    barrier = threading.Barrier(16)

    def guess(i: int) -> None:
        barrier.wait(10)
        try:
            users.sign_in(f"ten-{i}", "doan-sai-mat-khau", address=f"10.2.0.{i}")
        except Throttled:
            results.append("429")
        except AuthError:
            results.append("401")

    watcher = threading.Thread(target=watch)
    watcher.start()
    threads = [threading.Thread(target=guess, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    stop.set()
    watcher.join(10)
    assert len(results) == 16 and set(results) <= {"401", "429"}
    assert max(in_flight) <= limit


def _log_line(users: Users, username: str, address: str, path: Path) -> str:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger = logging.getLogger("hub.users")
    logger.addHandler(handler)
    try:
        with pytest.raises(AuthError):
            users.sign_in(username, "doan-sai-mat-khau", address=address)
    finally:
        logger.removeHandler(handler)
        handler.close()
    return path.read_text(encoding="utf-8")


def _failregex() -> re.Pattern[str]:
    """The filter's failregex with fail2ban's <HOST> as an address group."""
    parser = RawConfigParser()
    parser.read(FILTER, encoding="utf-8")
    regex = parser.get("Definition", "failregex").strip()
    return re.compile(regex.replace("<HOST>", r"(?P<host>[0-9A-Fa-f.:]+)"))


def test_a_failed_sign_in_is_one_warning_line_naming_the_address(
    users: Users, tmp_path: Path
) -> None:
    text = _log_line(users, "ke-gian", "203.0.113.5", tmp_path / "hub.log")
    lines = text.splitlines()
    assert len(lines) == 1
    assert (
        " WARNING hub.users: langso: sign-in failed for user 'ke-gian' from 203.0.113.5"
        in (lines[0])
    )
    found = _failregex().search(lines[0])
    assert found and found.group("host") == "203.0.113.5"


def test_a_user_name_cannot_forge_the_address_or_a_second_line(
    users: Users, tmp_path: Path
) -> None:
    forged = "x' from 198.51.100.1\n2026-01-01 00:00:00 WARNING hub.users: langso: sign-in failed"
    text = _log_line(users, forged, "203.0.113.5", tmp_path / "hub.log")
    assert len(text.splitlines()) == 1
    hosts = [m.group("host") for m in _failregex().finditer(text)]
    assert hosts == ["203.0.113.5"]


def test_fail2ban_regex_reads_the_hub_line_with_the_shipped_filter(
    users: Users, tmp_path: Path
) -> None:
    exe = shutil.which("fail2ban-regex")
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("fail2ban-regex is missing on CI: install the fail2ban package")
        pytest.skip("fail2ban is not installed (apt-get install fail2ban)")
    log = tmp_path / "hub.log"
    _log_line(users, "ke-gian", "203.0.113.5", log)
    _log_line(users, "ke-gian", "2001:db8::7", log)
    out = subprocess.run(
        [exe, "--print-all-matched", str(log), str(FILTER)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert re.search(r"Failregex: 2 total", out), out
    assert "203.0.113.5" in out and "2001:db8::7" in out
    jail = RawConfigParser()
    jail.read(JAIL, encoding="utf-8")
    assert jail.get("langso", "filter") == "langso" and jail.getboolean("langso", "enabled")


@pytest.mark.parametrize(
    ("peer", "header", "proxies", "expected"),
    [
        ("127.0.0.1", "10.0.0.5", [], "127.0.0.1"),  # no proxy configured: never believed
        ("192.0.2.1", "10.0.0.5", ["127.0.0.1"], "192.0.2.1"),  # not from our proxy
        ("127.0.0.1", "10.0.0.5", ["127.0.0.1"], "10.0.0.5"),
        ("127.0.0.1", "6.6.6.6, 10.0.0.5", ["127.0.0.1"], "10.0.0.5"),  # client wrote 6.6.6.6
        ("127.0.0.1", "10.0.0.5, 172.16.0.2", ["127.0.0.1", "172.16.0.0/12"], "10.0.0.5"),
        ("127.0.0.1", "not-an-address", ["127.0.0.1"], "127.0.0.1"),
        ("::1", "2001:db8::9", ["::1"], "2001:db8::9"),
        ("127.0.0.1", None, ["127.0.0.1"], "127.0.0.1"),
    ],
)
def test_forwarded_for_is_believed_only_from_configured_proxies(
    peer: str, header: str | None, proxies: list[str], expected: str
) -> None:
    assert forwarded_for(peer, header, proxies) == expected


def test_the_throttle_tables_forget_senders_whose_hits_left_the_window() -> None:
    clock = FakeClock()
    limiter = RateLimiter(5, 60.0, clock=clock.monotonic)
    for i in range(1000):
        limiter.add(f"10.0.{i // 250}.{i % 250}")
    assert len(limiter) == 1000
    clock.advance(61)
    limiter.add("10.9.9.9")
    assert len(limiter) == 1
    limiter.take_back("10.9.9.9", clock.monotonic())
    assert limiter.wait("10.9.9.9") == 0.0
