"""Broadcast stage, snapserver's control: a small JSON-RPC client over its TCP control port
(1705), and the snapserver.conf the hub's stream needs.

One connection, kept open: requests (``Server.GetStatus``, ``Client.SetVolume``,
``Group.SetStream``...) wait for their answer at most ``timeout`` seconds; the server's
notifications (``Client.OnConnect``, ``Client.OnDisconnect``, ...) are handed to
``on_notify``. A lost connection is made again with a bounded back-off; a request made
while it is down fails at once with :class:`SnapcastError` (the playout never waits on a
dead snapserver).

Threads: ``snapcast-rpc`` owns the socket's reads (and reconnects); ``call`` may be used
from any thread (a lock orders the writes). ``on_notify`` runs in ``snapcast-rpc`` and must
only hand over: a request made from it would wait on the thread that reads its answer.
``close()`` stops and joins the thread: nothing is left running.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hub.broadcast.cluster_settings import ClusterSettings
from hub.errors import HubError

log = logging.getLogger(__name__)

#: Longest line snapserver may send (a village's Server.GetStatus is a few KB per client).
MAX_LINE = 4 * 1024 * 1024
#: Reconnect back-off: from the first to the longest wait.
RECONNECT_MIN_S, RECONNECT_MAX_S = 0.2, 5.0

Notify = Callable[[str, Mapping[str, Any]], None]


class SnapcastError(HubError, ConnectionError):
    """snapserver did not answer, refused a request, or is not running."""


@dataclass(frozen=True, slots=True)
class SnapClient:
    """One snapclient as snapserver knows it: its id is the client's ``--hostID``."""

    id: str
    connected: bool
    muted: bool
    volume: int
    group: str
    stream: str


def clients_of(status: Mapping[str, Any]) -> dict[str, SnapClient]:
    """Every client of a ``Server.GetStatus`` result, by id."""
    out: dict[str, SnapClient] = {}
    for g in status.get("server", {}).get("groups", []):
        for c in g.get("clients", []):
            vol = c.get("config", {}).get("volume", {})
            out[str(c["id"])] = SnapClient(
                str(c["id"]),
                bool(c.get("connected")),
                bool(vol.get("muted")),
                int(vol.get("percent", 100)),
                str(g.get("id", "")),
                str(g.get("stream_id", "")),
            )
    return out


class SnapcastControl:
    """snapserver's JSON-RPC over TCP, with reconnects; see the module's docstring."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float = 2.0,
        on_notify: Notify | None = None,
        on_connect: Callable[[], None] | None = None,
    ) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.on_notify = on_notify or (lambda method, params: None)
        #: Called in ``snapcast-rpc`` after each (re)connect: a hand-over, like on_notify.
        self.on_connect = on_connect or (lambda: None)
        self._ids = itertools.count(1)
        self._write_lock = threading.Lock()
        self._lock = threading.Lock()
        self._waiting: dict[int, tuple[threading.Event, list[Any]]] = {}
        self._sock: socket.socket | None = None
        self._closing = threading.Event()
        self._up = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(cls, s: ClusterSettings, **kw: Any) -> SnapcastControl:
        return cls(s.host, s.control_port, timeout=s.rpc_timeout_s, **kw)

    @property
    def connected(self) -> bool:
        return self._up.is_set()

    def start(self) -> None:
        self._closing.clear()
        self._thread = threading.Thread(target=self._run, name="snapcast-rpc", daemon=True)
        self._thread.start()

    def wait_connected(self, timeout: float) -> bool:
        return self._up.wait(timeout)

    def close(self) -> None:
        self._closing.set()
        self._drop()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    # -- any thread ------------------------------------------------------------------------
    def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """One request; its ``result``, or SnapcastError (down, refused, no answer in time)."""
        sock = self._sock
        if sock is None or not self._up.is_set():
            raise SnapcastError(f"snapserver's control port {self.host}:{self.port} is not up")
        rid = next(self._ids)
        slot: tuple[threading.Event, list[Any]] = (threading.Event(), [])
        with self._lock:
            self._waiting[rid] = slot
        req: dict[str, Any] = {"id": rid, "jsonrpc": "2.0", "method": method}
        if params is not None:
            req["params"] = dict(params)
        try:
            with self._write_lock:
                sock.sendall(json.dumps(req).encode() + b"\r\n")
            if not slot[0].wait(self.timeout):
                raise SnapcastError(f"snapserver did not answer {method} in {self.timeout:g} s")
        except OSError as e:
            raise SnapcastError(f"snapserver's control connection broke: {e}") from e
        finally:
            with self._lock:
                self._waiting.pop(rid, None)
        if not slot[1]:
            raise SnapcastError(f"snapserver's control connection closed during {method}")
        answer = slot[1][0]
        if "error" in answer:
            raise SnapcastError(f"snapserver refused {method}: {answer['error']}")
        return answer.get("result")

    def status(self) -> dict[str, SnapClient]:
        return clients_of(self.call("Server.GetStatus"))

    def set_volume(self, client: str, *, muted: bool, percent: int | None = None) -> None:
        volume: dict[str, Any] = {"muted": muted}
        if percent is not None:
            volume["percent"] = percent
        self.call("Client.SetVolume", {"id": client, "volume": volume})

    def set_stream(self, group: str, stream: str) -> None:
        self.call("Group.SetStream", {"id": group, "stream_id": stream})

    def set_name(self, client: str, name: str) -> None:
        self.call("Client.SetName", {"id": client, "name": name})

    # -- snapcast-rpc thread ---------------------------------------------------------------
    def _run(self) -> None:
        backoff = RECONNECT_MIN_S
        while not self._closing.is_set():
            try:
                sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            except OSError as e:
                log.debug("snapserver control %s:%s: %s", self.host, self.port, e)
                self._closing.wait(backoff)
                backoff = min(backoff * 2, RECONNECT_MAX_S)
                continue
            backoff = RECONNECT_MIN_S
            # Reads block without a timeout: close() shuts the socket down to end them.
            sock.settimeout(None)
            self._sock = sock
            self._up.set()
            log.info("snapserver control connected on %s:%s", self.host, self.port)
            try:
                self.on_connect()
                self._read(sock)
            except OSError as e:
                if not self._closing.is_set():
                    log.warning("snapserver control connection lost: %s", e)
            finally:
                self._drop()
            self._closing.wait(backoff)

    def _read(self, sock: socket.socket) -> None:
        buf = b""
        while not self._closing.is_set():
            data = sock.recv(65536)
            if not data:
                raise OSError("closed by snapserver")
            buf += data
            if len(buf) > MAX_LINE and b"\n" not in buf:
                raise OSError(f"a line longer than {MAX_LINE} bytes")
            *lines, buf = buf.split(b"\n")
            for line in lines:
                if line.strip():
                    self._dispatch(line)

    def _dispatch(self, line: bytes) -> None:
        try:
            msg = json.loads(line)
        except ValueError:
            log.warning("snapserver sent a line that is not JSON: %r", line[:120])
            return
        items = msg if isinstance(msg, list) else [msg]
        for m in items:
            if not isinstance(m, dict):
                continue
            if "id" in m and m["id"] is not None:
                with self._lock:
                    slot = self._waiting.get(m["id"])
                if slot is not None:
                    slot[1].append(m)
                    slot[0].set()
            elif "method" in m:
                try:
                    self.on_notify(str(m["method"]), m.get("params") or {})
                except Exception:
                    log.exception("handling snapserver's %s failed", m["method"])

    def _drop(self) -> None:
        self._up.clear()
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        # Whoever waits for an answer learns now that none will come.
        with self._lock:
            for event, _ in self._waiting.values():
                event.set()


def snapserver_conf(
    s: ClusterSettings, *, datadir: str, bind: str = "0.0.0.0", stream_port: int = 1704
) -> str:
    """The snapserver.conf the hub's stream needs (deploy/node/snapserver.conf is this with
    the defaults): the control port on the hub only, the stream port to the clusters."""
    return f"""# Written for the Làng Số hub: one stream, fed by the hub over TCP (see
# hub/broadcast/cluster_settings.py for why these values).
[server]
datadir = {datadir}

[http]
enabled = false

[tcp]
# JSON-RPC control: the hub only.
enabled = true
bind_to_address = {s.host}
port = {s.control_port}

[stream]
# The clusters' snapclients connect here.
bind_to_address = {bind}
port = {stream_port}
source = tcp://{s.host}:{s.source_port}?name={s.stream}&mode=server
sampleformat = {s.sample_format}
# Lossless, half of raw PCM on the wifi, next to no CPU on a Pi Zero.
codec = flac
chunk_ms = 20
# Speech on village wifi: rides out retransmission bursts, leaves room for a live
# broadcast's 1.5 s mouth-to-horn.
buffer = {s.buffer_ms}
# A muted cluster (not in the broadcast's zones) gets no audio at all: less wifi.
send_to_muted = false

[logging]
filter = *:notice
"""
