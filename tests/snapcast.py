"""A real snapserver and real snapclients for tests and the cluster benchmark: free ports on
127.0.0.1, snapclient's file player (each client's output read back), own processes.

The file player writes the client's output in real time, silence included, in the stream's
sample format (s16le, ``48000:16:1``): :meth:`SnapClientProc.mark` notes where the file is
now and :meth:`SnapClientProc.audio_since` reads what was played after the mark.
"""

from __future__ import annotations

import array
import shutil
import subprocess
from pathlib import Path

from hub.broadcast.cluster_settings import ClusterSettings
from hub.broadcast.snapcast import snapserver_conf
from tests.broker import free_port, wait_port

#: A sample above this (of 32767) is sound, not silence or dither.
LOUD = 1000


def have_snapcast() -> bool:
    return bool(shutil.which("snapserver") and shutil.which("snapclient"))


class SnapServer:
    """One snapserver with the hub's stream (its config made by ``snapserver_conf``)."""

    def __init__(self, workdir: Path, *, buffer_ms: int = 400, **settings: object) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "data").mkdir(exist_ok=True)
        self.workdir = workdir
        self.stream_port = free_port()
        self.settings = ClusterSettings(
            enabled=True,
            control_port=free_port(),
            source_port=free_port(),
            buffer_ms=buffer_ms,
            poll_s=1.0,
            **settings,
        )
        self.conf = workdir / "snapserver.conf"
        text = snapserver_conf(
            self.settings,
            datadir=str(workdir / "data"),
            bind="127.0.0.1",
            stream_port=self.stream_port,
        )
        self.conf.write_text(text)
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def hub_env(self) -> dict[str, str]:
        """The ``[clusters]`` settings of a hub fed into this server (environment form), the
        hub's own sound card off."""
        c = self.settings
        return {
            "LANGSO_CLUSTERS__ENABLED": "true",
            "LANGSO_CLUSTERS__CONTROL_PORT": str(c.control_port),
            "LANGSO_CLUSTERS__SOURCE_PORT": str(c.source_port),
            "LANGSO_CLUSTERS__BUFFER_MS": str(c.buffer_ms),
            "LANGSO_CLUSTERS__LOCAL_SINK": "false",
        }

    def start(self) -> None:
        with open(self.workdir / "snapserver.log", "ab") as log:
            self.proc = subprocess.Popen(
                ["snapserver", "-c", str(self.conf)], stdout=log, stderr=subprocess.STDOUT
            )
        wait_port("127.0.0.1", self.settings.control_port)
        wait_port("127.0.0.1", self.stream_port)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


class SnapClientProc:
    """One snapclient (``--hostID`` = the cluster's id) playing into a raw file."""

    def __init__(self, server: SnapServer, client_id: str, workdir: Path) -> None:
        self.server, self.id = server, client_id
        self.out = workdir / f"{client_id}.raw"
        self.log = workdir / f"{client_id}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._mark = 0
        self.start()

    def start(self) -> None:
        self.out.unlink(missing_ok=True)
        self._mark = 0
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    "snapclient",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.server.stream_port),
                    "--hostID",
                    self.id,
                    "--player",
                    f"file:filename={self.out}",
                    "--logsink",
                    "stderr",
                    "--logfilter",
                    "*:warning",
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def size(self) -> int:
        try:
            return self.out.stat().st_size
        except FileNotFoundError:
            return 0

    def mark(self) -> None:
        self._mark = self.size() & ~1

    def audio_since(self) -> array.array[int]:
        """The samples written after the last mark."""
        with open(self.out, "rb") as f:
            f.seek(self._mark)
            data = f.read()
        a = array.array("h")
        a.frombytes(data[: len(data) & ~1])
        return a

    def loud_samples(self) -> int:
        return sum(1 for v in self.audio_since() if abs(v) > LOUD)

    def first_loud(self) -> int | None:
        """Index (after the mark) of the first loud sample, or None."""
        for i, v in enumerate(self.audio_since()):
            if abs(v) > LOUD:
                return i
        return None
