"""Sign-in throttling of the hub as a process (`langso run`, as deployed): per account from
many addresses behind a configured proxy, and X-Forwarded-For not believed from anyone
else; each failure in the log, with the address, in the line fail2ban reads."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.broker import Broker
from tests.hubtest import PASSWORD, HubProcess

pytestmark = [pytest.mark.broker, pytest.mark.slow]

ROOT = Path(__file__).parents[2]
FAILED = re.compile(r"langso: sign-in failed for user '([^']*)' from (\S+)$", re.MULTILINE)


def started_hub(broker: Broker, data_dir: Path, **env: str) -> HubProcess:
    hub = HubProcess(broker, data_dir, site=data_dir.name)
    hub.env.update(env)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "hub",
            "user",
            "add",
            "truong",
            "--role",
            "head",
            "--password-stdin",
        ],
        input=PASSWORD.encode(),
        env=hub.env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=60,
    )
    hub.start()
    return hub


def test_an_account_is_throttled_whatever_address_the_guesses_come_from(
    broker: Broker, tmp_path: Path
) -> None:
    """50 addresses (a botnet behind the village's reverse proxy), 5 guesses each: only
    http.account_attempts (20) are judged; each is logged with the forwarded address."""
    hub = started_hub(broker, tmp_path / "proxied", LANGSO_HTTP__TRUSTED_PROXIES='["127.0.0.1"]')
    statuses: list[int] = []
    try:
        with httpx.Client(base_url=hub.url, timeout=30) as http:
            for i in range(50):
                for guess in range(5):
                    r = http.post(
                        "/api/auth/token",
                        data={"username": "truong", "password": f"doan-sai-{i}-{guess}"},
                        headers={"X-Forwarded-For": f"198.51.100.{i + 1}"},
                    )
                    statuses.append(r.status_code)
                    if r.status_code == 429:
                        assert int(r.headers["Retry-After"]) > 0
            # The owner, from a new address, waits out the window like everyone else.
            owner = http.post(
                "/api/auth/token",
                data={"username": "truong", "password": PASSWORD},
                headers={"X-Forwarded-For": "203.0.113.77"},
            )
    finally:
        hub.stop()
    assert (statuses.count(401), statuses.count(429)) == (20, 230)
    assert owner.status_code == 429
    failures = FAILED.findall(hub.log.read_text())
    assert len(failures) == 20
    assert {name for name, _ in failures} == {"truong"}
    assert {address for _, address in failures} == {f"198.51.100.{i}" for i in range(1, 5)}


def test_forwarded_for_from_an_untrusted_peer_is_ignored(broker: Broker, tmp_path: Path) -> None:
    """No proxy configured: a client writing X-Forwarded-For itself stays at its own address
    (5 guesses for a name from one address, then 429), and the log names that address."""
    hub = started_hub(broker, tmp_path / "direct")
    statuses: list[int] = []
    try:
        with httpx.Client(base_url=hub.url, timeout=30) as http:
            for i in range(8):
                r = http.post(
                    "/api/auth/token",
                    data={"username": "truong", "password": f"doan-sai-{i}"},
                    headers={"X-Forwarded-For": f"10.66.0.{i + 1}"},
                )
                statuses.append(r.status_code)
    finally:
        hub.stop()
    assert statuses == [401] * 5 + [429] * 3
    failures = FAILED.findall(hub.log.read_text())
    assert {address for _, address in failures} == {"127.0.0.1"}
