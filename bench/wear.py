"""Wear benchmark: what the hub writes to the SD card at a village's load, beside a naive writer.

Run from the repository root: ``.venv/bin/python bench/wear.py [--seconds 300]``.
Progress goes to stderr; stdout gets ONE JSON line::

    {"bench": "wear", "readings", "hub_bytes_per_reading", "hub_gb_per_day",
     "naive_bytes_per_reading", "naive_gb_per_day", "ratio", "sweep_mb_per_hour",
     "raw_bytes_per_reading", "rollup_bytes_per_row", "rollup_rows_per_hour",
     "year_mb", "hub_start_mb", ...detail, "goals", "met", "ok"}

Load. 200 devices every 10 s (20 messages a second), the simulated village's own
payloads (:mod:`devices.simulation`: 160 access points with their ten metrics, ssid and
firmware; 40 water gauges), QoS 1, paced in real time for ``--seconds`` through a private
Mosquitto (the dev config: its in-flight window).

The hub: ``langso run`` as a process with its defaults, except ``ingest.device_flush_s``
= 60 (five times as many device-row writes as the default 300 s, so that a 2-minute run
holds some: the figure is an upper bound). What it writes is its ``/proc/<pid>/io``
``wchar`` (every byte handed to write(2): the WAL, its checkpoints, the device rows; the
sockets add ~4 bytes a PUBACK) over the steady window (from 80 s after its start), of
the threads that live on: the writer (every database write), paho's, HTTP's
(``hub_bytes_per_reading``). A thread that ended meanwhile is the emergency pre-rendering
a sweep starts (audio files, bench/render.py's part): all the process wrote is
``hub_all_bytes_per_reading``, and the day's figure is made of it. What it wrote from
its start to the window (the schema, the first pre-rendering; ``wchar`` counts the audio
piped to ffmpeg and the temporary files too) is ``hub_start_mb``, once per start; of it,
``hub_start_files_mb`` went into files and was not deleted before the kernel wrote it
(``write_bytes - cancelled_write_bytes``); ``render_mb`` is the audio kept (written by
espeak-ng and ffmpeg, children not counted above). At the end comes the checkpoint that
copies the WAL back into the database (run by this process, its ``wchar`` counted: after
a few minutes it copies each page dirtied
once; over an hour the hub's own checkpoints copy a page rewritten by many commits once,
so this overestimates). ``write_bytes`` (what reached the block layer) is reported too.

The naive writer, in the same run on the same messages: a process subscribed to the same
topics that INSERTs each reading as JSON into the old schema (``events`` with its two
indexes) and commits each row (WAL, synchronous=NORMAL), measured the same way.

The hourly retention sweep, measured in this process on a database of its own: one
finished hour of the same load to fold into rollups and one hour past
``retention.events_days`` to delete, i.e. one hour of the steady state; its ``wchar``
and the checkpoint after it, times 24 for a day. The same database gives the bytes a
reading and a rollup row take (``dbstat``), hence the size after a year at the defaults:
``events_days`` of raw readings, ``hourly_days`` of hourly rollups and a year of daily
ones (every metric a year: an upper bound; bench/year.py measures the whole database).

Every wait is bounded; every process started is stopped in ``finally``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import BenchError, Mosquitto, free_port, log, stop_process, wait_port

SITE = "wear"
DEVICES, APS, PERIOD_S = 200, 160, 10.0
PER_DAY = DEVICES * 86_400 / PERIOD_S  # 1,728,000 readings
#: A daily rollup row (device-major, values as floats), as bench/year.py measures it.
DAILY_ROW_BYTES = 37


def village(start: float) -> list[tuple[str, Any]]:
    """(topic, state) of every device, as the simulator makes them."""
    from devices.simulation.aps import new_ap
    from devices.simulation.sensors import new_sensor

    out: list[tuple[str, Any]] = []
    for i in range(DEVICES):
        rng = random.Random(i)
        if i < APS:
            d = f"ap-{i + 1:03d}"
            out.append((f"village/{SITE}/ap/{d}/state", new_ap(d, rng, start)))
        else:
            d = f"wl-{i - APS + 1:03d}"
            out.append((f"village/{SITE}/sensor/{d}/state", new_sensor(d, rng, 80.0)))
    return out


def body(topic: str, st: Any, now: float) -> dict[str, object]:
    from devices.simulation.aps import ap_state
    from devices.simulation.sensors import water_level

    hour = datetime.fromtimestamp(now, UTC).hour + 7.0  # village time, roughly
    if "/ap/" in topic:
        return ap_state(st, now, now, PERIOD_S, hour % 24)
    return water_level(st, st.base_level, now, PERIOD_S, hour % 24)


def io(pid: int) -> dict[str, int]:
    return io_of(Path(f"/proc/{pid}"))


def io_of(proc: Path) -> dict[str, int]:
    """The I/O counters of a process or one of its threads (/proc/<pid>/task/<tid>)."""
    out = {}
    for line in (proc / "io").read_text().splitlines():
        k, v = line.split(":")
        out[k] = int(v)
    return out


# -- the naive writer (a process of its own: --naive) ----------------------------------------


def naive(db: Path, port: int, n: int) -> None:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    from hub.store import MIGRATIONS

    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(MIGRATIONS[0])

    def on_message(c: Any, u: Any, m: Any) -> None:
        try:
            raw = json.loads(m.payload)
        except ValueError:
            return  # the hub's own status ("online")
        if not isinstance(raw, dict):
            return
        ts = float(raw.pop("ts", time.time()))
        data = {
            "metrics": {k: v for k, v in raw.items() if isinstance(v, int | float)},
            "info": {k: v for k, v in raw.items() if not isinstance(v, int | float)},
        }
        conn.execute(  # one row, one commit: autocommit
            "INSERT INTO events(ts, received_at, device_id, type, topic, data, mid, digest)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (
                ts,
                time.time(),
                m.topic.split("/")[3],
                "reading",
                m.topic,
                json.dumps(data),
                m.mid,
                os.urandom(8),
            ),
        )

    c = paho.Client(CallbackAPIVersion.VERSION2, client_id="naive", clean_session=False)
    c.on_message = on_message
    c.connect("127.0.0.1", port)
    c.subscribe(f"village/{SITE}/#", qos=1)
    deadline = time.monotonic() + 900  # stopped by the bench once it read /proc/<pid>/io
    while time.monotonic() < deadline:
        c.loop(0.1)
    c.disconnect()
    conn.close()


# -- the run ----------------------------------------------------------------------------------


def count_hub(db: Path) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return int(conn.execute("SELECT count(*) FROM readings").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def count_naive(db: Path) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def checkpoint_bytes(db: Path) -> int:
    """This process's wchar for a full checkpoint of ``db`` (what is left in its WAL)."""
    before = io(os.getpid())["wchar"]
    conn = sqlite3.connect(db, timeout=30)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    conn.close()
    return io(os.getpid())["wchar"] - before


def run(seconds: float, work: Path) -> dict[str, Any]:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    broker = Mosquitto(work / "broker").start()
    hub_proc = naive_proc = None
    hub_db, naive_db = work / "hub" / "hub.db", work / "naive.db"
    expected = int(seconds * DEVICES / PERIOD_S)
    http = free_port()
    env = {
        **os.environ,
        "LANGSO_SITE": SITE,
        "LANGSO_DATA_DIR": str(work / "hub"),
        "LANGSO_MQTT__PORT": str(broker.port),
        "LANGSO_HTTP__PORT": str(http),
        "LANGSO_LOG_LEVEL": "WARNING",
        "LANGSO_AUDIO__SINK": "null",
        "LANGSO_INGEST__DEVICE_FLUSH_S": "60",
        "GPIOZERO_PIN_FACTORY": "mock",  # no amplifier relay here
    }
    env.pop("LANGSO_CONFIG", None)
    try:
        started = time.monotonic()
        with open(work / "hub.log", "wb") as hub_log:
            hub_proc = subprocess.Popen(
                [sys.executable, "-m", "hub", "run"], env=env, stdout=hub_log, stderr=hub_log
            )
        naive_proc = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--naive",
                str(naive_db),
                "--port",
                str(broker.port),
                "--n",
                str(expected + DEVICES),
            ],
        )
        wait_port("127.0.0.1", http, proc=hub_proc, timeout=60)
        pub = paho.Client(CallbackAPIVersion.VERSION2, client_id="wear-pub")
        pub.connect(broker.host, broker.port)
        pub.loop_start()
        devices = village(time.time())
        # Warm-up: each device once (new devices commit at once), pre-rendering done.
        for topic, st in devices:
            pub.publish(topic, json.dumps(body(topic, st, time.time())), qos=1)
        end = time.monotonic() + 60
        while (count_hub(hub_db) < DEVICES or count_naive(naive_db) < DEVICES) and (
            time.monotonic() < end
        ):
            time.sleep(0.2)
        # The hub's first retention sweep comes 60 s after its start, and the emergency
        # pre-rendering with it (a render cache filled once): the window starts after both.
        time.sleep(max(15.0, started + 80.0 - time.monotonic()))
        h0, n0 = io(hub_proc.pid), io(naive_proc.pid)
        file_start = h0["write_bytes"] - h0["cancelled_write_bytes"]
        log(
            f"wear: the hub wrote {h0['wchar'] / 1e6:.1f} MB from its start to the window"
            f" ({file_start / 1e6:.1f} MB into files)"
        )
        tasks0 = {t.name: io_of(t)["wchar"] for t in Path(f"/proc/{hub_proc.pid}/task").iterdir()}
        stored0 = count_hub(hub_db)
        log(f"wear: measuring {seconds:.0f} s at {DEVICES / PERIOD_S:.0f} readings/s")
        t0 = time.monotonic()
        for k in range(expected):
            topic, st = devices[k % DEVICES]
            due = t0 + k * PERIOD_S / DEVICES
            time.sleep(max(0.0, due - time.monotonic()))
            pub.publish(topic, json.dumps(body(topic, st, time.time())), qos=1)
        end = time.monotonic() + 60
        while (
            count_hub(hub_db) < stored0 + expected or count_naive(naive_db) < DEVICES + expected
        ) and time.monotonic() < end:
            time.sleep(0.2)
        h1, n1 = io(hub_proc.pid), io(naive_proc.pid)
        # The threads that live on (the writer, paho's, HTTP's); one that ended in the
        # window is the emergency pre-rendering started by a sweep (audio files).
        live = 0
        for task in sorted(Path(f"/proc/{hub_proc.pid}/task").iterdir()):
            w = io_of(task)["wchar"] - tasks0.get(task.name, 0)
            live += w
            if w > 100_000:
                log(f"wear: hub thread {task.name} wrote {w / 1e6:.1f} MB in the window")
        stored = count_hub(hub_db) - stored0
        pub.loop_stop()
        pub.disconnect()
    finally:
        stop_process(hub_proc)
        stop_process(naive_proc)
        broker.stop()
    if stored < expected:
        raise BenchError(f"the hub stored {stored} of {expected} readings")
    return {
        "stored": stored,
        "hub": {k: h1[k] - h0[k] for k in ("wchar", "write_bytes")},
        "hub_live": live,
        "hub_start": h0["wchar"],
        "hub_start_files": h0["write_bytes"] - h0["cancelled_write_bytes"],
        "render_bytes": sum(f.stat().st_size for f in (work / "hub" / "render").glob("*")),
        "naive_n": expected,
        "naive_final": n1,
        "naive_start": n0,
    }


def sweep_cost(work: Path) -> dict[str, float]:
    """One hour of the steady state: fold a finished hour, delete one past events_days."""
    from hub.clock import FakeClock
    from hub.settings import RetentionSettings
    from hub.store import Store, immediate
    from hub.store import ingest as repo
    from hub.store import readings as raw
    from hub.store.retention import Retention

    now = time.time() // 3600 * 3600 + 600
    s = RetentionSettings()
    store = Store(work / "sweep.db")
    conn = store.writer_connection()
    devices = village(now)
    codes, last = raw.Codes(), {}  # type: ignore[var-annotated]

    class P:  # a PendingReading
        def __init__(self, ts: float, device: str, topic: str, b: dict[str, Any]) -> None:
            self.keep, self.ts, self.received_at, self.device_id = 0, ts, ts + 0.05, device
            self.topic, self.info = topic, True
            self.values = [(k, v) for k, v in b.items() if isinstance(v, int | float)]

    def hour(start: float) -> None:
        with immediate(conn):
            for k in range(int(3600 / PERIOD_S * DEVICES)):
                topic, st = devices[k % DEVICES]
                ts = start + k * PERIOD_S / DEVICES
                b = body(topic, st, ts)
                b.pop("ts", None)
                rows = repo.reading_rows(conn, codes, [P(ts, topic.split("/")[3], topic, b)], last)
                raw.insert_readings(conn, rows)

    def size(table: str) -> int:
        row = conn.execute("SELECT sum(pgsize) FROM dbstat WHERE name=?", (table,)).fetchone()
        return int(row[0] or 0)

    old = now - s.events_days * 86_400 - 2 * 3600 - 600
    hour(old)
    hour(now - 3600 - 600)
    conn.execute("INSERT INTO meta(key, value) VALUES('rollup_until', ?)", (str(old + 3600),))
    raw_bytes = size("readings") / (2 * 3600 / PERIOD_S * DEVICES)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = io(os.getpid())["wchar"]
    r = Retention(s, store, ingest_conn=conn, clock=FakeClock(datetime.fromtimestamp(now, UTC)))
    st = r.sweep()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    written = io(os.getpid())["wchar"] - before
    rows = int(conn.execute("SELECT count(*) FROM rollups").fetchone()[0])
    out = {
        "sweep_bytes": written,
        "sweep_hours": st.hours if st else 0,
        "sweep_deleted": st.deleted if st else 0,
        "raw_bytes_per_reading": raw_bytes,
        "rollup_rows_per_hour": rows,
        "rollup_bytes_per_row": size("rollups") / max(rows, 1),
    }
    conn.close()
    store.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # 300 s: a shorter window overstates the checkpoint that ends it (the hub's own come
    # every ~25 min and copy a page rewritten by many commits once).
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--naive", type=Path)
    ap.add_argument("--port", type=int)
    ap.add_argument("--n", type=int)
    a = ap.parse_args()
    if a.naive:
        naive(a.naive, a.port, a.n)
        return 0
    with tempfile.TemporaryDirectory(prefix="wear-") as tmp:
        work = Path(tmp)
        m = run(min(max(a.seconds, 30.0), 300.0), work)
        hub_ckpt = checkpoint_bytes(work / "hub" / "hub.db")
        naive_ckpt = checkpoint_bytes(work / "naive.db")
        naive_w = m["naive_final"]["wchar"] - m["naive_start"]["wchar"]
        sw = sweep_cost(work)
    from hub.settings import RetentionSettings

    hub_per = (m["hub_live"] + hub_ckpt) / m["stored"]
    hub_all = (m["hub"]["wchar"] + hub_ckpt) / m["stored"]
    naive_per = (naive_w + naive_ckpt) / m["naive_n"]
    # All the process wrote in the window (pre-rendering at a sweep included), a day of it.
    hub_day = hub_all * PER_DAY + sw["sweep_bytes"] * 24
    naive_day = naive_per * PER_DAY
    s = RetentionSettings()
    year = (
        s.events_days * PER_DAY * sw["raw_bytes_per_reading"]
        + s.hourly_days * 24 * sw["rollup_rows_per_hour"] * sw["rollup_bytes_per_row"]
        + 365 * sw["rollup_rows_per_hour"] * DAILY_ROW_BYTES
    )
    out = {
        "bench": "wear",
        "readings": m["stored"],
        "hub_bytes_per_reading": round(hub_per),
        "hub_gb_per_day": round(hub_day / 1e9, 3),
        "naive_bytes_per_reading": round(naive_per),
        "naive_gb_per_day": round(naive_day / 1e9, 3),
        "ratio": round(naive_day / hub_day, 1),
        "sweep_mb_per_hour": round(sw["sweep_bytes"] / 1e6, 2),
        "raw_bytes_per_reading": round(sw["raw_bytes_per_reading"], 1),
        "rollup_bytes_per_row": round(sw["rollup_bytes_per_row"], 1),
        "rollup_rows_per_hour": sw["rollup_rows_per_hour"],
        "year_mb": round(year / 1e6),
        "hub_all_bytes_per_reading": round(hub_all),
        "hub_start_mb": round(m["hub_start"] / 1e6, 1),
        "hub_start_files_mb": round(m["hub_start_files"] / 1e6, 1),
        "render_mb": round(m["render_bytes"] / 1e6, 1),
        "hub_write_bytes": m["hub"]["write_bytes"],
        "hub_checkpoint_bytes": hub_ckpt,
        "naive_checkpoint_bytes": naive_ckpt,
        "events_days": s.events_days,
    }
    out["goals"] = {"hub_gb_per_day": 1.0, "ratio": 17.0}
    out["met"] = {
        "hub_gb_per_day": out["hub_gb_per_day"] <= 1.0,
        "ratio": out["ratio"] >= 17.0,
    }
    out["ok"] = all(out["met"].values())
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
