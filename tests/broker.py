"""A real Mosquitto for tests: its own config, a free port on 127.0.0.1, its own process."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing answers on {host}:{port}") from None
            time.sleep(0.02)


class Broker:
    """One Mosquitto process. ``restart()`` keeps the port and the persistence file."""

    def __init__(self, workdir: Path, *, persistence: bool = True, extra: str = "") -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(exe).exists():
            raise RuntimeError("mosquitto is not installed: run `make test` (it installs it)")
        self.exe = exe
        self.host = "127.0.0.1"
        self.port = free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            f"persistence {'true' if persistence else 'false'}\n"
            f"persistence_location {workdir}/\n"
            "autosave_interval 1\n"
            "max_inflight_messages 5000\n"
            "max_queued_messages 300000\n"
            # Started as root (CI), Mosquitto would switch to the user `mosquitto`, who may
            # not write this test's folder: its persistence file would silently be lost.
            "user root\n"
            "log_dest stderr\n"
            "log_type error\n"
            "log_type warning\n" + extra
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        with open(self.workdir / "mosquitto.log", "ab") as log:
            self.proc = subprocess.Popen(
                [self.exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=log
            )
        wait_port(self.host, self.port)

    def stop(self) -> None:
        """Stop cleanly (SIGTERM): Mosquitto saves its persistence file."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def env(self) -> dict[str, str]:
        return {**os.environ, "LANGSO_MQTT__HOST": self.host, "LANGSO_MQTT__PORT": str(self.port)}
