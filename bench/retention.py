"""Retention and backup benchmark: what the hourly sweep costs ingest, and a backup under load.

Run from the repository root: ``.venv/bin/python bench/retention.py [--hours 6]``.
Progress goes to stderr; stdout gets ONE JSON line::

    {"bench": "retention", "rows", "db_mib", "new_sweep_s", "new_steps",
     "new_longest_step_ms", "new_longest_step_cpu_ms", "new_stall_ms", "quiet_stall_ms",
     "backup_s", "backup_db_mib", "backup_gz_mib", "backup_rows_written_meanwhile",
     "load_1m"}

Workload. A synthetic database of ``--hours`` hours of a village (``--devices`` access
points, each every 10 s: 20 readings/s at 200, ten numeric metrics each): one hour written
as the hub's writer writes it (:mod:`bench._yeardb`), copied by SQLite into the hours
after it, in a temporary folder, the clock set so every hour of it is due: the sweep
rolls all of it up and deletes all of it (``events_days`` 1, the readings 2 days old).
The database is warm (in the page cache: a benchmark cannot drop the cache without root);
on a cold SD card each step reads more, so the figures are lower bounds there.

Ingest is the hub's real writer (:class:`hub.ingest.writer.Ingest`, its thread, its
batches, its job queue), fed without a broker: a thread hands it one AP message every
50 ms (20 msg/s) and notes the time; the writer's acknowledgement after each commit
notes when it was stored. A message's *stall* is stored − handed; ``*_stall_ms`` is the
longest while a sweep runs, ``quiet_stall_ms`` the longest before it. (The sweep as it
was before it went in steps, and its ``old_*`` figures, are gone with the JSON readings
it read: 10-13 s of stall on the 3 GB database of the issue.)

(b) ``new_*``: :meth:`Retention.sweep_in_steps` on a copy: each step re-queues the
    next behind what is waiting. ``new_longest_step_ms`` from the sweep's own figures
    (wall time), ``new_longest_step_cpu_ms`` the writer thread's CPU time in the longest
    step (what the machine's other load does not inflate; ``load_1m`` says how loaded it
    was), ``new_sweep_s`` from its start to its last step.
(c) ``backup_*``: ``hub.store.backup.snapshot`` (what ``langso backup`` runs) of the
    database of (a) while a thread commits 500-row batches as fast as it can: its length,
    the copy's size, and how many rows the writer committed meanwhile (the copy is one
    read transaction: it never restarts because of them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import Deadline, log
from bench._yeardb import Pending, repeat_raw, write_readings
from hub.app import build_router
from hub.clock import FakeClock
from hub.events import Dispatcher
from hub.ingest.monitor import Monitor
from hub.ingest.mqtt import InboundMessage
from hub.ingest.writer import Ingest
from hub.settings import Settings, load_settings
from hub.store import Store, backup
from hub.store import readings as raw
from hub.store.retention import Retention

SITE = "bench"
T0 = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
HOUR, DAY, MIB = 3600.0, 86_400.0, 1 << 20


def readings(devices: int) -> Iterator[Pending]:
    """An hour of ``devices`` access points, each every 10 s, ten numeric metrics each."""
    n = int(HOUR / 10 * devices)
    for i in range(n):
        ts = T0 + i * 10.0 / devices
        d = f"ap-{i % devices:03d}"
        m = {
            "clients": i % 30,
            "rx_bytes": i * 1500,
            "tx_bytes": i * 700,
            "signal_dbm": -60 - i % 9,
            "noise_dbm": -95,
            "channel": 6,
            "uptime_s": i,
            "cpu_pct": 12.5 + i % 7,
            "mem_pct": 40.1,
            "temp_c": 51.2,
        }
        yield Pending(ts, d, f"village/{SITE}/ap/{d}/state", list(m.items()))


def build(path: Path, devices: int, hours: int) -> int:
    """One hour written as the writer writes it, copied into the ``hours - 1`` after it."""
    store = Store(path)
    conn = store.writer_connection()
    write_readings(conn, readings(devices))
    repeat_raw(conn, T0, hours - 1)
    rows = int(conn.execute("SELECT count(*) FROM readings").fetchone()[0])
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    store.close()
    return rows


class Feed:
    """The hub's writer with one AP message handed to it every 50 ms (real time)."""

    def __init__(self, data: Path, now: float) -> None:
        self.settings: Settings = load_settings(
            None,
            env={
                "LANGSO_DATA_DIR": str(data),
                "LANGSO_SITE": SITE,
                "LANGSO_RETENTION__EVENTS_DAYS": "1",
                # Each message committed at once (not grouped over 10 s, the default at
                # low rates): a stall is then what the sweep makes a message wait.
                "LANGSO_INGEST__COMMIT_INTERVAL_S": "0",
            },
        )
        self.clock = FakeClock(datetime.fromtimestamp(now, UTC))
        self.store = Store(self.settings.db_path)
        s = self.settings
        self.ingest = Ingest(
            s,
            self.store,
            build_router(s),
            Monitor(s.health, s.tz),
            self.clock,
            events=Dispatcher(),
        )
        self.handed: dict[int, float] = {}
        self.stored: dict[int, float] = {}
        self._stop = threading.Event()
        self.ingest.start(self._acked)
        self._thread = threading.Thread(target=self._feed, daemon=True)
        self._thread.start()

    def _acked(self, mids: Sequence[int]) -> None:
        t = time.monotonic()  # writer thread, right after the commit
        for m in mids:
            self.stored[m] = t

    def _feed(self) -> None:
        mid = 0
        while not self._stop.wait(0.05):
            mid = mid % 65_000 + 1
            payload = json.dumps({"clients": mid % 30, "cpu_pct": 10}).encode()
            now = self.clock.now().timestamp()
            msg = InboundMessage(
                f"village/{SITE}/ap/live/state", payload, 1, False, False, mid, now
            )
            self.handed[mid] = time.monotonic()
            self.ingest.submit([msg])

    def stall_ms(self, since: float, until: float) -> float:
        """The longest hand-to-store time of the messages handed in [since, until]."""
        waits = [
            self.stored.get(m, until) - t
            for m, t in list(self.handed.items())
            if since <= t <= until
        ]
        return round(max(waits, default=0.0) * 1000, 1)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.ingest.stop()
        self.store.close()


def run_phase(data: Path, now: float, start: Callable[[Feed, threading.Event], None]) -> Feed:
    feed = Feed(data, now)
    time.sleep(1.0)  # a second of quiet ingest: the baseline stall
    done = threading.Event()
    start(feed, done)
    if not done.wait(Deadline(600).left()):
        raise RuntimeError("the sweep did not finish in 600 s")
    time.sleep(0.2)
    return feed


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--hours", type=int, default=6)
    args = ap.parse_args(argv)
    now = T0 + args.hours * HOUR + 2 * DAY + 60
    with tempfile.TemporaryDirectory(prefix="bench-retention-") as tmp:
        root = Path(tmp)
        base = root / "base" / "hub.db"
        t = time.perf_counter()
        rows = build(base, args.devices, args.hours)
        took = time.perf_counter() - t
        log(f"built {rows} readings ({base.stat().st_size / MIB:.0f} MiB) in {took:.1f} s")
        (root / "new").mkdir()
        shutil.copy(base, root / "new" / "hub.db")
        out: dict[str, object] = {"bench": "retention", "rows": rows}
        out["db_mib"] = round(base.stat().st_size / MIB, 1)
        span: dict[str, float] = {}

        # (b) the stepped sweep
        cpu = [0.0]  # the longest step in the writer thread's CPU time (the machine's load aside)

        def new(feed: Feed, done: threading.Event) -> None:
            r = Retention(
                feed.settings.retention, feed.store, ingest_conn=feed.ingest.conn, clock=feed.clock
            )
            span["start"] = time.monotonic()

            def post(job: Callable[[], None]) -> None:
                def wrapped() -> None:
                    t = time.thread_time()
                    job()
                    cpu[0] = max(cpu[0], time.thread_time() - t)
                    if r.last is not None and not done.is_set():
                        span["end"] = time.monotonic()
                        out["new_steps"] = r.last.steps
                        out["new_longest_step_ms"] = round(r.last.longest_s * 1000, 1)
                        out["new_longest_step_cpu_ms"] = round(cpu[0] * 1000, 1)
                        done.set()

                feed.ingest.call(wrapped)

            post(lambda: r.sweep_in_steps(post))

        feed = run_phase(root / "new", now, new)
        out["new_sweep_s"] = round(span["end"] - span["start"], 2)
        out["new_stall_ms"] = feed.stall_ms(span["start"], span["end"])
        out["quiet_stall_ms"] = feed.stall_ms(0, span["start"] - 0.1)
        left = feed.store.one(
            "SELECT count(*) FROM readings WHERE slot < ?", (raw.slot_of(now - DAY),)
        )
        assert left is not None and left[0] == 0, "the stepped sweep left old readings"
        feed.close()
        log(f"new sweep: {out['new_sweep_s']} s in {out['new_steps']} steps")

        # (c) a backup while a writer commits
        out.update(backup_under_load(base, root / "backups"))
    out["load_1m"] = round(os.getloadavg()[0], 1)  # other work on the machine inflates wall times
    print(json.dumps(out), flush=True)


def backup_under_load(db: Path, out_dir: Path) -> dict[str, object]:
    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=10000")
    stop = threading.Event()
    written = [0]
    slot = raw.slot_of(T0)

    def write() -> None:
        b = 0
        while not stop.is_set():
            conn.execute("BEGIN IMMEDIATE")
            raw.insert_readings(  # 500 readings of a device of its own, a slot each batch
                conn,
                [(0, slot + b, 1 << 20, i * raw.RANKS, 0, 1, 0, b"\x08\x02") for i in range(500)],
            )
            conn.execute("COMMIT")
            written[0] += 500
            b += 1

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    t = time.perf_counter()
    try:
        snap = backup.snapshot(db, out_dir, now=datetime.now(UTC))
    finally:
        took = time.perf_counter() - t
        stop.set()
        writer.join(30)
        conn.close()
    log(f"backup: {took:.1f} s, {snap.size / MIB:.1f} MiB compressed")
    return {
        "backup_s": round(took, 2),
        "backup_db_mib": round(snap.database_size / MIB, 1),
        "backup_gz_mib": round(snap.size / MIB, 1),
        "backup_rows_written_meanwhile": written[0],
    }


if __name__ == "__main__":
    main()
