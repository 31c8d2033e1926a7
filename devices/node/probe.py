"""What the node agent reads of its own board: snapclient (running, connected to snapserver),
the wifi signal (``/proc/net/wireless``), the temperature (``/sys/class/thermal``).

The agent knows only its own side: snapclient is run by systemd, and "connected" means its
process holds an established TCP connection to snapserver's stream port (read from the
process's sockets in ``/proc/<pid>/fd`` and ``/proc/net/tcp``; where the agent may not read
another user's fds, any established connection of this host to that port counts: a node
runs one snapclient). Every reader returns None when the board does not have the thing.
Pure reads of files, no subprocess: cheap every few seconds on a Pi Zero.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

SnapState = Literal["connected", "disconnected", "stopped"]
#: /proc/net/tcp's state column for an established connection.
ESTABLISHED = "01"


@dataclass(frozen=True, slots=True)
class Probe:
    """Where the readers look (a test, or a board with other paths, changes them)."""

    proc: Path = Path("/proc")
    thermal: Path = Path("/sys/class/thermal/thermal_zone0/temp")
    #: snapclient's ``--hostID`` to look for (several on one host, as in tests); None: any.
    host_id: str | None = None
    #: snapserver's stream port (snapclient's ``--port``).
    stream_port: int = 1704

    def snapclient(self) -> SnapState:
        pid = self._snapclient_pid()
        if pid is None:
            return "stopped"
        inodes = self._socket_inodes(pid)
        for table in ("tcp", "tcp6"):
            for remote_port, state, inode in _tcp_rows(self.proc / str(pid) / "net" / table):
                if (
                    state == ESTABLISHED
                    and remote_port == self.stream_port
                    and (inodes is None or inode in inodes)
                ):
                    return "connected"
        return "disconnected"

    def signal_dbm(self) -> float | None:
        """The first wireless interface's signal level (dBm), or None without wifi."""
        try:
            lines = (self.proc / "net" / "wireless").read_text().splitlines()[2:]
        except OSError:
            return None
        for line in lines:
            fields = line.split()
            if len(fields) >= 4:
                try:
                    return float(fields[3].rstrip("."))
                except ValueError:
                    continue
        return None

    def temp_c(self) -> float | None:
        try:
            return round(int(self.thermal.read_text().strip()) / 1000.0, 1)
        except (OSError, ValueError):
            return None

    def uptime_s(self) -> float | None:
        try:
            return float((self.proc / "uptime").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _snapclient_pid(self) -> int | None:
        try:
            entries = os.listdir(self.proc)
        except OSError:
            return None
        for name in entries:
            if not name.isdigit():
                continue
            try:
                argv = (self.proc / name / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue  # gone meanwhile, or not ours to read
            if not argv or os.path.basename(argv[0].decode(errors="replace")) != "snapclient":
                continue
            if self.host_id is None or _arg(argv, b"--hostID") == self.host_id.encode():
                return int(name)
        return None

    def _socket_inodes(self, pid: int) -> set[str] | None:
        """The socket inodes the process holds; None when its fds cannot be read."""
        fd_dir = self.proc / str(pid) / "fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            return None
        inodes = set()
        for fd in fds:
            try:
                target = os.readlink(fd_dir / fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        return inodes


def _arg(argv: list[bytes], flag: bytes) -> bytes | None:
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + b"="):
            return a[len(flag) + 1 :]
    return None


def _tcp_rows(path: Path) -> list[tuple[int, str, str]]:
    """``(remote port, state, inode)`` of each row of a /proc/net/tcp table."""
    try:
        lines = path.read_text().splitlines()[1:]
    except OSError:
        return []
    rows = []
    for line in lines:
        f = line.split()
        if len(f) >= 10 and ":" in f[2]:
            rows.append((int(f[2].rsplit(":", 1)[1], 16), f[3], f[9]))
    return rows
