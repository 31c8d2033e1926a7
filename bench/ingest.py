"""Ingest benchmark: MQTT (QoS 1) through a private Mosquitto into the hub's SQLite.

Run from the repository root: ``.venv/bin/python bench/ingest.py [--n 20000]``.
Progress goes to stderr; stdout gets ONE JSON line::

    {"bench": "ingest", "n", "devices", "raw_rate", "paho_rate", "hub_rate", "hub_vs_paho",
     "hub_vs_raw", "latency_p50_ms", "latency_p99_ms", "hub_peak_rss_mb", "exactly_once",
     "publisher_rate", ...extra detail keys}

Workload. ``n`` QoS 1 messages over ``devices`` devices (round robin), the native contract:
every fifth device is a sensor (``village/<site>/sensor/sensor-NNN/state``), the others are
access points (``village/<site>/ap/ap-NNN/state``). Payloads are JSON objects with the
contract's fields (clients, rx/tx bytes, signal, cpu… for APs; water level, battery… for
sensors) and a unique integer ``seq``, padded with trailing blanks (still valid JSON) to
200 bytes. Values stay inside the default health thresholds, so no alert is raised.

Publisher. To be sure the publisher outpaces every consumer, it is a minimal MQTT 3.1.1
client on a raw socket (``RawPublisher``), run in ``--publishers`` separate processes
(multiprocessing, spawn): every PUBLISH packet is encoded before the clock starts, then
the packets are written in chunks of 500 with at most 10,000 unacknowledged (packet ids
never reused while in flight); each process counts the broker's PUBACKs and is done when
it has all of them. Alone it does ~300k msgs/s here, several times what any consumer
takes. ``--publisher paho`` uses paho-mqtt clients (QoS 1, inflight unlimited, manual
loop) instead; they do ~20k msgs/s each, slower than the broker, so ``raw_rate`` would
then measure the publisher. ``publisher_rate`` is the slowest of the three phases' own
rates (messages / first publish → last PUBACK).

Each phase gets a fresh broker with a config derived from ``config/mosquitto-dev.conf``
(persistence in a temporary directory, autosave 60 s, its ``max_inflight_messages``;
``max_queued_messages`` = max(300,000, 2·n) so nothing is dropped while the consumer lags).
A retained *probe* message (``seq`` -1) is published before the consumer connects: the
consumer gets it the moment its subscription is active, which tells the bench it is
ready, and it is the first message of every count. Then the publishers start together.
A phase's rate is n / (consumer done − first publish), both read from CLOCK_MONOTONIC
(one clock for the whole machine).

(a) ``raw_rate``: ``mosquitto_sub -C n+1 -q 1 -t village/<site>/#`` writing to a file;
    done when it exits (polled every 2 ms); the file is then checked for n distinct seq.
(b) ``paho_rate``: a bare paho-mqtt 2.x counter in its own process (MQTT 3.1.1,
    CallbackAPIVersion.VERSION2, QoS 1, auto-ack, persistent session); it stores nothing
    and reads CLOCK_MONOTONIC when its count reaches n+1.
(c) ``hub_rate``: ``langso run --config config/hub.toml`` as a subprocess with its own
    data_dir and ports (``LANGSO_MQTT__PORT``, ``LANGSO_DATA_DIR``, ``LANGSO_HTTP__PORT``,
    ``LANGSO_SITE``, ``LANGSO_LOG_LEVEL=WARNING``, ``LANGSO_AUDIO__SINK=null``): its normal
    mode, persistent session and acknowledgement after commit. Done is measured in the
    database, not in the hub's counters: every 10 ms a read-only WAL connection counts
    the committed readings (``readings``: the rows of the last few slots, an index
    range, plus those before, counted once); the phase ends at the start of the first
    query that sees the count at the probe + n, i.e. once n readings are committed
    (polling /api/health instead would cost the hub's own loop a request each time).
    After (d), ``exactly_once`` is true when the readings with seq (a metric, packed by
    :mod:`hub.store.codec`) in [0, n) number exactly n with n distinct seq, and the hub
    reports no dead letters. The hub groups commits by time only at low rates
    (``ingest.commit_interval_s``): at these rates its batches fill first.
(d) latency: right after (c), on the same hub, a raw publisher paced at ``--latency-rate``
    (1,000/s) for ``--latency-seconds`` (10 s) sends seq from 10^9 up, noting
    CLOCK_MONOTONIC just before each packet is written to the socket. A poller thread
    reads the rows newer than the newest it saw (a row's ``(slot, ms)`` is its time; a
    margin of 100 ms) every 5 ms through its own read-only connection and notes, for each
    seq, the start time of the first query that returned it: the commit happened before
    that query took its snapshot. Latency = visible − published, so each figure is an
    upper bound, too high by at most one poll interval plus a query (≤ ~6 ms).
(e) ``hub_peak_rss_mb``: the hub process's ``VmHWM`` (kernel peak resident set) from
    /proc/<pid>/status after (c) and (d), in MiB.

Diagnostics on stderr: each phase's publisher rate, the bare counter's CPU per message,
the hub's CPU per message and per thread (by tid: CPython threads carry no kernel names)
and its VmHWM. ``--hub-cmd`` runs another hub build (e.g. a patched copy through
PYTHONPATH) and ``--hub-env KEY=VALUE`` adds settings, for A/B runs of proposed changes;
``--phases hub`` skips (a) and (b).

Every wait is bounded: an overall ``--timeout`` (600 s) and a stall limit (no progress
for 60 s) end the run with an error (exit 1) and no JSON. Every process the bench starts
(brokers, consumers, publishers, the hub) is stopped in ``finally``; SIGTERM to the
bench runs that cleanup too. Everything binds 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import queue
import shlex
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from types import FrameType
from typing import Any

from _common import (
    HOST,
    REPO,
    BenchError,
    Deadline,
    Mosquitto,
    RssSampler,
    free_port,
    log,
    percentile,
    proc_cpu_s,
    stop_process,
    thread_cpu_s,
    wait_port,
)

PAYLOAD_SIZE = 200
PROBE_SEQ = -1
LATENCY_SEQ0 = 1_000_000_000
STALL_S = 60.0
WINDOW = 10_000  # unacknowledged QoS 1 publishes per raw connection (packet ids < 65,536)
CHUNK = 500  # packets per socket write
SSID = "LangSo-Free-WiFi"


# -- workload --------------------------------------------------------------------------------
def device(j: int, devices: int) -> tuple[str, str]:
    """(kind, id) of device ``j``: every fifth is a sensor, the rest access points."""
    width = max(3, len(str(devices - 1)))
    return ("sensor", f"sensor-{j:0{width}d}") if j % 5 == 4 else ("ap", f"ap-{j:0{width}d}")


def message(seq: int, site: str, devices: int) -> tuple[str, bytes]:
    """Topic and ~200-byte payload of message ``seq`` (native contract, unique ``seq``)."""
    j = seq % devices
    kind, dev_id = device(j, devices)
    h = (seq * 2654435761 + j) & 0xFFFFFFFF  # cheap deterministic variation
    body: dict[str, object]
    if kind == "ap":
        body = {
            "clients": h % 40,
            "rx_bytes": 1_000_000 + h % 900_000_000,
            "tx_bytes": 2_000_000 + (h >> 3) % 900_000_000,
            "signal_dbm": -45 - h % 30,
            "noise_dbm": -95,
            "cpu_pct": round(3 + (h % 600) / 10, 1),
            "mem_pct": round(30 + (h % 300) / 10, 1),
            "uptime_s": 86_400 + seq,
            "ssid": SSID,
            "seq": seq,
        }
    else:
        body = {
            "water_level_cm": round(150 + (h % 600) / 10, 1),
            "battery_pct": 40 + h % 60,
            "rain_mm": round((h % 100) / 10, 1),
            "temp_c": round(24 + (h % 120) / 10, 1),
            "humidity_pct": 60 + h % 40,
            "pressure_hpa": round(1000 + (h % 200) / 10, 1),
            "seq": seq,
        }
    payload = json.dumps(body).encode()
    return f"village/{site}/{kind}/{dev_id}/state", payload.ljust(PAYLOAD_SIZE)


def probe(site: str) -> tuple[str, bytes]:
    return f"village/{site}/ap/ap-probe/state", json.dumps({"seq": PROBE_SEQ}).encode()


# -- a minimal MQTT 3.1.1 QoS 1 publisher ----------------------------------------------------
def _varlen(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def connect_packet(client_id: str) -> bytes:
    cid = client_id.encode()
    # protocol "MQTT" level 4, flags: clean session; keep-alive 0 (never pinged out)
    body = b"\x00\x04MQTT\x04\x02\x00\x00" + struct.pack("!H", len(cid)) + cid
    return b"\x10" + _varlen(len(body)) + body


def publish_packet(topic: str, payload: bytes, mid: int, *, retain: bool = False) -> bytes:
    t = topic.encode()
    body = struct.pack("!H", len(t)) + t + struct.pack("!H", mid) + payload
    return bytes([0x32 | (1 if retain else 0)]) + _varlen(len(body)) + body


class RawPublisher:
    """One MQTT 3.1.1 connection publishing pre-encoded QoS 1 packets; a reader thread
    counts PUBACKs. Packet ids are 1..65535 in turn; ``window`` bounds the unacknowledged."""

    def __init__(self, host: str, port: int, client_id: str, window: int = WINDOW) -> None:
        self.window = window
        self.sent = 0
        self.acked = 0
        self.error: str | None = None
        self._cv = threading.Condition()
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(connect_packet(client_id))
        connack = self._recv_exact(4)
        if connack[0] != 0x20 or connack[3] != 0:
            raise BenchError(f"broker refused the publisher: CONNACK {connack.hex()}")
        self.sock.settimeout(None)
        self._reader = threading.Thread(target=self._read, name="puback-reader", daemon=True)
        self._reader.start()

    def next_mid(self) -> int:
        return self.sent % 65_535 + 1

    def _recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise BenchError("broker closed the publisher's connection")
            buf += chunk
        return buf

    def _read(self) -> None:
        buf = b""
        try:
            while True:
                data = self.sock.recv(65_536)
                if not data:
                    raise BenchError("broker closed the connection")
                buf += data
                acks, pos = 0, 0
                while len(buf) - pos >= 2:
                    kind, length = buf[pos], buf[pos + 1]
                    if length & 0x80:
                        raise BenchError(f"unexpected long packet type {kind:#x}")
                    if len(buf) - pos < 2 + length:
                        break
                    if kind == 0x40:
                        acks += 1
                    elif kind != 0xD0:  # PINGRESP is harmless
                        raise BenchError(f"unexpected packet type {kind:#x}")
                    pos += 2 + length
                buf = buf[pos:]
                if acks:
                    with self._cv:
                        self.acked += acks
                        self._cv.notify_all()
        except (OSError, BenchError) as e:
            with self._cv:
                self.error = self.error or f"{type(e).__name__}: {e}"
                self._cv.notify_all()

    def _wait(self, ok: Callable[[], bool], deadline: Deadline, what: str) -> None:
        with self._cv:
            while not ok():
                if self.error and not ok():
                    raise BenchError(f"publisher: {self.error}")
                left = deadline.left()
                if left <= 0:
                    raise BenchError(f"timed out: {what}")
                self._cv.wait(min(left, 0.5))

    def send(self, packets: list[bytes], deadline: Deadline) -> None:
        """Write the packets in chunks, keeping at most ``window`` unacknowledged."""
        for i in range(0, len(packets), CHUNK):
            part = packets[i : i + CHUNK]
            limit = self.window - len(part)
            self._wait(
                lambda limit=limit: self.sent - self.acked <= limit, deadline, "publisher window"
            )
            self.sock.sendall(b"".join(part))
            self.sent += len(part)

    def send_one(self, packet: bytes) -> None:
        self.sock.sendall(packet)
        self.sent += 1

    def wait_acked(self, deadline: Deadline) -> None:
        self._wait(lambda: self.acked >= self.sent, deadline, "PUBACKs")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(b"\xe0\x00")  # DISCONNECT
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def encode_all(seqs: range, site: str, devices: int) -> list[bytes]:
    out = []
    for k, seq in enumerate(seqs):
        topic, payload = message(seq, site, devices)
        out.append(publish_packet(topic, payload, k % 65_535 + 1))
    return out


def publish_retained_probe(port: int, site: str, deadline: Deadline) -> None:
    pub = RawPublisher(HOST, port, "bench-probe")
    try:
        topic, payload = probe(site)
        pub.send_one(publish_packet(topic, payload, pub.next_mid(), retain=True))
        pub.wait_acked(deadline.sooner(10))
    finally:
        pub.close()


# -- publisher processes --------------------------------------------------------------------
@dataclass(frozen=True)
class PubJob:
    index: int
    count: int  # publishers in all: this one sends seq index, index+count, …
    port: int
    site: str
    n: int
    devices: int
    kind: str  # "raw" or "paho"
    timeout: float


def _publisher_main(job: PubJob, go: MpEvent, out: Any) -> None:
    """Child process: prepare, say ready, wait for ``go``, publish, report (t0, t1, n)."""
    try:
        seqs = range(job.index, job.n, job.count)
        deadline = Deadline(job.timeout)
        if job.kind == "raw":
            packets = encode_all(seqs, job.site, job.devices)
            pub = RawPublisher(HOST, job.port, f"bench-pub-{job.index}")
            out.put(("ready", job.index))
            if not go.wait(job.timeout):
                raise BenchError("never told to start")
            t0 = time.monotonic()
            pub.send(packets, deadline)
            pub.wait_acked(deadline)
            t1 = time.monotonic()
            pub.close()
        else:
            t0, t1 = _paho_publish(job, seqs, go, out, deadline)
        out.put(("done", job.index, t0, t1, len(seqs)))
    except BaseException as e:
        out.put(("error", job.index, f"{type(e).__name__}: {e}"))


def _paho_publish(
    job: PubJob, seqs: range, go: MpEvent, out: Any, deadline: Deadline
) -> tuple[float, float]:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    msgs = [message(s, job.site, job.devices) for s in seqs]
    acked = 0

    def on_publish(*_: Any) -> None:
        nonlocal acked
        acked += 1

    c = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{job.index}", protocol=paho.MQTTv311
    )
    c.max_inflight_messages_set(WINDOW)
    c.max_queued_messages_set(0)
    c.on_publish = on_publish
    c.connect(HOST, job.port, keepalive=60)
    c.loop(0.1)
    out.put(("ready", job.index))
    if not go.wait(job.timeout):
        raise BenchError("never told to start")
    t0 = time.monotonic()
    for i, (topic, payload) in enumerate(msgs):
        c.publish(topic, payload, qos=1)
        if i % 100 == 99:
            c.loop(0)
    while acked < len(msgs):
        deadline.check("paho publisher PUBACKs")
        c.loop(0.01)
    t1 = time.monotonic()
    c.disconnect()
    return t0, t1


class Publishers:
    """``count`` publisher processes (spawned): prepared and connected, then started together."""

    def __init__(self, args: argparse.Namespace, port: int, site: str, deadline: Deadline) -> None:
        self.ctx = mp.get_context("spawn")
        self.go = self.ctx.Event()
        self.out = self.ctx.Queue()
        self.count = args.publishers
        self.n = args.n
        self.procs = [
            self.ctx.Process(
                target=_publisher_main,
                args=(
                    PubJob(
                        i,
                        self.count,
                        port,
                        site,
                        args.n,
                        args.devices,
                        args.publisher,
                        max(1.0, deadline.left()),
                    ),
                    self.go,
                    self.out,
                ),
                name=f"publisher-{i}",
                daemon=True,
            )
            for i in range(self.count)
        ]
        self.results: dict[int, tuple[float, float, int]] = {}
        self.started = False

    def __enter__(self) -> Publishers:
        for p in self.procs:
            p.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            p.join(2 if self.started else 0)  # never let them publish after a failure
            if p.is_alive():
                p.terminate()
                p.join(5)
            if p.is_alive():
                p.kill()
                p.join(5)
        self.out.close()
        self.out.join_thread()

    def _get(self, deadline: Deadline, what: str) -> tuple[Any, ...]:
        while True:
            try:
                item: tuple[Any, ...] = self.out.get(timeout=min(0.5, max(0.01, deadline.left())))
            except queue.Empty:
                deadline.check(what)
                dead = [p.name for p in self.procs if p.exitcode not in (None, 0)]
                if dead:
                    raise BenchError(f"{', '.join(dead)} died") from None
                continue
            if item[0] == "error":
                raise BenchError(f"publisher {item[1]}: {item[2]}")
            return item

    def wait_ready(self, deadline: Deadline) -> None:
        ready = 0
        while ready < self.count:
            self._get(deadline, "publishers getting ready")
            ready += 1

    def start(self) -> None:
        self.started = True
        self.go.set()

    def poll_done(self) -> None:
        """Collect the finished publishers' reports without waiting."""
        while True:
            try:
                item = self.out.get_nowait()
            except queue.Empty:
                return
            if item[0] == "error":
                raise BenchError(f"publisher {item[1]}: {item[2]}")
            if item[0] == "done":
                self.results[item[1]] = (item[2], item[3], item[4])

    def wait_done(self, deadline: Deadline) -> None:
        self.poll_done()
        while len(self.results) < self.count:
            item = self._get(deadline, "publishers finishing")
            if item[0] == "done":
                self.results[item[1]] = (item[2], item[3], item[4])

    @property
    def first_publish(self) -> float:
        return min(r[0] for r in self.results.values())

    @property
    def rate(self) -> float:
        t0 = min(r[0] for r in self.results.values())
        t1 = max(r[1] for r in self.results.values())
        return sum(r[2] for r in self.results.values()) / (t1 - t0)


# -- the consumers ----------------------------------------------------------------------------
def _paho_counter_main(port: int, topic_filter: str, target: int, out: Any) -> None:
    """Child process: a bare paho counter (stores nothing); reports ready and done times."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    count = 0

    def on_connect(c: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        c.subscribe(topic_filter, qos=1)

    def on_message(c: paho.Client, _u: Any, _m: Any) -> None:
        nonlocal count
        count += 1
        if count == 1:
            out.put(("ready", time.monotonic()))
        if count == target:
            out.put(("done", time.monotonic(), count, time.process_time()))
            c.disconnect()

    try:
        c = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id="bench-paho-counter",
            protocol=paho.MQTTv311,
            clean_session=False,
        )
        c.on_connect = on_connect
        c.on_message = on_message
        c.connect(HOST, port, keepalive=60)
        c.loop_forever()
    except BaseException as e:
        out.put(("error", f"{type(e).__name__}: {e}"))


def _check_seqs(seqs: list[int], n: int) -> tuple[bool, str]:
    main = [s for s in seqs if 0 <= s < n]
    distinct = len(set(main))
    ok = len(main) == n and distinct == n
    return ok, f"{len(main)} messages, {distinct} distinct seq of {n}"


def phase_raw(args: argparse.Namespace, work: Path, deadline: Deadline) -> tuple[float, float]:
    """(a) mosquitto_sub -C n+1 -q 1: the broker's delivery rate."""
    site, n = args.site, args.n
    log(f"(a) raw: mosquitto_sub, {n} messages")
    with Mosquitto(work / "broker-raw", overrides=broker_overrides(n)) as broker:
        publish_retained_probe(broker.port, site, deadline)
        out_path = work / "mosquitto_sub.out"
        with Publishers(args, broker.port, site, deadline) as pubs, open(out_path, "wb") as out:
            pubs.wait_ready(deadline.sooner(120))
            sub = subprocess.Popen(
                [
                    "mosquitto_sub",
                    "-h",
                    HOST,
                    "-p",
                    str(broker.port),
                    "-q",
                    "1",
                    "-t",
                    f"village/{site}/#",
                    "-C",
                    str(n + 1),
                    "-i",
                    "bench-mosquitto-sub",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.PIPE,
            )
            try:
                wait(
                    lambda: out_path.stat().st_size > 0,
                    deadline.sooner(30),
                    "mosquitto_sub receiving the probe",
                    alive=[sub, broker.proc],
                )
                pubs.start()
                done = wait_progress(
                    lambda: sub.poll() is not None,
                    lambda: out_path.stat().st_size,
                    deadline,
                    "mosquitto_sub receiving every message",
                    alive=[broker.proc],
                    interval=0.002,
                )
                if sub.returncode != 0:
                    err = sub.stderr.read().decode(errors="replace") if sub.stderr else ""
                    raise BenchError(f"mosquitto_sub exited {sub.returncode}: {err.strip()}")
                pubs.wait_done(deadline)
            finally:
                stop_process(sub, 5)
    rate = n / (done - pubs.first_publish)
    seqs = [int(json.loads(line)["seq"]) for line in out_path.read_bytes().splitlines() if line]
    ok, detail = _check_seqs(seqs, n)
    log(f"(a) raw: {rate:,.0f} msgs/s ({detail}); publisher {pubs.rate:,.0f} msgs/s")
    if not ok:
        raise BenchError(f"mosquitto_sub did not get every message once: {detail}")
    return rate, pubs.rate


def phase_paho(args: argparse.Namespace, work: Path, deadline: Deadline) -> tuple[float, float]:
    """(b) a bare paho-mqtt counter: the client library's ceiling."""
    site, n = args.site, args.n
    log(f"(b) paho: bare paho-mqtt counter, {n} messages")
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    with Mosquitto(work / "broker-paho", overrides=broker_overrides(n)) as broker:
        publish_retained_probe(broker.port, site, deadline)
        counter = ctx.Process(
            target=_paho_counter_main,
            name="paho-counter",
            daemon=True,
            args=(broker.port, f"village/{site}/#", n + 1, out),
        )
        with Publishers(args, broker.port, site, deadline) as pubs:
            counter.start()
            try:
                pubs.wait_ready(deadline.sooner(120))
                _expect(out, "ready", deadline.sooner(30), counter)
                pubs.start()
                _, done, _, counter_cpu = _expect(out, "done", deadline, counter)
                pubs.wait_done(deadline)
            finally:
                counter.join(5)
                if counter.is_alive():
                    counter.kill()
                    counter.join(5)
                out.close()
                out.join_thread()
    rate = n / (done - pubs.first_publish)
    log(
        f"(b) paho: {rate:,.0f} msgs/s; publisher {pubs.rate:,.0f} msgs/s; counter CPU "
        f"{counter_cpu:.1f} s ({counter_cpu / n * 1e6:.0f} µs/msg, start-up included)"
    )
    return rate, pubs.rate


def _expect(out: Any, what: str, deadline: Deadline, proc: Any) -> tuple[Any, ...]:
    while True:
        try:
            item: tuple[Any, ...] = out.get(timeout=0.5)
        except queue.Empty:
            if not proc.is_alive():
                raise BenchError(f"{proc.name} exited ({proc.exitcode})") from None
            deadline.check(f"{proc.name}: {what}")
            continue
        if item[0] == "error":
            raise BenchError(f"{proc.name}: {item[1]}")
        if item[0] == what:
            return item


# -- the hub ----------------------------------------------------------------------------------
def langso_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "langso"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-m", "hub"]


class HubProc:
    """``langso run`` in a subprocess with its own data_dir, ports and site."""

    def __init__(
        self, work: Path, broker_port: int, site: str, *, cmd: list[str], extra_env: list[str]
    ) -> None:
        self.work = work
        self.cmd = cmd
        self.data_dir = work / "data"
        self.http_port = free_port()
        self.db_path = self.data_dir / "hub.db"
        self.log_path = work / "hub.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LANGSO_")}
        env.update(
            LANGSO_MQTT__HOST=HOST,
            LANGSO_MQTT__PORT=str(broker_port),
            LANGSO_DATA_DIR=str(self.data_dir),
            LANGSO_HTTP__HOST=HOST,
            LANGSO_HTTP__PORT=str(self.http_port),
            LANGSO_SITE=site,
            LANGSO_LOG_LEVEL="WARNING",
            LANGSO_AUDIO__SINK="null",
            GPIOZERO_PIN_FACTORY="mock",
        )
        for item in extra_env:
            key, _, value = item.partition("=")
            env[key] = value
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, deadline: Deadline) -> None:
        cmd = [*self.cmd, "run", "--config", str(REPO / "config" / "hub.toml")]
        with open(self.log_path, "wb") as logf:
            self.proc = subprocess.Popen(
                cmd, env=self.env, cwd=self.work, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf
            )
        log(f"hub pid {self.proc.pid}: {' '.join(cmd)}")
        wait_port(
            HOST, self.http_port, timeout=max(1.0, min(60.0, deadline.left())), proc=self.proc
        )
        wait(
            lambda: self.health().get("mqtt") == "connected",
            deadline.sooner(30),
            "hub connected to the broker",
            alive=[self.proc],
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def health(self) -> dict[str, Any]:
        url = f"http://{HOST}:{self.http_port}/api/health"
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                body: dict[str, Any] = json.load(r)
        except urllib.error.HTTPError as e:  # 503 still carries the body
            body = json.load(e)
        except (OSError, ValueError):
            return {}
        return body

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        stop_process(self.proc, timeout=15)


@contextlib.contextmanager
def ro_db(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(
        f"file:{path}?mode=ro", uri=True, timeout=5, isolation_level=None, check_same_thread=False
    )
    try:
        yield conn
    finally:
        conn.close()


class Committed:
    """How many readings the hub has committed, counted as they come: the rows of the slots
    before ``floor`` once (a late commit to them would be a reading received more than
    ``BACK_SLOTS`` slots before its commit), those from ``floor`` at each poll (an index
    range: the last few slots)."""

    BACK_SLOTS = 6

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.floor = 0
        self.before = 0

    def __call__(self) -> int:
        row = self.conn.execute(
            "SELECT slot FROM readings WHERE keep=0 ORDER BY slot DESC LIMIT 1"
        ).fetchone()
        if row is not None and int(row[0]) - self.BACK_SLOTS > self.floor:
            upto = int(row[0]) - self.BACK_SLOTS
            self.before += self.conn.execute(
                "SELECT count(*) FROM readings WHERE keep=0 AND slot >= ? AND slot < ?",
                (self.floor, upto),
            ).fetchone()[0]
            self.floor = upto
        now = self.conn.execute(
            "SELECT count(*) FROM readings WHERE keep=0 AND slot >= ?", (self.floor,)
        ).fetchone()[0]
        return int(self.before + now)


def seq_code(conn: sqlite3.Connection) -> int | None:
    """The number ``codes`` gave the metric ``seq`` (None before the first reading)."""
    row = conn.execute("SELECT id FROM codes WHERE kind='m' AND name='seq'").fetchone()
    return None if row is None else int(row[0])


@dataclass
class HubResult:
    rate: float = 0.0
    publisher_rate: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    exactly_once: bool = False


def phase_hub(args: argparse.Namespace, work: Path, deadline: Deadline) -> HubResult:
    """(c) throughput into the database, (d) latency, (e) peak RSS, then exactly-once."""
    site, n = args.site, args.n
    res = HubResult()
    log(f"(c) hub: langso run, {n} messages")
    with Mosquitto(work / "broker-hub", overrides=broker_overrides(n)) as broker:
        publish_retained_probe(broker.port, site, deadline)
        hub = HubProc(work / "hub", broker.port, site, cmd=args.hub_cmd, extra_env=args.hub_env)
        hub.work.mkdir()
        sampler: RssSampler | None = None
        try:
            with Publishers(args, broker.port, site, deadline) as pubs:
                pubs.wait_ready(deadline.sooner(120))
                hub.start(deadline)
                sampler = RssSampler(hub.pid).start()
                alive = [hub.proc, broker.proc]
                with ro_db(hub.db_path) as db:
                    probe_topic = probe(site)[0]

                    def probe_stored() -> bool:
                        try:
                            row = db.execute(
                                "SELECT 1 FROM readings r JOIN codes t ON t.id = r.topic"
                                " WHERE t.kind='t' AND t.name=? LIMIT 1",
                                (probe_topic,),
                            ).fetchone()
                        except sqlite3.OperationalError:  # the hub still migrating
                            return False
                        return row is not None

                    wait(
                        probe_stored,
                        deadline.sooner(30),
                        "hub storing the probe",
                        alive=alive,
                    )
                    committed = Committed(db)
                    target = committed() + n
                    cpu0, threads0 = proc_cpu_s(hub.pid), thread_cpu_s(hub.pid)
                    pubs.start()
                    done = wait_progress(
                        lambda: committed() >= target,
                        committed,
                        deadline,
                        "hub committing every message",
                        alive=alive,
                        interval=0.01,
                    )
                    cpu = proc_cpu_s(hub.pid) - cpu0
                    threads = {
                        k: v - threads0.get(k, 0.0) for k, v in thread_cpu_s(hub.pid).items()
                    }
                    pubs.wait_done(deadline)
                    res.rate = n / (done - pubs.first_publish)
                    res.publisher_rate = pubs.rate
                    log(
                        f"(c) hub: {res.rate:,.0f} msgs/s; publisher {pubs.rate:,.0f} msgs/s; "
                        f"hub CPU {cpu:.1f} s ({cpu / (done - pubs.first_publish):.0%} of a core, "
                        f"{cpu / n * 1e6:.0f} µs/msg); VmHWM so far "
                        f"{sampler.hwm_kb() / 1024:.1f} MiB"
                    )
                    busy = sorted(threads.items(), key=lambda x: -x[1])
                    log(
                        "(c) hub CPU by thread: "
                        + ", ".join(f"{k} {v:.1f} s" for k, v in busy if v >= 0.05)
                    )
            res.latencies_ms = latency(args, broker.port, hub, deadline)
            res.peak_rss_mb = sampler.hwm_kb() / 1024
            log(
                f"(e) hub VmHWM {res.peak_rss_mb:.1f} MiB "
                f"(largest VmRSS sample {sampler.peak_rss_kb / 1024:.1f} MiB)"
            )
            res.exactly_once = exactly_once(hub, n)
        except BaseException:
            if hub.proc is not None:
                log(f"hub log tail:\n{hub.log_tail()}")
            log(f"broker log tail:\n{broker.log_tail()}")
            raise
        finally:
            if sampler is not None:
                sampler.stop()
            hub.stop()
    return res


def exactly_once(hub: HubProc, n: int) -> bool:
    from hub.store import codec

    with ro_db(hub.db_path) as db:
        code = seq_code(db)
        seqs = (
            []
            if code is None
            else [codec.find(v, code) for (v,) in db.execute("SELECT vals FROM readings")]
        )
        kept = [s for s in seqs if s is not None and 0 <= s < n]
        total, distinct = len(kept), len(set(kept))
        dead = db.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
    health = hub.health().get("ingest", {})
    ok = bool(total == n and distinct == n and dead == 0)
    log(
        f"exactly once: {ok} ({total} rows, {distinct} distinct seq of {n}, {dead} dead letters;"
        f" hub counters: {health})"
    )
    return ok


def latency(args: argparse.Namespace, port: int, hub: HubProc, deadline: Deadline) -> list[float]:
    """(d) paced publishes; a 5 ms poller notes when each seq is first visible in events."""
    rate, seconds = args.latency_rate, args.latency_seconds
    count = int(rate * seconds)
    log(f"(d) latency: {count} messages at {rate:g}/s into the hub")
    packets = encode_all(range(LATENCY_SEQ0, LATENCY_SEQ0 + count), args.site, args.devices)
    published = [0.0] * count
    visible: dict[int, float] = {}
    stop = threading.Event()
    poll_error: list[BaseException] = []

    from hub.store import codec
    from hub.store.readings import RANKS

    with ro_db(hub.db_path) as db:
        code = seq_code(db)
        if code is None:
            raise BenchError("no reading carried seq before the latency run")
        top = db.execute(
            "SELECT slot, max(ms) FROM readings WHERE keep=0"
            " AND slot = (SELECT max(slot) FROM readings WHERE keep=0)"
        ).fetchone()
        # A row's (slot, ms) is its time: each poll reads what is newer than the newest
        # seen, less a margin for a commit of readings received a little earlier.
        margin = 100 * RANKS

        def poll() -> None:
            slot, ms = int(top[0] or 0), int(top[1] or 0)
            try:
                while not stop.is_set():
                    t = time.monotonic()
                    for s_, m_, vals in db.execute(
                        "SELECT slot, ms, vals FROM readings WHERE keep=0 AND slot >= ?"
                        " AND (slot > ? OR ms > ?)",
                        (slot, slot, ms - margin),
                    ):
                        if (s_, m_) > (slot, ms):
                            slot, ms = s_, m_
                        seq = codec.find(vals, code)
                        if seq is not None and seq >= LATENCY_SEQ0:
                            visible.setdefault(int(seq) - LATENCY_SEQ0, t)
                    time.sleep(max(0.0, 0.005 - (time.monotonic() - t)))
            except BaseException as e:
                poll_error.append(e)

        poller = threading.Thread(target=poll, name="visibility-poller", daemon=True)
        poller.start()
        pub = RawPublisher(HOST, port, "bench-latency")
        try:
            t0 = time.monotonic() + 0.05
            for k, packet in enumerate(packets):
                due = t0 + k / rate
                now = time.monotonic()
                if due > now:
                    time.sleep(due - now)
                if k % 1000 == 0:
                    deadline.check("paced publishing")
                    if hub.proc is None or hub.proc.poll() is not None:
                        raise BenchError("the hub exited during the latency run")
                published[k] = time.monotonic()
                pub.send_one(packet)
            pub.wait_acked(deadline.sooner(30))
            wait(
                lambda: len(visible) >= count or bool(poll_error),
                deadline.sooner(60),
                "hub committing every paced message",
                alive=[hub.proc],
            )
        finally:
            stop.set()
            poller.join(2)
            pub.close()
    if poll_error:
        raise BenchError(f"visibility poller: {poll_error[0]!r}")
    return [(visible[k] - published[k]) * 1000 for k in range(count)]


# -- waiting, bounded -------------------------------------------------------------------------
def _check_alive(alive: list[Any]) -> None:
    for p in alive:
        if p is not None and p.poll() is not None:
            raise BenchError(f"{p.args!r} exited with {p.returncode}")


def wait(
    cond: Callable[[], bool],
    deadline: Deadline,
    what: str,
    *,
    alive: list[Any],
    interval: float = 0.02,
) -> float:
    """Poll ``cond`` until true; returns the monotonic time of the poll that saw it."""
    while True:
        t = time.monotonic()
        if cond():
            return t
        _check_alive(alive)
        deadline.check(what)
        time.sleep(interval)


def wait_progress(
    cond: Callable[[], bool],
    progress: Callable[[], int],
    deadline: Deadline,
    what: str,
    *,
    alive: list[Any],
    interval: float,
) -> float:
    """Like :func:`wait`, but also fails when ``progress()`` stays put for STALL_S."""
    last, since, next_check = progress(), time.monotonic(), time.monotonic() + 1.0
    while True:
        t = time.monotonic()
        if cond():
            return t
        if t >= next_check:
            next_check = t + 1.0
            _check_alive(alive)
            deadline.check(what)
            now = progress()
            if now != last:
                last, since = now, t
            elif t - since > STALL_S:
                raise BenchError(f"no progress for {STALL_S:g} s: {what} (at {now})")
        time.sleep(interval)


def broker_overrides(n: int) -> dict[str, str]:
    return {
        "max_queued_messages": str(max(300_000, 2 * n)),
        "max_queued_bytes": str(max(134_217_728, 2 * n * 512)),
    }


# -- main -------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--n", type=int, default=200_000, help="messages per phase")
    p.add_argument("--devices", type=int, default=500, help="devices the messages come from")
    p.add_argument("--publishers", type=int, default=2, help="publisher processes")
    p.add_argument(
        "--publisher",
        choices=["raw", "paho"],
        default="raw",
        help="raw: pre-encoded MQTT on a socket (fast); paho: paho-mqtt clients",
    )
    p.add_argument("--phases", default="raw,paho,hub", help="comma-separated subset to run")
    p.add_argument("--latency-rate", type=float, default=1000.0, help="paced msgs/s in (d)")
    p.add_argument("--latency-seconds", type=float, default=10.0, help="duration of (d)")
    p.add_argument("--site", default="thon-bench", help="village id in the topics")
    p.add_argument("--timeout", type=float, default=600.0, help="overall limit, seconds")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument(
        "--hub-cmd",
        help="command run instead of `langso` (A/B tests of a patched "
        "copy), e.g. 'env PYTHONPATH=/tmp/copy .venv/bin/python -m hub'",
    )
    p.add_argument(
        "--hub-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the hub, e.g. LANGSO_INGEST__BATCH_SIZE=1000",
    )
    args = p.parse_args(argv)
    if args.n < 1 or args.devices < 1 or args.publishers < 1:
        p.error("--n, --devices and --publishers must be positive")
    args.hub_cmd = shlex.split(args.hub_cmd) if args.hub_cmd else langso_cmd()
    if os.sep in args.hub_cmd[0]:  # the hub runs in its own directory: make it absolute
        args.hub_cmd[0] = os.path.abspath(args.hub_cmd[0])
    if any("=" not in e for e in args.hub_env):
        p.error("--hub-env takes KEY=VALUE")
    args.phase_set = {s.strip() for s in args.phases.split(",") if s.strip()}
    unknown = args.phase_set - {"raw", "paho", "hub"}
    if unknown:
        p.error(f"unknown phase(s): {', '.join(sorted(unknown))}")
    return args


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def run(args: argparse.Namespace) -> dict[str, Any]:
    deadline = Deadline(args.timeout)
    raw_rate = paho_rate = None
    pub_rates: dict[str, float] = {}
    hub = HubResult()
    work_dir = tempfile.mkdtemp(prefix="langso-bench-ingest-")
    work = Path(work_dir)
    log(f"working in {work}")
    try:
        if "raw" in args.phase_set:
            raw_rate, pub_rates["raw"] = phase_raw(args, work, deadline)
        if "paho" in args.phase_set:
            paho_rate, pub_rates["paho"] = phase_paho(args, work, deadline)
        if "hub" in args.phase_set:
            hub = phase_hub(args, work, deadline)
            pub_rates["hub"] = hub.publisher_rate
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    lat = hub.latencies_ms
    hub_rate = hub.rate or None
    return {
        "bench": "ingest",
        "n": args.n,
        "devices": args.devices,
        "raw_rate": round(raw_rate) if raw_rate else None,
        "paho_rate": round(paho_rate) if paho_rate else None,
        "hub_rate": round(hub_rate) if hub_rate else None,
        "hub_vs_paho": ratio(hub_rate, paho_rate),
        "hub_vs_raw": ratio(hub_rate, raw_rate),
        "latency_p50_ms": round(percentile(lat, 50), 1) if lat else None,
        "latency_p99_ms": round(percentile(lat, 99), 1) if lat else None,
        "hub_peak_rss_mb": round(hub.peak_rss_mb, 1) if hub_rate else None,
        "exactly_once": hub.exactly_once if hub_rate else None,
        "publisher_rate": round(min(pub_rates.values())) if pub_rates else None,
        "publisher_rates": {k: round(v) for k, v in pub_rates.items()},
        "publisher": f"{args.publisher} x{args.publishers}",
        "latency_max_ms": round(max(lat), 1) if lat else None,
        "latency_n": len(lat),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        result = run(args)
    except (BenchError, KeyboardInterrupt) as e:
        log(f"ingest bench failed: {e}")
        return 1
    except Exception:
        log(f"ingest bench failed:\n{traceback.format_exc()}")
        return 1
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
