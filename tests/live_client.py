"""A phone going live, without the browser: the same WebSocket and the same messages as the
page's ``static/live.js`` (16 kHz mono s16le, 40 ms a message, paced at real time), for the
integration tests and ``bench/clusters.py``.
"""

from __future__ import annotations

import json
import math
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

RATE = 16000
#: One message: 40 ms, as the page sends.
FRAME = int(RATE * 0.04)


def tone(seconds: float, freq: float = 440.0, level: int = 12000) -> bytes:
    n = int(seconds * RATE)
    return struct.pack(
        f"<{n}h", *(int(level * math.sin(2 * math.pi * freq * i / RATE)) for i in range(n))
    )


def silence(seconds: float) -> bytes:
    return bytes(2 * int(seconds * RATE))


class LivePhone:
    """One live connection; messages from the hub are collected by a reader thread."""

    def __init__(self, base_url: str, *, headers: dict[str, str] | None = None) -> None:
        ws_url = base_url.replace("http://", "ws://") + "/api/live/ws"
        # As a context manager (entered here, left in close()): what every version takes.
        self._cm = connect(ws_url, additional_headers=headers or {})
        self.ws: ClientConnection = self._cm.__enter__()
        self.messages: list[dict[str, Any]] = []
        self.closed_code: int | None = None
        self._said: list[bytes] = []
        #: (monotonic time it was sent, the frame) of every frame ``say`` spoke.
        self.sent: list[tuple[float, bytes]] = []
        self._mic_on = False
        self._mic: threading.Thread | None = None
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for raw in self.ws:
                with self._cond:
                    self.messages.append(json.loads(raw))
                    self._cond.notify_all()
        except ConnectionClosed:
            pass
        with self._cond:
            self.closed_code = self.ws.close_code if self.ws.close_code is not None else -1
            self._cond.notify_all()

    def start(self, zones: list[str], *, mic: bool = True, **fields: Any) -> None:
        """The start message, then (``mic``) the microphone's stream, as the page does."""
        self.ws.send(json.dumps({"type": "start", "zones": zones, **fields}))
        if mic:
            self.open_mic()

    def wait(self, kind: str, state: str | None = None, timeout: float = 15) -> dict[str, Any]:
        """The first message of ``kind`` (and ``state``), waited for (bounded)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.messages:
                    if m.get("type") == kind and (state is None or m.get("state") == state):
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or (self.closed_code is not None and kind != "closed"):
                    raise AssertionError(f"no {kind} {state or ''} message: {self.messages}")
                self._cond.wait(left)

    def wait_closed(self, timeout: float = 15) -> int:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.closed_code is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the socket did not close: {self.messages}")
                self._cond.wait(left)
            return self.closed_code

    def open_mic(self) -> None:
        """As the page: from now a 40 ms message every 40 ms (silence unless ``say``)."""
        self._mic_on = True
        self._mic = threading.Thread(target=self._run_mic, daemon=True)
        self._mic.start()

    def _run_mic(self) -> None:
        t0, i = time.monotonic(), 0
        quiet = silence(FRAME / RATE)
        while self._mic_on:
            with self._cond:
                said = bool(self._said)
                frame = self._said.pop(0) if said else quiet
            try:
                self.ws.send(frame)
            except ConnectionClosed:
                return
            with self._cond:
                if said:
                    self.sent.append((time.monotonic(), frame))
                self._cond.notify_all()
            i += 1
            due = t0 + i * FRAME / RATE - time.monotonic()
            if due > 0:
                time.sleep(due)  # the pace of a microphone, not a wait for a condition

    def say(self, pcm: bytes) -> None:
        """Speak ``pcm`` into the open microphone; returns once it is sent."""
        with self._cond:
            self._said.extend(frames(pcm))
            self._cond.wait_for(lambda: not self._said, 5 + len(pcm) / 2 / RATE)

    def hush(self) -> None:
        """The microphone stops sending (a phone gone quiet, still connected)."""
        self._mic_on = False
        if self._mic is not None:
            self._mic.join(2)

    def stop(self) -> None:
        self.ws.send(json.dumps({"type": "stop"}))

    def close(self) -> None:
        self.hush()
        self._cm.__exit__(None, None, None)
        self._reader.join(5)


def frames(pcm: bytes) -> Iterator[bytes]:
    step = 2 * FRAME
    for i in range(0, len(pcm), step):
        yield pcm[i : i + step]
