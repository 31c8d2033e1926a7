"""Benchmark: speaker clusters in step. A real snapserver and 8 real snapclients on this
machine (file player), the hub's Snapcast sink beside the local file sink, one broadcast with
a sharp onset (silence, then a tone). One JSON line on stdout:

- ``spread_ms``: the largest difference between two clients' first loud sample, measured
  from their output files (goal <= 5 ms). Each file is written in real time; the bench
  polls every file's size every millisecond before the broadcast and takes, per client, the
  latest-write envelope ``size/rate - t`` as the file's clock offset, so a sample's index
  gives the instant it was played. snapserver 0.26 reports no per-client sync error through
  its JSON-RPC (only each client's configured latency: all 0 here), so the files are the
  measure.
- ``cluster_first_sample_ms`` (p50 and max over clients) and ``local_first_sample_ms``: from
  ``sink.play()`` to the first sample, at the clients and at the local sink, in the same run
  (the clusters' figure is snapserver's buffer plus the network).
- ``snapserver_cpu_ms_per_client_s`` and ``hub_cpu_ms_per_client_s``: CPU per second of
  audio and per client, snapserver's process and this process with its ffmpeg.
- ``live_mouth_to_client_ms`` (p50, p99, n): a live broadcast through the hub's WebSocket
  (a hub built in this process with a private Mosquitto, the same messages as the page:
  16 kHz PCM, 40 ms a message, paced at real time) carrying a click train; each click's
  "mouth" instant is its first sample's capture (40 ms before its message is sent: the
  page's framing counts), its "client" instant where the first client's file plays it.
  What it leaves out: the phone's own capture latency, the wifi, the client's DAC.

The live part sets ``GPIOZERO_PIN_FACTORY=mock`` (the hub's relays on mock pins).

Run: ``python -m bench.clusters [--clients 8] [--buffer-ms 600]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import struct
import sys
import tempfile
import threading
import time
import wave
from pathlib import Path
from typing import Any

from audio.sinks import FileSink, SnapcastSink
from bench._common import (
    BenchError,
    Mosquitto,
    free_port,
    inprocess_settings,
    percentile,
    proc_cpu_s,
)
from hub.broadcast.clusters import Cluster, Clusters
from hub.events import AlertChange
from tests.live_client import FRAME, LivePhone, silence
from tests.live_client import RATE as PHONE_RATE
from tests.snapcast import LOUD, SnapClientProc, SnapServer

#: The click train of the live part: this many clicks, one every CLICK_EVERY_S.
CLICKS, CLICK_EVERY_S = 16, 0.6

RATE = 48000


class _Alerts:
    def raise_(self, rule: str, severity: str, message: str) -> AlertChange:
        raise RuntimeError(f"a client missed the bench's broadcast: {message}")

    def clear(self, raised: AlertChange) -> None:
        pass


def _wav(path: Path, silence_s: float, tone_s: float) -> None:
    rate = 22050
    frames = [0] * int(silence_s * rate)
    frames += [
        int(12000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(int(tone_s * rate))
    ]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(struct.pack(f"<{len(frames)}h", *frames))


def _offsets(clients: list[SnapClientProc], seconds: float) -> dict[str, float]:
    """Per client, the file's clock: position/rate - monotonic time at the latest writes."""
    best = {c.id: -math.inf for c in clients}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for c in clients:
            t = time.monotonic()
            pos = c.size() / 2 / RATE
            best[c.id] = max(best[c.id], pos - t)
        time.sleep(0.001)
    return best


def _first_loud_abs(c: SnapClientProc, start_byte: int) -> int | None:
    with open(c.out, "rb") as f:
        f.seek(start_byte)
        data = f.read()
    n = len(data) // 2
    for i, v in enumerate(struct.unpack(f"<{n}h", data[: n * 2])):
        if abs(v) > LOUD:
            return start_byte // 2 + i
    return None


def run(n_clients: int, buffer_ms: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-clusters-"))
    server = SnapServer(work / "srv", buffer_ms=buffer_ms)
    clients = [SnapClientProc(server, f"cum-{i}", work) for i in range(n_clients)]
    s = server.settings
    clusters = Clusters(
        s,
        site="bench",
        roster=lambda: [Cluster(c.id, c.id, "all") for c in clients],
        publish=lambda t, p, r: None,
        alerts=_Alerts(),
    )
    try:
        clusters.start()
        deadline = time.monotonic() + 15
        while len(clusters.reach(["all"]).connected) < n_clients:
            if time.monotonic() > deadline:
                raise RuntimeError("the clients did not all connect to snapserver")
            time.sleep(0.05)
        clusters.open(["all"], "normal", for_s=60)
        wav = work / "onset.wav"
        silence_s, tone_s = 0.2, 3.0
        _wav(wav, silence_s, tone_s)
        offsets = _offsets(clients, 1.0)
        marks = {c.id: c.size() & ~1 for c in clients}
        sink = SnapcastSink(
            "127.0.0.1",
            s.source_port,
            buffer_ms=buffer_ms,
            local=FileSink(work / "local", speed=1.0),
        )
        cpu0 = proc_cpu_s(server.proc.pid) if server.proc else 0.0
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t_play = time.monotonic()
        pb = sink.play(wav, announcement_id="bench", zones=["all"])
        local_first = time.monotonic()  # the file sink writes its first chunk at once
        if not pb.wait(30):
            raise RuntimeError("the broadcast did not end")
        cpu1 = proc_cpu_s(server.proc.pid) if server.proc else 0.0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        clusters.audio_done()
        clusters.close()
        clusters.stop()  # the live part's hub routes the clients from now
        onsets: dict[str, float] = {}
        for c in clients:
            idx = _first_loud_abs(c, marks[c.id])
            if idx is None:
                raise RuntimeError(f"{c.id} played nothing")
            onsets[c.id] = idx / RATE - offsets[c.id] - silence_s
        first = sorted((v - t_play) * 1000 for v in onsets.values())
        live = _live_latency(work, server, clients[0])
        audio_s = silence_s + tone_s
        hub_cpu = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) + (
            c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime
        )
        return {
            "bench": "clusters",
            "clients": n_clients,
            "buffer_ms": buffer_ms,
            "spread_ms": round(first[-1] - first[0], 2),
            "spread_goal_ms": 5,
            "cluster_first_sample_ms": {
                "p50": round(percentile(first, 50), 1),
                "max": round(first[-1], 1),
            },
            "local_first_sample_ms": round((local_first - t_play) * 1000, 1),
            "snapserver_cpu_ms_per_client_s": round((cpu1 - cpu0) * 1000 / audio_s / n_clients, 3),
            "hub_cpu_ms_per_client_s": round(hub_cpu * 1000 / audio_s / n_clients, 3),
            "live_mouth_to_client_ms": live,
            "live_goal_ms": 1500,
            "cpus": os.cpu_count(),
        }
    finally:
        clusters.stop()
        for c in clients:
            c.stop()
        server.stop()


def _click_train() -> tuple[bytes, bytes]:
    """One click message (10 ms of a loud square wave, then silence) and the silence after it."""
    click = struct.pack("<160h", *([20000, -20000] * 80)) + silence(0.03)
    assert len(click) == 2 * FRAME
    return click, bytes(2 * (round(CLICK_EVERY_S * PHONE_RATE) - FRAME))  # whole messages


def _onsets(c: SnapClientProc, start_byte: int) -> list[int]:
    """Sample indices (in the file) where sound starts after at least 0.3 s of quiet."""
    with open(c.out, "rb") as f:
        f.seek(start_byte)
        data = f.read()
    n = len(data) // 2
    out, quiet_since = [], -RATE
    for i, v in enumerate(struct.unpack(f"<{n}h", data[: n * 2])):
        if abs(v) > LOUD:
            if i - quiet_since >= 0.3 * RATE:
                out.append(start_byte // 2 + i)
            quiet_since = i
    return out


def _live_latency(work: Path, server: SnapServer, client: SnapClientProc) -> dict[str, Any]:
    """Mouth to client of a live broadcast, through the hub's own WebSocket path."""
    import httpx
    import uvicorn

    os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")
    from hub.app import build_hub
    from hub.clock import SystemClock
    from hub.server import create_app
    from hub.services.users import Users

    broker = Mosquitto(work / "mqtt").start()
    port = free_port()
    settings = inprocess_settings(
        work,
        broker.port,
        LANGSO_HTTP__PORT=str(port),
        LANGSO_AUDIO__SINK="null",
        **server.hub_env(),
        LANGSO_CLUSTERS__EVERYWHERE=json.dumps([client.id]),
        LANGSO_LIVE__CHIMES="false",
    )
    hub = build_hub(settings, clock=SystemClock())
    if hub.live is None:
        raise BenchError("live broadcasts are off (live.enabled)")
    web = uvicorn.Server(
        uvicorn.Config(create_app(hub), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=web.run, daemon=True)
    thread.start()
    phone = None
    try:
        deadline = time.monotonic() + 20
        while not web.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the bench's hub did not start")
            time.sleep(0.05)
        Users(hub.store).add("bench-head", "head", "bench-password-1234", actor="bench", now=0)
        url = f"http://127.0.0.1:{port}"
        token = httpx.post(
            f"{url}/api/auth/token",
            data={"username": "bench-head", "password": "bench-password-1234"},
        ).json()["access_token"]
        phone = LivePhone(url)
        phone.start(["all"], token=token)
        phone.wait("state", "on_air", timeout=20)
        offsets = _offsets([client], 1.0)  # the file's clock, while the mic sends silence
        mark = client.size() & ~1
        click, gap = _click_train()
        phone.say((click + gap) * CLICKS)
        phone.say(silence(1.5))  # the last click reaches the client
        phone.stop()
        phone.wait("ended", timeout=30)
        mouths = [t - FRAME / PHONE_RATE for t, frame in phone.sent if frame == click]
        heard = [i / RATE - offsets[client.id] for i in _onsets(client, mark)]
        if len(heard) != len(mouths):
            raise RuntimeError(f"{len(mouths)} clicks sent, {len(heard)} found at {client.id}")
        lat = sorted((h - m) * 1000 for h, m in zip(heard, mouths, strict=True))
        return {
            "p50": round(percentile(lat, 50), 1),
            "p99": round(percentile(lat, 99), 1),
            "n": len(lat),
        }
    finally:
        if phone is not None:
            phone.close()
        web.should_exit = True
        thread.join(15)
        broker.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--buffer-ms", type=int, default=600)
    args = ap.parse_args()
    # Every wait in run() is bounded; its finally stops every process it started.
    print(json.dumps(run(args.clients, args.buffer_ms)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
