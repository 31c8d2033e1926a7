"""Supervision by systemd: ready, status, watchdog pings while the hub's loops make progress.

The unit is ``Type=notify`` with ``WatchdogSec``: the hub says ``READY=1`` once HTTP
listens and its threads run, ``STATUS=`` lines as things change, ``WATCHDOG=1`` every half
watchdog period, but only while every loop it watches has turned recently (a heartbeat:
the monotonic time of the loop's last turn). A wedged ingest writer, scheduler or
playout stops the pings, and systemd kills and restarts the hub; ``STOPPING=1`` when it
shuts down.

sd_notify(3) is one datagram on an AF_UNIX socket named by ``$NOTIFY_SOCKET``: a dozen
lines here rather than a dependency (the ``sdnotify`` package swallows every error and has
not changed since 2017). Off systemd (no ``$NOTIFY_SOCKET``) nothing is sent.

Threads: the ``watchdog`` thread pings; ``ready`` runs on the asyncio loop once uvicorn
listens; ``stop`` in the shutdown (the lifespan's).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)

#: A loop whose heartbeat is older than this is stuck. The longest quiet turn of a
#: healthy loop is the playout's tail (``gpio.tail_s``, at most 30 s).
STALE_S = 45.0

Heartbeat = Callable[[], float]


class SystemdNotify:
    """sd_notify(3): datagrams to the service manager's socket."""

    def __init__(self, address: str) -> None:
        # "@name" is a socket in the abstract namespace.
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> SystemdNotify | None:
        address = env.get("NOTIFY_SOCKET", "")
        return cls(address) if address.startswith(("/", "@")) else None

    def send(self, *lines: str) -> bool:
        """One message of ``KEY=value`` lines; False (logged) if the manager is gone."""
        try:
            self._sock.sendto("\n".join(lines).encode(), self.address)
        except OSError as e:
            log.warning("sd_notify %s failed: %s", lines[0], e)
            return False
        return True

    def close(self) -> None:
        self._sock.close()


def watchdog_interval(env: Mapping[str, str] = os.environ) -> float | None:
    """Seconds between pings (half of ``$WATCHDOG_USEC``, as sd_watchdog_enabled(3)
    advises), None when systemd asks for none (or asks another process)."""
    usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 2e6


class Probe:
    """The heartbeat of a loop that runs jobs handed to it (the ingest writer's
    ``call``): the time it last ran the probe's no-op. One probe is outstanding at a
    time, so a stuck loop's queue does not grow."""

    def __init__(
        self, post: Callable[[Callable[[], None]], None], monotonic: Heartbeat = time.monotonic
    ) -> None:
        self._post, self._monotonic = post, monotonic
        self._last = monotonic()
        self._out = False

    def _ran(self) -> None:
        self._last = self._monotonic()
        self._out = False

    def __call__(self) -> float:
        if not self._out:
            self._out = True
            self._post(self._ran)
        return self._last


class Watchdog:
    """Pings systemd's watchdog while every heartbeat is fresh; says which is stuck."""

    def __init__(
        self,
        notify: SystemdNotify,
        beats: Mapping[str, Heartbeat],
        *,
        interval_s: float | None,
        stale_s: float = STALE_S,
        monotonic: Heartbeat = time.monotonic,
    ) -> None:
        self.notify, self.beats = notify, dict(beats)
        self.interval_s, self.stale_s, self.monotonic = interval_s, stale_s, monotonic
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._status: str | None = None
        #: Pings sent (a figure for the tests and the log).
        self.pings = 0

    @classmethod
    def from_env(
        cls, beats: Mapping[str, Heartbeat], env: Mapping[str, str] = os.environ, **kw: Any
    ) -> Watchdog | None:
        """The hub's watchdog under systemd; None off it."""
        notify = SystemdNotify.from_env(env)
        if notify is None:
            return None
        return cls(notify, beats, interval_s=watchdog_interval(env), **kw)

    def stuck(self) -> dict[str, float]:
        """The loops whose last turn is older than ``stale_s``: name → seconds since."""
        now = self.monotonic()
        ages = {name: now - beat() for name, beat in self.beats.items()}
        return {name: age for name, age in ages.items() if age > self.stale_s}

    def turn(self) -> bool:
        """One ping if every loop makes progress (True), else a status naming the stuck."""
        stuck = self.stuck()
        if stuck:
            what = ", ".join(f"{name} ({age:.0f} s)" for name, age in sorted(stuck.items()))
            status = f"stuck: {what} without progress; watchdog pings stopped"
            if status.split(" (")[0] != (self._status or "").split(" (")[0]:
                log.error("%s: systemd will restart the hub", status)
            self._say(status)
            return False
        self.notify.send("WATCHDOG=1")
        self.pings += 1
        self._say("running: " + ", ".join(sorted(self.beats)) + " making progress")
        return True

    def ready(self, status: str) -> None:
        """``READY=1``: HTTP listens and the threads run."""
        self._status = status
        self.notify.send("READY=1", f"STATUS={status}")

    def start(self) -> None:
        if self.interval_s is None or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """``STOPPING=1`` first (systemd then waits for the exit), then the pings end."""
        self.notify.send("STOPPING=1", "STATUS=stopping: amplifier off, then exit")
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self.notify.close()

    def _run(self) -> None:
        assert self.interval_s is not None
        while not self._stop.wait(self.interval_s):
            try:
                self.turn()
            except Exception:  # a heartbeat that raises counts as no ping, never a dead thread
                log.exception("watchdog turn failed")

    def _say(self, status: str) -> None:
        # Only a change: a STATUS line per ping would fill the journal.
        if status != self._status:
            self._status = status
            self.notify.send(f"STATUS={status}")


def serve(config: Any, on_ready: Callable[[], None]) -> bool:
    """uvicorn's server, calling ``on_ready`` once it listens (READY=1 must not come
    before HTTP answers: the installer and the tests wait on it); False if it never
    started (the port taken, the lifespan failed)."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                on_ready()

    server = Server(config)
    server.run()
    return bool(server.started)
