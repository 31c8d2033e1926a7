"""The hub under test: in this process (fake clock, real broker, real HTTP) or as a process."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from gpiozero.pins.mock import MockFactory

from audio.sinks import Sink
from hub.app import Hub, build_hub
from hub.clock import Clock, FakeClock
from hub.server import create_app
from hub.services.users import Users
from hub.settings import Settings, load_settings
from tests.broker import Broker, free_port, wait_port

PASSWORD = "correct-horse-battery"


def wait_for(cond: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    """Poll a condition (no fixed sleeps): return its first truthy value or fail."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def hub_settings(broker: Broker, data_dir: Path, **env: str) -> Settings:
    # Site and client id unique per data folder: two modules of one worker both using a
    # folder named "hub" must not share retained topics or the broker's session.
    tag = f"{os.getpid()}-{hashlib.sha1(str(data_dir).encode()).hexdigest()[:6]}"
    base = {
        "LANGSO_SITE": f"t-{data_dir.name.lower()[:20]}-{tag}",
        "LANGSO_DATA_DIR": str(data_dir),
        "LANGSO_MQTT__HOST": broker.host,
        "LANGSO_MQTT__PORT": str(broker.port),
        "LANGSO_MQTT__CLIENT_ID": f"hub-{data_dir.name}-{tag}",
        "LANGSO_MQTT__RECONNECT_MIN_S": "1",
        "LANGSO_MQTT__RECONNECT_MAX_S": "1",
        "LANGSO_HTTP__PORT": str(free_port()),
        # Each message committed as it comes (tests wait on it); a test of the grouped
        # commits and the device rows' flush sets its own.
        "LANGSO_INGEST__COMMIT_INTERVAL_S": "0",
        "LANGSO_INGEST__DEVICE_FLUSH_S": "0",
        "LANGSO_AUDIO__SINK": "null",
        **env,
    }
    return load_settings(None, env=base)


class InProcessHub:
    """build_hub + create_app served by uvicorn on 127.0.0.1 in a thread."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock | None = None,
        *,
        sink: Sink | None = None,
        synced: Callable[[], bool | None] = lambda: True,
    ) -> None:
        self.settings = settings
        self.clock = clock or FakeClock()
        self.pins = MockFactory()
        self.hub: Hub = build_hub(
            settings, clock=self.clock, pin_factory=self.pins, sink=sink, synced=synced
        )
        self.url = f"http://127.0.0.1:{settings.http.port}"
        self.tokens: dict[str, str] = {}
        self._clients: dict[str, httpx.Client] = {}
        config = uvicorn.Config(
            create_app(self.hub),
            host="127.0.0.1",
            port=settings.http.port,
            log_level="warning",
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, 10, "uvicorn to start")
        wait_for(lambda: self.hub.mqtt.connected, 10, "the hub to connect to the broker")

    def http(self, role: str | None = None) -> httpx.Client:
        """One client per role, kept open for the hub's lifetime and closed by stop()."""
        key = role or ""
        if key not in self._clients:
            headers = {"Authorization": f"Bearer {self.token(role)}"} if role else {}
            # Writes that render audio take seconds on a loaded machine.
            self._clients[key] = httpx.Client(base_url=self.url, headers=headers, timeout=30)
        return self._clients[key]

    def token(self, role: str) -> str:
        if role not in self.tokens:
            name = f"{role}1"
            if self.hub.store.one("SELECT 1 FROM users WHERE username=?", (name,)) is None:
                Users(self.hub.store).add(name, role, PASSWORD, actor="test", now=0)
            r = httpx.post(
                f"{self.url}/api/auth/token", data={"username": name, "password": PASSWORD}
            )
            r.raise_for_status()
            self.tokens[role] = r.json()["access_token"]
        return self.tokens[role]

    def run_until(
        self, cond: Callable[[], Any], *, step: float = 0.5, limit: float = 600, what: str = "it"
    ) -> Any:
        """Drive the fake clock forward in steps until ``cond`` holds (threads act between
        steps); fail after ``limit`` seconds of fake time."""
        clock = self.clock
        assert isinstance(clock, FakeClock)
        moved = 0.0
        while True:
            deadline = time.monotonic() + 0.05
            while time.monotonic() < deadline:
                value = cond()
                if value:
                    return value
                time.sleep(0.005)
            if moved >= limit:
                raise AssertionError(f"{what}: not within {limit} s of fake time")
            clock.advance(step)
            moved += step

    def tick(self) -> None:
        """Run the health timers now (in the writer thread, as the hub's timer would)."""
        self.hub.ingest.call_wait(self.hub.ingest.tick)

    def stop(self) -> None:
        for client in self._clients.values():
            client.close()
        self.server.should_exit = True
        self.thread.join(15)


class HubProcess:
    """`langso run` as a child process (for SIGKILL and restart tests)."""

    def __init__(
        self, broker: Broker, data_dir: Path, *, site: str = "test", http_port: int | None = None
    ) -> None:
        self.site = site
        self.http_port = http_port or free_port()
        self.env = {
            **os.environ,
            "LANGSO_SITE": site,
            "LANGSO_DATA_DIR": str(data_dir),
            "LANGSO_MQTT__HOST": broker.host,
            "LANGSO_MQTT__PORT": str(broker.port),
            "LANGSO_MQTT__CLIENT_ID": f"hubproc-{data_dir.name}",
            "LANGSO_MQTT__RECONNECT_MIN_S": "1",
            "LANGSO_MQTT__RECONNECT_MAX_S": "1",
            "LANGSO_HTTP__PORT": str(self.http_port),
            "LANGSO_INGEST__COMMIT_INTERVAL_S": "0",
            "LANGSO_INGEST__DEVICE_FLUSH_S": "0",
            "LANGSO_LOG_LEVEL": "WARNING",
            "LANGSO_AUDIO__SINK": "null",
            "LANGSO_ANNOUNCEMENTS__REQUIRE_CLOCK_SYNC": "false",
            "GPIOZERO_PIN_FACTORY": "mock",
        }
        self.env.pop("LANGSO_CONFIG", None)
        self.log = data_dir / "hub.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hub", "run"],
                env=self.env,
                cwd=Path(__file__).parents[1],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_port("127.0.0.1", self.http_port, timeout=20)
        wait_for(lambda: self.health().get("mqtt") == "connected", 10, "the hub's MQTT link")

    def health(self) -> dict[str, Any]:
        try:
            body: dict[str, Any] = httpx.get(f"{self.url}/api/health", timeout=5).json()
            return body
        except httpx.HTTPError:
            return {}

    def kill(self) -> None:
        if self.proc:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
