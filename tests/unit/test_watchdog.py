"""systemd supervision (hub/watchdog.py) on a real AF_UNIX datagram socket as NOTIFY_SOCKET:
pings only while every heartbeat is fresh, a status naming the stuck loop, READY and STOPPING."""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hub.watchdog import Probe, SystemdNotify, Watchdog, watchdog_interval


class Manager:
    """The service manager's end: a bound datagram socket, read without blocking."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setblocking(False)

    def messages(self) -> list[str]:
        out = []
        while True:
            try:
                out.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return out


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[tuple[Manager, str]]:
    path = str(tmp_path / "notify")
    m = Manager(path)
    yield m, path
    m.sock.close()


class Beats:
    """Fake heartbeats on a fake monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.last = {"ingest writer": 1000.0, "scheduler": 1000.0, "playout": 1000.0}

    def source(self, name: str) -> float:
        return self.last[name]

    def all_turn(self) -> None:
        self.last = dict.fromkeys(self.last, self.now)


def test_pings_only_while_every_loop_makes_progress(manager: tuple[Manager, str]) -> None:
    m, path = manager
    b = Beats()
    notify = SystemdNotify.from_env({"NOTIFY_SOCKET": path})
    assert notify is not None
    beats: dict[str, Callable[[], float]] = {
        name: functools.partial(b.source, name) for name in b.last
    }
    wd = Watchdog(
        notify,
        beats,
        interval_s=1.0,
        stale_s=45,
        monotonic=lambda: b.now,
    )
    wd.ready("serving")
    assert m.messages() == ["READY=1\nSTATUS=serving"]
    b.now += 30
    assert wd.turn()
    assert m.messages() == [
        "WATCHDOG=1",
        "STATUS=running: ingest writer, playout, scheduler making progress",
    ]
    assert wd.turn()
    assert m.messages() == ["WATCHDOG=1"]  # a status only when it changes

    # The scheduler wedges: the others go on, no ping, and the status says which.
    b.now += 20
    b.last["ingest writer"] = b.last["playout"] = b.now
    assert not wd.turn()
    assert m.messages() == [
        "STATUS=stuck: scheduler (50 s) without progress; watchdog pings stopped"
    ]
    b.now += 10
    assert not wd.turn()
    assert not [x for x in m.messages() if x == "WATCHDOG=1"]
    # It comes back: pings again.
    b.all_turn()
    assert wd.turn()
    assert m.messages()[0] == "WATCHDOG=1"
    assert wd.pings == 3
    wd.stop()
    assert m.messages() == ["STOPPING=1\nSTATUS=stopping: amplifier off, then exit"]


def test_the_thread_pings_every_half_period(manager: tuple[Manager, str]) -> None:
    m, path = manager
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"}
    wd = Watchdog.from_env({"playout": lambda: float("inf")}, env)  # always fresh
    assert wd is not None and wd.interval_s == 0.05
    wd.start()
    try:
        m.sock.settimeout(2)  # a blocking read: each datagram as it arrives
        seen = [m.sock.recv(4096).decode() for _ in range(4)]
        assert seen.count("WATCHDOG=1") == 3, seen  # and one STATUS line
    finally:
        wd.stop()


def test_environment() -> None:
    assert SystemdNotify.from_env({}) is None
    assert SystemdNotify.from_env({"NOTIFY_SOCKET": "relative"}) is None
    abstract = SystemdNotify.from_env({"NOTIFY_SOCKET": "@langso-test"})
    assert abstract is not None and abstract.address == "\0langso-test"
    abstract.close()
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    # Meant for another process (systemd names the main PID).
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    mine = {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}
    assert watchdog_interval(mine) == 15.0
    # Off systemd: no watchdog at all.
    assert Watchdog.from_env({"playout": lambda: 0.0}, {}) is None


def test_a_probe_measures_the_loop_that_runs_it() -> None:
    now = [10.0]
    queue: list[object] = []
    probe = Probe(queue.append, lambda: now[0])
    now[0] = 20.0
    assert probe() == 10.0 and len(queue) == 1
    assert probe() == 10.0 and len(queue) == 1  # one outstanding at a time
    job = queue.pop()
    assert callable(job)
    job()  # the loop ran it
    assert probe() == 20.0 and len(queue) == 1
