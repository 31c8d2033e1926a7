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
import time
import wave
from pathlib import Path
from typing import Any

from audio.sinks import FileSink, SnapcastSink
from bench._common import percentile, proc_cpu_s
from hub.broadcast.clusters import Cluster, Clusters
from hub.events import AlertChange
from tests.snapcast import LOUD, SnapClientProc, SnapServer

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
        onsets: dict[str, float] = {}
        for c in clients:
            idx = _first_loud_abs(c, marks[c.id])
            if idx is None:
                raise RuntimeError(f"{c.id} played nothing")
            onsets[c.id] = idx / RATE - offsets[c.id] - silence_s
        first = sorted((v - t_play) * 1000 for v in onsets.values())
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
            "cpus": os.cpu_count(),
        }
    finally:
        clusters.stop()
        for c in clients:
            c.stop()
        server.stop()


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
