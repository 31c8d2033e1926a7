"""Year benchmark: a village's year in the database, its size, and reads on it under load.

Run from the repository root: ``.venv/bin/python bench/year.py [--requests 50]``.
Progress goes to stderr; stdout gets ONE JSON line::

    {"bench": "year", "devices", "raw_days", "readings", "rollup_rows", "daily_rows", "db_mb",
     "tables_mb",
     "build_s", "devices_p99_ms", "year_series_p99_ms", "devices_p50_ms",
     "year_series_p50_ms", "series_points", "errors", "rss_idle_mb", "rss_after_mb",
     "rss_30s_mb", "rss_30s_minus_idle_mb", "backup_s", "backup_gz_mb", "backup_published",
     "backup_staged_in_ram", "backup_card_mb", "goals", "met", "ok"}

The database (:mod:`bench._yeardb`): 200 devices every 10 s as the simulator makes them
(:mod:`devices.simulation`: 160 access points with their ten metrics, 40 water gauges),
what retention keeps at its defaults: ``events_days`` (2) of raw readings as the writer
leaves them, ``hourly_days`` (90) of hourly rollups and a year of daily ones as the sweep
leaves them, ``rollup_days_by_metric`` (uptime, channel, noise: 30 days). One hour is
really written and folded, the rest copied from it by SQLite.
``db_mb`` is the file after a checkpoint; ``tables_mb`` what each table takes (dbstat).

The hub: ``python -m hub run`` as a process (:class:`bench.api.Hub`: its own data
directory and ports, a private Mosquitto, null sink, mock pins, no rules) on that
database, the real clock (the data end at the hour before the run).

The load: ``--clients`` (20) threads, each with its own ``httpx.Client`` (keep-alive),
each sending ``--requests`` (20) requests one after the other, ``--think`` (1 s, ±50 %,
each client at its own phase: people on phones and dashboards) between them: first
``GET /api/devices``, then a year's series ``GET /api/devices/{id}/metrics?name=...&since=
<a year ago>&points=500`` of a random device and one of its metrics kept a year. p50/p99
of each (request sent to last byte read); the goals are judged on this load. Then both
again without pauses (``saturated_*``: 20 requests always waiting on one Python process,
whose latency is 20 x its CPU per request: ~9 ms a year's series, ~3.5 ms the list). RSS
of the hub (``VmRSS``): idle (after the device list from every client, so the request
threads and their connections exist, and a quiet moment), right after the paced and
saturated loads, and 30 s later.

The backup: ``python -m hub backup --out DIR`` (the command the nightly unit runs: the
backup API copying every page in one step, ``integrity_check`` on the copy, gzip) while
the hub takes 200 devices every 10 s through the broker and 20 clients read the series
(paced): ``backup_s`` from its start to its exit.

Goals (issue 13): database <= 500 MB; backup under load <= 60 s; p99 <= 50 ms for the
device list and <= 150 ms for a year's series; RSS 30 s after the load within 10 MB of
idle; building under 5 min.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench._common import (
    BenchError,
    Deadline,
    Mosquitto,
    log,
    percentile,
    rss_mb,
    settle,
)
from bench._yeardb import (
    DAY,
    HOUR,
    Pending,
    db_mb,
    fold_hour,
    repeat_raw,
    repeat_rollups,
    table_mb,
    write_devices,
    write_readings,
)
from bench.api import PASSWORD, Hub, token

GOALS = {
    "db_mb": 500.0,
    "backup_s": 60.0,
    "devices_p99_ms": 50.0,
    "year_series_p99_ms": 150.0,
    "rss_30s_minus_idle_mb": 10.0,
    "build_s": 300.0,
}
PERIOD_S = 10.0


def build(data_dir: Path, now: float) -> dict[str, Any]:
    """The year's database in ``data_dir``; its figures."""
    from bench.wear import DEVICES, body, village
    from hub.services.users import Users
    from hub.settings import RetentionSettings
    from hub.store import Store

    started = time.monotonic()
    data_dir.mkdir(parents=True)
    store = Store(data_dir / "hub.db")
    Users(store).add("tech-bench", "technician", PASSWORD, actor="bench", now=now)
    conn = store.writer_connection()
    s = RetentionSettings()
    end = now - now % HOUR
    template = end - s.events_days * DAY
    village_ = village(template)
    last: dict[str, dict[str, float]] = {}

    def hour() -> Any:
        for k in range(int(HOUR / PERIOD_S) * DEVICES):
            topic, st = village_[k % DEVICES]
            ts = template + k * PERIOD_S / DEVICES
            b = body(topic, st, ts)
            vals = {m: v for m, v in b.items() if m != "ts" and isinstance(v, int | float)}
            device = topic.split("/")[3]
            last[device] = vals
            yield Pending(ts, device, topic, list(vals.items()))

    try:
        written = write_readings(conn, hour())
        log(f"one hour written: {written} readings ({time.monotonic() - started:.1f} s)")
        fold_hour(store, conn, template)
        repeat_raw(conn, template, int(s.events_days * 24) - 1)
        log(f"raw readings copied ({time.monotonic() - started:.1f} s)")
        rollup_rows = repeat_rollups(conn, template, end, s)
        log(f"rollups copied: {rollup_rows} hourly rows ({time.monotonic() - started:.1f} s)")
        kinds = {t.split("/")[3]: t.split("/")[2] for t, _ in village_}
        write_devices(conn, ((d, kinds[d], m) for d, m in last.items()), end - 365 * DAY, now)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        readings = int(conn.execute("SELECT count(*) FROM readings").fetchone()[0])
        daily_rows = int(conn.execute("SELECT count(*) FROM rollups_daily").fetchone()[0])
        tables = table_mb(conn)
    finally:
        conn.close()
        store.close()
    return {
        "devices": DEVICES,
        "raw_days": s.events_days,
        "readings": readings,
        "rollup_rows": rollup_rows,
        "daily_rows": daily_rows,
        "db_mb": db_mb(data_dir / "hub.db"),
        "tables_mb": tables,
        "build_s": round(time.monotonic() - started, 1),
        # A year's chart of every metric kept a year.
        "series": sorted(
            (d, m) for d, vals in last.items() for m in vals if m not in s.rollup_days_by_metric
        ),
    }


def load(
    url: str,
    headers: dict[str, str],
    paths: list[str],
    clients: int,
    requests: int,
    deadline: Deadline,
    think: float = 0.0,
) -> tuple[list[float], int, int]:
    """``clients`` threads, ``requests`` each, one after the other with ``think`` seconds
    (±50 %) between them, each client starting at its own phase: latencies (ms), errors,
    the most points a series answered."""
    lat: list[float] = []
    errors = [0]
    points = [0]
    lock = threading.Lock()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        mine: list[float] = []
        with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
            time.sleep(rng.uniform(0, think))
            for i in range(requests):
                if deadline.expired():
                    break
                if i:
                    time.sleep(rng.uniform(0.5, 1.5) * think)
                path = rng.choice(paths)
                t = time.monotonic()
                try:
                    r = c.get(path)
                    body = r.content
                except httpx.HTTPError:
                    with lock:
                        errors[0] += 1
                    continue
                mine.append((time.monotonic() - t) * 1000)
                if r.status_code != 200:
                    with lock:
                        errors[0] += 1
                elif "/metrics" in path:
                    with lock:
                        points[0] = max(points[0], len(json.loads(body)))
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.1, deadline.left()))
    if not lat:
        raise BenchError(f"no answer from {paths[0]}")
    return lat, errors[0], points[0]


def backup_under_load(
    hub: Hub, broker_port: int, headers: dict[str, str], paths: list[str], deadline: Deadline
) -> dict[str, Any]:
    """``langso backup`` (as the nightly unit runs it) against the hub while it takes the
    village's readings (200 devices every 10 s through the broker) and 20 clients read
    (paced): its time, its size, and the readings stored meanwhile."""
    import subprocess

    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    from bench.wear import DEVICES, body, village

    stop = threading.Event()
    sent = [0]

    def publish() -> None:
        pub = paho.Client(CallbackAPIVersion.VERSION2, client_id="year-pub")
        pub.connect("127.0.0.1", broker_port)
        pub.loop_start()
        devices = [(t.replace("/wear/", "/thon-bench/"), st) for t, st in village(time.time())]
        t0 = time.monotonic()
        try:
            while not stop.is_set() and not deadline.expired():
                topic, st = devices[sent[0] % DEVICES]
                due = t0 + sent[0] * PERIOD_S / DEVICES
                time.sleep(max(0.0, due - time.monotonic()))
                pub.publish(topic, json.dumps(body(topic, st, time.time())), qos=1)
                sent[0] += 1
        finally:
            pub.loop_stop()
            pub.disconnect()

    def read() -> None:
        while not stop.is_set() and not deadline.expired():
            load(hub.url, headers, paths, 20, 1, deadline, 1.0)

    out_dir = hub.work / "backups"
    workers = [threading.Thread(target=f, daemon=True) for f in (publish, read)]
    for w in workers:
        w.start()
    try:
        time.sleep(5.0)  # the load running before the backup starts
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "hub", "backup", "--out", str(out_dir)],
            env=hub.env,
            capture_output=True,
            text=True,
            timeout=max(1.0, deadline.left()),
            check=False,
        )
        took = time.monotonic() - started
    finally:
        stop.set()
        for w in workers:
            w.join(30)
    if done.returncode != 0:
        raise BenchError(f"langso backup failed: {done.stderr.strip()[-500:]}")
    log(f"backup: {done.stdout.strip()}")
    (gz,) = out_dir.glob("hub-*.db.gz")
    from hub.store import backup

    db = hub.work / "data" / "hub.db"
    in_ram = backup._staging(backup.RAM_STAGE, db, out_dir) != out_dir
    card = gz.stat().st_size + (0 if in_ram else db.stat().st_size)
    return {
        "backup_s": round(took, 1),
        "backup_gz_mb": round(gz.stat().st_size / 1e6, 1),
        "backup_published": sent[0],
        "backup_staged_in_ram": in_ram,
        # What a night's backup writes to the card: the compressed copy, and the
        # uncompressed one unless it was made in RAM.
        "backup_card_mb": round(card / 1e6, 1),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    deadline = Deadline(args.timeout)
    work = Path(tempfile.mkdtemp(prefix="langso-bench-year-"))
    try:
        now = time.time()
        log(f"building a year's database in {work}")
        built = build(work / "data", now)
        series = built.pop("series")
        log(f"built: {built}")
        with Mosquitto(work / "mosquitto") as broker:
            hub = Hub(work, broker.port)
            try:
                hub.start(deadline)
                headers = {"Authorization": f"Bearer {token(hub.url)}"}
                since = f"{time.time() - 365 * DAY:.0f}"
                paths = [
                    f"/api/devices/{d}/metrics?name={m}&since={since}&points=500" for d, m in series
                ]
                with httpx.Client(base_url=hub.url, headers=headers, timeout=60) as c:
                    c.get(paths[0]).raise_for_status()
                # Idle: once the request threads and their connections exist (the device
                # list from every client), as under any load.
                load(hub.url, headers, ["/api/devices"], args.clients, 3, deadline)
                settle(hub.pid, deadline, 2.0)
                idle = rss_mb(hub.pid)
                log(f"idle RSS {idle} MB; the load: {args.clients} clients")
                n, think = args.requests, args.think
                dev, dev_err, _ = load(
                    hub.url, headers, ["/api/devices"], args.clients, n, deadline, think
                )
                year, year_err, pts = load(
                    hub.url, headers, paths, args.clients, n, deadline, think
                )
                log(
                    f"paced: devices p99 {percentile(dev, 99):.0f} ms, year p99 "
                    f"{percentile(year, 99):.0f} ms"
                )
                sat_dev, _, _ = load(hub.url, headers, ["/api/devices"], args.clients, n, deadline)
                sat_year, _, _ = load(hub.url, headers, paths, args.clients, n, deadline)
                after = rss_mb(hub.pid)
                time.sleep(min(30.0, max(0.0, deadline.left() - 5)))
                later = rss_mb(hub.pid)
                log("backup under load")
                backed = backup_under_load(hub, broker.port, headers, paths, deadline)
            except BaseException:
                log(f"hub log tail:\n{hub.log_tail()}")
                raise
            finally:
                hub.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out: dict[str, Any] = {
        "bench": "year",
        **built,
        "clients": args.clients,
        "requests_per_client": args.requests,
        "think_s": args.think,
        "devices_p50_ms": round(percentile(dev, 50), 1),
        "devices_p99_ms": round(percentile(dev, 99), 1),
        "year_series_p50_ms": round(percentile(year, 50), 1),
        "year_series_p99_ms": round(percentile(year, 99), 1),
        "saturated_devices_p99_ms": round(percentile(sat_dev, 99), 1),
        "saturated_year_series_p99_ms": round(percentile(sat_year, 99), 1),
        "series_points": pts,
        "errors": dev_err + year_err,
        "rss_idle_mb": idle,
        "rss_after_mb": after,
        "rss_30s_mb": later,
        "rss_30s_minus_idle_mb": round(later - idle, 1),
        **backed,
        "goals": GOALS,
    }
    out["met"] = {k: out[k] <= v for k, v in GOALS.items()} | {"no_errors": out["errors"] == 0}
    out["ok"] = all(out["met"].values())
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--requests", type=int, default=20, help="requests per client and endpoint")
    p.add_argument("--think", type=float, default=1.0, help="seconds between a client's requests")
    p.add_argument("--timeout", type=float, default=900.0)
    args = p.parse_args()
    try:
        result = run(args)
    except Exception as e:  # one JSON line whatever happens: the runner reads stdout
        traceback.print_exc()
        result = {"bench": "year", "ok": False, "error": f"{type(e).__name__}: {e}"}
    print(json.dumps(result), flush=True)
    # A goal missed is a figure ("ok": false), as in bench/reads.py: `make bench` goes on.
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
