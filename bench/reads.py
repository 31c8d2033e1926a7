"""Reads benchmark: the device list and metric series on a database like a year of a village.

Run from the repository root: ``.venv/bin/python bench/reads.py [--clients 20] [--seconds 10]``.
Progress goes to stderr; stdout gets ONE JSON line::

    {"bench": "reads", "build": {"devices", "rollup_devices", "raw_devices", "raw_days",
     "rollup_rows", "raw_rows", "db_mb", "build_s"}, "clients", "think_s", "seconds",
     "endpoints": {"devices": {"paced": {"n", "errors", "p50_ms", "p99_ms", "max_ms", "rps",
                                         "hub_cpu_ms_per_request"},
                               "saturated": {...}},
                   "year_series": {..., "points"}, "day_series": {..., "points"}},
     "rss_mb": {"cold", "idle", "peak", "after", "after_minus_idle", "after_another_round"},
     "goals": {...}, "met": {...}, "ok"}

The database (:mod:`bench._yeardb`). A fresh data directory is migrated by
:class:`hub.store.Store`; ``--devices`` devices (200; every fifth a sensor, the rest access
points, seen just now, two metrics each) send one hour of readings every 10 s through the
writer's own functions, the real retention sweep folds it, and SQLite copies it as
retention keeps it: hourly rollups over ``hourly_days`` (90) and daily ones over a year
(every device), and the raw readings over the last
``--raw-days`` (2, the default retention) for ``--raw-devices`` of them (40: a series
reads one device's rows, a lookup per 10-second slot, so its cost is the same in a table
five times larger); retention's watermark (``rollup_until``) at the last full hour.
Under a minute to build.

The hub. ``python -m hub run`` as a subprocess (:class:`bench.api.Hub`: its own data
directory and ports, null sink, mock pins, no rules) against a private Mosquitto; the
real clock, so the data end at the moment of the run.

The load. ``--clients`` (20) concurrent clients over real HTTP (asyncio + one
``httpx.AsyncClient`` per client, keep-alive), each sending its next request when the last
is answered, in two modes: ``paced``, after a pause of ``--think`` (1 s, ±50 %, each
client starting at a random phase: people on phones and dashboards polling), and
``saturated``, at once (no pause: the hub's throughput, where latency is 20 / rps whatever
the hub does). Each endpoint in turn for ``--seconds`` per mode, after a second of
warm-up: ``GET /api/devices``; a year's series
(``since`` = a year ago, the default 500 points, a device with raw readings, one of its
two metrics at random); a day's series (the default: the last 24 hours, 8,640 raw
readings downsampled). Latency: the answer's last byte minus the request's sending;
errors are non-200 answers and failures. The client runs on the same two cores as the
hub: ``hub_cpu_ms_per_request`` (the hub's CPU time over the requests answered) is the
figure that does not depend on what else the machine does.

Memory. The hub's ``VmRSS`` after a first read of each endpoint (cold), after a second of
the device list from the 20 clients (idle: the request threads and their connections
exist), sampled during the loads (peak), once the loads are over and the hub is quiet
for 3 s (after), and after another round of both series (after_another_round: what stays
does not grow with reads).

Goals (issue 13), judged on the paced load: p99 ≤ 50 ms for ``/api/devices`` and
≤ 150 ms for a year's series with 20 clients; RSS after the loads within 10 MB of idle.
Every wait is bounded (``--timeout``, 600 s); every process started is stopped in
``finally``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench._common import (
    BenchError,
    Deadline,
    Mosquitto,
    RssSampler,
    log,
    percentile,
    proc_cpu_s,
    rss_mb,
    settle,
)
from bench._yeardb import (
    Pending,
    db_mb,
    fold_hour,
    repeat_raw,
    repeat_rollups,
    write_devices,
    write_readings,
)
from bench.api import PASSWORD, Hub, token

HOUR = 3600.0
DAY = 86_400.0
METRICS = {"sensor": ("water_level_cm", "battery_pct"), "ap": ("clients", "signal_dbm")}
GOALS = {"devices_p99_ms": 50.0, "year_series_p99_ms": 150.0, "rss_after_minus_idle_mb": 10.0}


# -- the database ---------------------------------------------------------------------------
def fill_store(data_dir: Path, args: argparse.Namespace, now: float) -> dict[str, Any]:
    from hub.services.users import Users
    from hub.settings import RetentionSettings
    from hub.store import Store, immediate
    from hub.store import readings as raw

    started = time.monotonic()
    data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(data_dir / "hub.db")
    Users(store).add("tech-bench", "technician", PASSWORD, actor="bench", now=now)
    conn = store.writer_connection()
    rng = random.Random(13)
    devices = [(f"dev-{i:03d}", "sensor" if i % 5 == 0 else "ap") for i in range(args.devices)]
    end = now - now % HOUR
    first_hour = end - 365 * DAY
    template = end - args.raw_days * DAY

    def hour() -> Iterator[Pending]:
        for i in range(int(HOUR // 10)):
            for d, k in devices:
                topic = f"village/thon-bench/{k}/{d}/state"
                vals = [(m, round(rng.uniform(0, 100), 1)) for m in METRICS[k]]
                yield Pending(template + 10.0 * i, d, topic, vals)

    try:
        write_devices(
            conn,
            ((d, k, dict.fromkeys(METRICS[k], 1.0)) for d, k in devices),
            first_hour,
            now,
        )
        write_readings(conn, hour())
        fold_hour(store, conn, template)
        # Raw readings for the first raw_devices only (a series reads one device's rows:
        # its cost does not depend on the other devices').
        with immediate(conn):
            for d, _ in devices[args.raw_devices :]:
                code = raw.code_of(conn, "d", d)
                conn.execute("DELETE FROM readings WHERE device=?", (code,))
        repeat_raw(conn, template, int(args.raw_days * 24) - 1)
        rollup_rows = repeat_rollups(conn, template, end, RetentionSettings())
        raw_rows = int(conn.execute("SELECT count(*) FROM readings").fetchone()[0])
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
        store.close()
    return {
        "devices": args.devices,
        "rollup_devices": args.devices,
        "raw_devices": min(args.raw_devices, args.devices),
        "raw_days": args.raw_days,
        "rollup_rows": rollup_rows,
        "raw_rows": raw_rows,
        "db_mb": db_mb(data_dir / "hub.db"),
        "build_s": round(time.monotonic() - started, 1),
    }


# -- the load -------------------------------------------------------------------------------
async def _client(
    url: str,
    headers: dict[str, str],
    paths: list[str],
    until: float,
    out: list[float],
    think: float,
) -> tuple[int, int]:
    """One client until ``until``: a request, its answer, ``think`` seconds on average
    (0: none, the next request at once); latencies in ms into ``out``."""
    errors = points = 0
    rng = random.Random()
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as c:
        if think:  # people do not press at the same instant: each starts at its own phase
            await asyncio.sleep(rng.uniform(0, think))
        while time.monotonic() < until:
            path = rng.choice(paths)
            t = time.monotonic()
            try:
                r = await c.get(path)
                body = r.content
            except httpx.HTTPError:
                errors += 1
                continue
            out.append((time.monotonic() - t) * 1000)
            if r.status_code != 200:
                errors += 1
            elif path.startswith("/api/devices/"):
                points = max(points, len(json.loads(body)))
            if think:
                await asyncio.sleep(rng.uniform(0.5, 1.5) * think)
    return errors, points


async def _load(
    hub: Hub,
    headers: dict[str, str],
    paths: list[str],
    args: argparse.Namespace,
    think: float,
    seconds: float | None = None,
) -> dict[str, Any]:
    url = hub.url
    clients, seconds = args.clients, seconds or args.seconds
    warm: list[float] = []
    await asyncio.gather(
        *(_client(url, headers, paths, time.monotonic() + 1.0, warm, 0) for _ in range(clients))
    )
    lat: list[float] = []
    cpu = proc_cpu_s(hub.pid)
    started = time.monotonic()
    done = await asyncio.gather(
        *(_client(url, headers, paths, started + seconds, lat, think) for _ in range(clients))
    )
    took = time.monotonic() - started
    cpu = proc_cpu_s(hub.pid) - cpu
    if not lat:
        raise BenchError(f"no answer from {paths[0]}")
    return {
        "n": len(lat),
        "errors": sum(e for e, _ in done),
        "p50_ms": round(percentile(lat, 50), 1),
        "p99_ms": round(percentile(lat, 99), 1),
        "max_ms": round(max(lat), 1),
        "rps": round(len(lat) / took, 1),
        "hub_cpu_ms_per_request": round(cpu * 1000 / len(lat), 1),
        **({"points": max(p for _, p in done)} if paths[0].startswith("/api/devices/") else {}),
    }


# -- the run --------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict[str, Any]:
    deadline = Deadline(args.timeout)
    work = Path(tempfile.mkdtemp(prefix="langso-bench-reads-"))
    try:
        now = time.time()
        log(f"building the database in {work}")
        build = fill_store(work / "data", args, now)
        log(f"built: {build}")
        with Mosquitto(work / "mosquitto") as broker:
            hub = Hub(work, broker.port)
            try:
                hub.start(deadline)
                headers = {"Authorization": f"Bearer {token(hub.url)}"}
                return measure(hub, headers, build, args, deadline)
            finally:
                hub.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(
    hub: Hub,
    headers: dict[str, str],
    build: dict[str, Any],
    args: argparse.Namespace,
    deadline: Deadline,
) -> dict[str, Any]:
    raw = [(f"dev-{i:03d}", "sensor" if i % 5 == 0 else "ap") for i in range(build["raw_devices"])]
    year_ago = time.time() - 365 * DAY
    loads = {
        "devices": ["/api/devices"],
        "year_series": [
            f"/api/devices/{d}/metrics?name={m}&since={year_ago:.0f}"
            for d, k in raw
            for m in METRICS[k]
        ],
        "day_series": [f"/api/devices/{d}/metrics?name={m}" for d, k in raw for m in METRICS[k]],
    }
    # Cold: each kind of read once (the code paths exist). Idle: then a second of the
    # device list from 20 clients, so the request threads and their database connections
    # exist as under any load; what the series loads leave beyond that is what big reads
    # keep.
    with httpx.Client(base_url=hub.url, headers=headers, timeout=30) as c:
        for paths in loads.values():
            c.get(paths[0]).raise_for_status()
    settle(hub.pid, deadline)
    cold = rss_mb(hub.pid)
    asyncio.run(_load(hub, headers, loads["devices"], args, 0.0, seconds=1.0))
    settle(hub.pid, deadline)
    idle = rss_mb(hub.pid)
    sampler = RssSampler(hub.pid).start()
    endpoints: dict[str, Any] = {}
    try:
        for name, paths in loads.items():
            endpoints[name] = {}
            for mode, think in (("paced", args.think), ("saturated", 0.0)):
                deadline.check(name)
                log(f"{name}, {mode}: {args.clients} clients for {args.seconds} s")
                got = asyncio.run(_load(hub, headers, paths, args, think))
                endpoints[name][mode] = got
                log(f"{name}, {mode}: {got}")
    finally:
        sampler.stop()
    settle(hub.pid, deadline)
    after = rss_mb(hub.pid)
    # Once more, both series at full speed: memory that stays must not grow with reads.
    for name in ("year_series", "day_series"):
        asyncio.run(_load(hub, headers, loads[name], args, 0.0, seconds=args.seconds / 2))
    settle(hub.pid, deadline)
    rss = {
        "cold": cold,
        "idle": idle,
        "peak": round(sampler.peak_rss_kb / 1024, 1),
        "after": after,
        "after_minus_idle": round(after - idle, 1),
        "after_another_round": rss_mb(hub.pid),
    }
    paced = {name: e["paced"] for name, e in endpoints.items()}
    met = {
        "devices_p99_ms": paced["devices"]["p99_ms"] <= GOALS["devices_p99_ms"],
        "year_series_p99_ms": paced["year_series"]["p99_ms"] <= GOALS["year_series_p99_ms"],
        "rss_after_minus_idle_mb": rss["after_minus_idle"] <= GOALS["rss_after_minus_idle_mb"],
        "no_errors": all(m["errors"] == 0 for e in endpoints.values() for m in e.values()),
    }
    return {
        "bench": "reads",
        "build": build,
        "clients": args.clients,
        "think_s": args.think,
        "seconds": args.seconds,
        "endpoints": endpoints,
        "rss_mb": rss,
        "goals": GOALS,
        "met": met,
        "ok": all(met.values()),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", type=int, default=200)
    p.add_argument("--raw-devices", type=int, default=40)
    p.add_argument("--raw-days", type=float, default=2.0)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--think", type=float, default=1.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--timeout", type=float, default=600.0)
    args = p.parse_args()
    try:
        result = run(args)
    except Exception as e:  # one JSON line whatever happens: the runner reads stdout
        traceback.print_exc()
        result = {"bench": "reads", "ok": False, "error": f"{type(e).__name__}: {e}"}
    print(json.dumps(result), flush=True)
    # A goal missed is a figure ("ok": false), not a failure: `make bench` goes on to the
    # others; a bench that could not run stops it.
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
