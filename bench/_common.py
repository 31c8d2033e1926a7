"""Shared helpers for the benchmarks in ``bench/`` (not a benchmark itself).

- ports: :func:`free_port`, :func:`wait_port` (everything binds 127.0.0.1);
- a private Mosquitto: :class:`Mosquitto` writes a config derived from
  ``config/mosquitto-dev.conf`` (listener, persistence directory and queue limits
  replaced) into its own temporary directory and runs it;
- processes: :func:`stop_process` (SIGTERM, then SIGKILL, always reaped);
- CPU: :func:`proc_cpu_s` (a process), :func:`thread_cpu_s` (per thread name);
- memory: :func:`proc_status_kb` reads ``VmHWM`` / ``VmRSS`` from ``/proc/<pid>/status``
  and :class:`RssSampler` samples ``VmRSS`` on a thread;
- statistics: :func:`percentile` (linear interpolation between closest ranks);
- time: :class:`Deadline` bounds every wait loop; :func:`log` writes progress to stderr.

Clocks: durations use ``time.monotonic()``; on Linux it is CLOCK_MONOTONIC, one clock
for the whole machine, so instants taken in different processes can be compared.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent
DEV_CONF = REPO / "config" / "mosquitto-dev.conf"


class BenchError(RuntimeError):
    """A benchmark could not produce a sound figure (stuck consumer, lost messages…)."""


def log(msg: str) -> None:
    """Human progress: stderr only (stdout carries the JSON result)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Deadline:
    """An absolute monotonic deadline: ``left()`` seconds, ``check(what)`` raises when past."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        return self.at - time.monotonic()

    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def check(self, what: str) -> None:
        if self.expired():
            raise BenchError(f"timed out: {what}")

    def sooner(self, seconds: float) -> Deadline:
        """A deadline ``seconds`` from now, but never later than this one."""
        d = Deadline(seconds)
        d.at = min(d.at, self.at)
        return d


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_port(
    host: str, port: int, timeout: float = 10.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until something accepts TCP connections on ``host:port``.

    With ``proc``, fail at once if that process exits meanwhile.
    """
    deadline = Deadline(timeout)
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise BenchError(
                    f"process {proc.args!r} exited ({proc.returncode}) "
                    f"before listening on {host}:{port}"
                ) from None
            if deadline.expired():
                raise BenchError(f"nothing answers on {host}:{port} after {timeout:g} s") from None
            time.sleep(0.02)


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> int | None:
    """SIGTERM, wait up to ``timeout``, then SIGKILL; always reap. Returns the exit code."""
    if proc is None:
        return None
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(5)
    return proc.returncode


def mosquitto_exe() -> str:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(exe).exists():
        raise BenchError("mosquitto is not installed (sudo apt-get install mosquitto)")
    return exe


def mosquitto_conf(
    *,
    port: int,
    workdir: Path,
    template: Path | None = DEV_CONF,
    overrides: Mapping[str, str] | None = None,
) -> str:
    """A Mosquitto config like ``template`` (the dev broker's), bound to 127.0.0.1:``port``,
    persisting into ``workdir``, logging to ``workdir/mosquitto.log``; keys in
    ``overrides`` replace the template's (e.g. ``max_queued_messages``)."""
    own = {
        "listener": f"{port} {HOST}",
        "allow_anonymous": "true",
        "persistence": "true",
        "persistence_location": f"{workdir}/",
        "log_dest": f"file {workdir}/mosquitto.log",
        **(overrides or {}),
    }
    kept: list[str] = []
    if template is not None and template.exists():
        for line in template.read_text(encoding="utf-8").splitlines():
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if stripped.split()[0] in own:
                continue
            kept.append(stripped)
    else:  # no template: the dev broker's essentials
        kept = [
            "autosave_interval 60",
            "max_inflight_messages 5000",
            "log_type error",
            "log_type warning",
        ]
    return "\n".join([*(f"{k} {v}" for k, v in own.items()), *kept]) + "\n"


class Mosquitto:
    """A private Mosquitto on a free port of 127.0.0.1, in its own directory."""

    def __init__(self, workdir: Path, *, overrides: Mapping[str, str] | None = None) -> None:
        self.host = HOST
        self.port = free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(mosquitto_conf(port=self.port, workdir=workdir, overrides=overrides))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Mosquitto:
        self.proc = subprocess.Popen(
            [mosquitto_exe(), "-c", str(self.conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.host, self.port, proc=self.proc)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        stop_process(self.proc, timeout=10.0)
        self.proc = None

    def log_tail(self, lines: int = 20) -> str:
        path = self.workdir / "mosquitto.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def proc_status_kb(pid: int, keys: Sequence[str] = ("VmHWM", "VmRSS")) -> dict[str, int]:
    """Memory fields of ``/proc/<pid>/status`` in kB ({} once the process is gone)."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                name, _, rest = line.partition(":")
                if name in keys:
                    out[name] = int(rest.split()[0])
    except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
        return {}
    return out


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds used so far by ``pid`` (0.0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    # after "pid (comm)": state is field 3, utime 14 and stime 15 (1-based, proc(5))
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle(pid: int, deadline: Deadline, seconds: float = 3.0) -> None:
    """Wait until ``pid`` used under 5 % of a core for ``seconds`` (bounded)."""
    while not deadline.expired():
        before = proc_cpu_s(pid)
        time.sleep(seconds)
        if proc_cpu_s(pid) - before < 0.05 * seconds:
            return
    raise BenchError("the hub did not go idle")


def rss_mb(pid: int) -> float:
    """``pid``'s resident memory now, MB."""
    return round(proc_status_kb(pid).get("VmRSS", 0) / 1024, 1)


def thread_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds per thread of ``pid``, keyed ``comm/tid`` (``/proc/<pid>/task/*/stat``).

    CPython before 3.14 does not name its threads for the kernel: they all carry the
    process's ``comm``, so the tid tells them apart (the main thread's tid is the pid)."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except (FileNotFoundError, ProcessLookupError):
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", encoding="ascii", errors="replace") as f:
                head, _, rest = f.read().rpartition(")")
        except (FileNotFoundError, ProcessLookupError):
            continue
        name = head.partition("(")[2]
        fields = rest.split()
        out[f"{name}/{tid}"] = (int(fields[11]) + int(fields[12])) / tick
    return out


class RssSampler:
    """Samples a process's ``VmRSS`` every ``interval`` seconds on a daemon thread.

    ``peak_rss_kb`` is the largest sample; ``hwm_kb()`` is the kernel's own peak
    (``VmHWM``), which no sampling can miss.
    """

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_rss_kb = 0
        self.last_hwm_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-{pid}", daemon=True)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        st = proc_status_kb(self.pid)
        self.peak_rss_kb = max(self.peak_rss_kb, st.get("VmRSS", 0))
        self.last_hwm_kb = max(self.last_hwm_kb, st.get("VmHWM", 0))

    def hwm_kb(self) -> int:
        self.sample()
        return self.last_hwm_kb

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2)


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100), linear between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} outside 0..100")
    xs = sorted(values)
    rank = (len(xs) - 1) * p / 100
    lo, hi = math.floor(rank), math.ceil(rank)
    return xs[lo] + (xs[hi] - xs[lo]) * (rank - lo)


if __name__ == "__main__":  # `make bench` runs every bench/*.py: nothing to measure here
    sys.exit(0)


def inprocess_settings(work: Path, port: int, site: str = "bench", **env: str) -> Any:
    """Settings for a hub built in the bench's own process: its broker, its folder, no
    quiet hours, no daily cap, no clock-sync gate (a bench runs at any hour, anywhere)."""
    from hub.settings import load_settings

    return load_settings(
        None,
        env={
            "LANGSO_SITE": site,
            "LANGSO_DATA_DIR": str(work / "hub"),
            "LANGSO_MQTT__PORT": str(port),
            "LANGSO_ANNOUNCEMENTS__QUIET_HOURS": "",
            "LANGSO_ANNOUNCEMENTS__DAILY_CAP": "100000",
            "LANGSO_ANNOUNCEMENTS__REQUIRE_CLOCK_SYNC": "false",
            "LANGSO_LOG_LEVEL": "WARNING",
            **env,
        },
    )
