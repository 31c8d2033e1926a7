"""API benchmark: the hub's reads under a steady 200 requests/s, with a village-sized store.

Run from the repository root: ``.venv/bin/python bench/api.py [--rate 200] [--seconds 20]``.
Progress goes to stderr; stdout gets ONE JSON line::

    {"bench": "api", "rate", "seconds", "devices", "announcements", "broadcasts",
     "endpoints": {"/api/devices": {"n", "errors", "p50_ms", "p99_ms", "max_ms",
                   "achieved_rate", "bytes", "hub_cpu_pct"}, "/api/announcements": {...},
                   "/": {...}},
     "page": {"total_bytes", "gzip_served", "gzip_would_be_bytes", "assets": {url: bytes}},
     "goals": {"p99_ms": 50, "errors": 0, "page_kb": 150}, "met": {...}, "ok"}

Store. A fresh data directory is migrated by :class:`hub.store.Store`, then filled by
plain SQL in one transaction (seconds, not the hours ingest would take): ``--devices``
devices (1,000; every fifth a sensor, the rest access points, each with a metrics JSON
of the native contract's fields and ``online``, seen just now, so none goes silent during
the run), ``--announcements`` announcements (10,000, created over the past year; 2 % still
scheduled in the coming month, the rest done; one in four daily; every one published
and rendered, their ``render_wav``/``render_web`` pointing at one shared small Ogg/Opus
file made by ffmpeg), one ``played`` broadcast per done announcement, and a technician.

Hub. ``python -m hub run --config config/hub.toml`` as a subprocess with its own data
directory and ports (``LANGSO_*`` overrides, null sink, mock pins, clock sync not
required) against a private Mosquitto (:class:`bench._common.Mosquitto`).

Load. A second process (multiprocessing, spawn) runs an open-loop generator: asyncio +
one ``httpx.AsyncClient`` (keep-alive pool of 64 connections, 10 s timeout), request ``i``
sent at ``t0 + i / rate`` whatever the answers before it, so a slow hub cannot slow the
load down (no coordinated omission). Latency = the answer's last byte − the instant the
request was due. At most 512 requests in flight: one due beyond that is an error
("overload"), and so is one still unanswered 15 s after the last was sent ("unfinished").
Each endpoint gets ``--seconds`` (20) of load in turn, after 2 s of warm-up, once the hub
is idle again (under 15 % of a core for a second: an overloaded endpoint leaves a backlog).
Errors are non-200 answers, timeouts and connection failures. 127.0.0.1 only.

Page weight. ``GET /`` and every asset it links (stylesheets, scripts, images, icon), as
the hub sends them to a client that accepts gzip: bytes on the wire, and what gzip would
make of them (the hub does not compress: create_app has no GZipMiddleware).

Every wait is bounded (``--timeout``, 600 s); every process started is stopped in finally.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import multiprocessing as mp
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench._common import (
    HOST,
    REPO,
    BenchError,
    Deadline,
    Mosquitto,
    free_port,
    log,
    percentile,
    proc_cpu_s,
    stop_process,
    wait_port,
)

PASSWORD = "bench-password-long-enough"
ENDPOINTS = ("/api/devices", "/api/announcements", "/")
GOALS = {"p99_ms": 50.0, "errors": 0, "page_kb": 150.0}
MAX_IN_FLIGHT = 512
#: Seconds the generator waits for the last answers once it has sent everything.
DRAIN_S = 15.0


# -- the store ------------------------------------------------------------------------------
def make_audio(path: Path) -> None:
    """Two seconds of tone, Opus in Ogg like the hub's web renders (the WAV beside it)."""
    wav = path.with_suffix(".wav")
    for out, codec in ((wav, ["-c:a", "pcm_s16le"]), (path, ["-c:a", "libopus", "-b:a", "32k"])):
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=f=440:d=2", "-ac", "1",
             *codec, str(out)],
            check=True,
            timeout=60,
        )  # fmt: skip


def fill_store(data_dir: Path, args: argparse.Namespace) -> dict[str, int]:
    from hub.services.users import Users
    from hub.store import Store

    data_dir.mkdir(parents=True)
    audio = data_dir / "shared.ogg"
    make_audio(audio)
    store = Store(data_dir / "hub.db")
    rng = random.Random(7)
    now = time.time()
    tz_offset = timedelta(hours=7)
    counts = {"devices": 0, "announcements": 0, "broadcasts": 0}
    try:
        Users(store).add("tech-bench", "technician", PASSWORD, actor="bench", now=now)
        with store.transaction() as conn:
            for i in range(args.devices):
                sensor = i % 5 == 0
                kind = "sensor" if sensor else "ap"
                metrics = (
                    {"water_level_cm": rng.uniform(80, 220), "battery_pct": rng.uniform(20, 100)}
                    if sensor
                    else {
                        "clients": rng.randint(0, 40),
                        "rx_bytes": rng.uniform(1e6, 1e10),
                        "tx_bytes": rng.uniform(1e6, 1e9),
                        "signal_dbm": rng.uniform(-80, -45),
                        "noise_dbm": -95.0,
                        "channel": rng.choice((1, 6, 11)),
                        "uptime_s": rng.uniform(1e3, 1e7),
                        "cpu_pct": rng.uniform(2, 60),
                        "mem_pct": rng.uniform(20, 70),
                        "temp_c": rng.uniform(35, 60),
                    }
                )
                conn.execute(
                    "INSERT INTO devices(id, kind, name, source, status, status_since, first_seen,"
                    " last_seen, metrics, info) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        f"{kind}-{i:04d}",
                        kind,
                        f"{'Cảm biến' if sensor else 'Wifi'} {i:04d}",
                        "native",
                        "online",
                        now - 3600,
                        now - 86_400 * 30,
                        now,
                        json.dumps(metrics),
                        json.dumps({"fw": "1.2.3"} if not sensor else {}),
                    ),
                )
                counts["devices"] += 1
            categories = ("notice", "news", "meeting", "emergency")
            for i in range(args.announcements):
                aid = secrets.token_hex(6)
                created = now - 365 * 86_400 * (1 - i / args.announcements)
                scheduled = i >= args.announcements * 0.98
                start = (now + rng.uniform(3600, 30 * 86_400)) if scheduled else created + 600
                start_local = datetime.fromtimestamp(start, UTC).replace(tzinfo=None) + tz_offset
                category = categories[i % 4] if i % 50 else "emergency"
                conn.execute(
                    "INSERT INTO announcements(id, title, text, category, priority, zones,"
                    " start_local, rrule, exdates, repeat, status, published, render_wav,"
                    " render_web, render_sha, duration_s, next_run, last_run, created_by,"
                    " approved_by, created_at, updated_at) VALUES"
                    " (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        aid,
                        f"Thông báo số {i}: lịch họp, tiêm phòng, thu gom rác",
                        "Kính mời bà con trong thôn chú ý lắng nghe thông báo sau đây. " * 3,
                        category,
                        "emergency" if category == "emergency" else "normal",
                        '["all"]',
                        start_local.replace(microsecond=0).isoformat(),
                        "FREQ=DAILY" if i % 4 == 1 and scheduled else None,
                        "[]",
                        1,
                        "scheduled" if scheduled else "done",
                        1,
                        str(audio.with_suffix(".wav")),
                        str(audio),
                        "0" * 64,
                        2.0,
                        start if scheduled else None,
                        None if scheduled else start,
                        "head-bench",
                        "head-bench",
                        created,
                        created,
                    ),
                )
                counts["announcements"] += 1
                if not scheduled:
                    conn.execute(
                        "INSERT INTO broadcasts(announcement_id, scheduled_for, started_at,"
                        " ended_at, status, zones, priority) VALUES (?,?,?,?,?,?,?)",
                        (aid, start, start, start + 2, "played", '["all"]', "normal"),
                    )
                    counts["broadcasts"] += 1
    finally:
        store.close()
    return counts


# -- the hub --------------------------------------------------------------------------------
class Hub:
    def __init__(self, work: Path, broker_port: int, *, rules: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log_path = work / "hub.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LANGSO_")}
        env.update(
            LANGSO_SITE="thon-bench",
            LANGSO_DATA_DIR=str(work / "data"),
            LANGSO_MQTT__HOST=HOST,
            LANGSO_MQTT__PORT=str(broker_port),
            LANGSO_HTTP__HOST=HOST,
            LANGSO_HTTP__PORT=str(self.port),
            LANGSO_LOG_LEVEL="WARNING",
            LANGSO_AUDIO__SINK="null",
            LANGSO_ANNOUNCEMENTS__REQUIRE_CLOCK_SYNC="false",
            GPIOZERO_PIN_FACTORY="mock",
        )
        if not rules:
            # The ready-made rules make the hub pre-render every emergency text they could
            # say, per matching device (200 sensors x 11 levels here): minutes of espeak-ng
            # and ffmpeg on both cores after a start, which is not what is measured here.
            empty = work / "no-rules.toml"
            empty.write_text("# no rules: see bench/api.py\n")
            env["LANGSO_RULES_FILE"] = str(empty)
        self.env = env
        self.work = work
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, deadline: Deadline) -> None:
        cmd = [sys.executable, "-m", "hub", "run", "--config", str(REPO / "config" / "hub.toml")]
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                cmd, env=self.env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )
        wait_port(HOST, self.port, timeout=max(1.0, min(60.0, deadline.left())), proc=self.proc)
        wait = deadline.sooner(30)
        while True:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                if httpx.get(f"{self.url}/api/health", timeout=5).json().get("mqtt") == "connected":
                    return
            if wait.expired() or self.proc.poll() is not None:
                raise BenchError(f"the hub did not come up:\n{self.log_tail()}")
            time.sleep(0.1)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        stop_process(self.proc, timeout=15)
        self.proc = None


# -- the load (second process) ---------------------------------------------------------------
async def _load(
    url: str, headers: dict[str, str], rate: float, seconds: float, warmup: float
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url="", headers=headers, timeout=10, limits=limits) as c:
        # Warm-up: the same pace, not counted (connections opened, caches filled).
        await _run(c, url, rate, warmup)
        return await _run(c, url, rate, seconds)


async def _run(c: httpx.AsyncClient, url: str, rate: float, seconds: float) -> dict[str, Any]:
    n = int(rate * seconds)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    sizes: list[int] = []
    in_flight = 0

    def error(kind: str) -> None:
        errors[kind] = errors.get(kind, 0) + 1

    async def one(due: float) -> None:
        nonlocal in_flight
        try:
            r = await c.get(url)
            body = r.content
            done = time.monotonic()
            if r.status_code != 200:
                error(f"http {r.status_code}")
            else:
                latencies.append((done - due) * 1000)
                sizes.append(len(body))
        except httpx.HTTPError as e:
            error(type(e).__name__)
        finally:
            in_flight -= 1

    tasks = []
    t0 = time.monotonic() + 0.05
    for i in range(n):
        due = t0 + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if in_flight >= MAX_IN_FLIGHT:
            error("overload")
            continue
        in_flight += 1
        tasks.append(asyncio.create_task(one(due)))
    # What is still unanswered a while after the last request was due is an error too:
    # an overloaded hub must not hold the run for minutes.
    _, pending = await asyncio.wait(tasks, timeout=DRAIN_S) if tasks else (set(), set())
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    if pending:
        errors["unfinished"] = len(pending)
    elapsed = time.monotonic() - t0
    return {
        "n": n,
        "latencies": latencies,
        "errors": errors,
        "bytes": round(sum(sizes) / len(sizes)) if sizes else 0,
        "elapsed": elapsed,
    }


def load_process(
    url: str,
    headers: dict[str, str],
    rate: float,
    seconds: float,
    warmup: float,
    out: Any,
) -> None:
    try:
        out.put(asyncio.run(_load(url, headers, rate, seconds, warmup)))
    except BaseException as e:  # reported to the parent, which fails the run
        out.put({"crash": f"{type(e).__name__}: {e}"})


def measure(
    hub: Hub, path: str, headers: dict[str, str], args: argparse.Namespace, deadline: Deadline
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(
        target=load_process,
        args=(hub.url + path, headers, args.rate, args.seconds, args.warmup, out),
        name=f"load {path}",
    )
    cpu0 = proc_cpu_s(hub.pid)
    wall0 = time.monotonic()
    proc.start()
    try:
        budget = deadline.sooner(args.seconds + args.warmup + 60)
        result = out.get(timeout=max(1.0, budget.left()))
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join(5)
    if "crash" in result:
        raise BenchError(f"load generator for {path}: {result['crash']}")
    # CPU the hub used over warm-up + measure, as a share of one core.
    cpu = (proc_cpu_s(hub.pid) - cpu0) / max(1e-9, time.monotonic() - wall0) * 100
    lat = result["latencies"]
    return {
        "n": result["n"],
        "errors": sum(result["errors"].values()),
        "error_kinds": result["errors"],
        "p50_ms": round(percentile(lat, 50), 1) if lat else None,
        "p99_ms": round(percentile(lat, 99), 1) if lat else None,
        "max_ms": round(max(lat), 1) if lat else None,
        "achieved_rate": round(len(lat) / result["elapsed"], 1),
        "bytes": result["bytes"],
        "hub_cpu_pct": round(cpu),
    }


def settle(hub: Hub, deadline: Deadline, limit_s: float = 120.0) -> None:
    """Wait (bounded) until the hub is idle: an overloaded endpoint leaves a backlog of
    requests the hub still works through after its load generator gave up on them, and
    the next endpoint must not pay for it."""
    wait = deadline.sooner(limit_s)
    while not wait.expired():
        before = proc_cpu_s(hub.pid)
        time.sleep(1.0)
        if proc_cpu_s(hub.pid) - before < 0.15:
            return
    log("the hub did not settle: the next figures include its backlog")


# -- the page's weight -----------------------------------------------------------------------
_ASSET = re.compile(
    r"""<(?:link[^>]*\brel="(?:stylesheet|icon)"[^>]*\bhref|script[^>]*\bsrc|img[^>]*\bsrc)="([^"]+)\"""",
)


def page_weight(url: str) -> dict[str, Any]:
    assets: dict[str, int] = {}
    plain = 0
    gzip_served = False
    with httpx.Client(base_url=url, timeout=10, headers={"Accept-Encoding": "gzip"}) as c:
        home = c.get("/")
        home.raise_for_status()
        links = ["/", *dict.fromkeys(_ASSET.findall(home.text))]
        would = 0
        for link in links:
            r = home if link == "/" else c.get(link)
            r.raise_for_status()
            assets[link] = r.num_bytes_downloaded
            gzip_served = gzip_served or r.headers.get("content-encoding") == "gzip"
            plain += len(r.content)
            would += len(gzip.compress(r.content, 6))
    return {
        "total_bytes": sum(assets.values()),
        "uncompressed_bytes": plain,
        "gzip_served": gzip_served,
        "gzip_would_be_bytes": would,
        "assets": assets,
    }


# -- the run ---------------------------------------------------------------------------------
def token(url: str) -> str:
    r = httpx.post(
        f"{url}/api/auth/token", data={"username": "tech-bench", "password": PASSWORD}, timeout=10
    )
    r.raise_for_status()
    return str(r.json()["access_token"])


def run(args: argparse.Namespace) -> dict[str, Any]:
    deadline = Deadline(args.timeout)
    work = Path(tempfile.mkdtemp(prefix="langso-bench-api-"))
    log(f"working in {work}")
    hub: Hub | None = None
    try:
        t = time.monotonic()
        counts = fill_store(work / "data", args)
        log(f"store filled in {time.monotonic() - t:.1f} s: {counts}")
        with Mosquitto(work / "broker") as broker:
            hub = Hub(work, broker.port, rules=args.rules)
            hub.start(deadline)
            log(f"hub pid {hub.pid} on {hub.url}")
            auth = {"Authorization": f"Bearer {token(hub.url)}"}
            results = {}
            for path in args.endpoints:
                settle(hub, deadline)
                log(f"{path}: {args.rate:g}/s for {args.seconds:g} s")
                results[path] = measure(
                    hub, path, auth if path == "/api/devices" else {}, args, deadline
                )
                log(f"{path}: {results[path]}")
            page = page_weight(hub.url)
            if hub.proc is not None and hub.proc.poll() is not None:
                raise BenchError(f"the hub died:\n{hub.log_tail()}")
    finally:
        if hub is not None:
            hub.stop()
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    met = {
        path: {
            "p99": r["p99_ms"] is not None and r["p99_ms"] <= GOALS["p99_ms"],
            "errors": r["errors"] <= GOALS["errors"],
        }
        for path, r in results.items()
    }
    met["page"] = {"kb": page["total_bytes"] / 1024 <= GOALS["page_kb"]}
    return {
        "bench": "api",
        # Other work on the machine skews every figure: the 1-minute load at the end.
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "rate": args.rate,
        "seconds": args.seconds,
        **counts,
        "endpoints": results,
        "page": page,
        "goals": GOALS,
        "met": met,
        "ok": all(all(v.values()) for v in met.values()),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--rate", type=float, default=200.0, help="requests per second")
    p.add_argument("--seconds", type=float, default=20.0, help="measured seconds per endpoint")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each")
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--announcements", type=int, default=10_000)
    p.add_argument("--timeout", type=float, default=600.0, help="overall limit, seconds")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument(
        "--rules", action="store_true", help="keep the ready-made rules (and their pre-render)"
    )
    p.add_argument("--endpoints", default=",".join(ENDPOINTS), help="comma-separated paths to load")
    args = p.parse_args(argv)
    args.endpoints = [e.strip() for e in args.endpoints.split(",") if e.strip()]
    if args.rate <= 0 or args.seconds <= 0 or args.devices < 1 or args.announcements < 1:
        p.error("rate, seconds, devices and announcements must be positive")
    return args


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        result = run(args)
    except (BenchError, KeyboardInterrupt, subprocess.SubprocessError, httpx.HTTPError) as e:
        log(f"api bench failed: {e}")
        return 1
    except Exception:
        log(f"api bench failed:\n{traceback.format_exc()}")
        return 1
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
