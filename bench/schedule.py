"""Schedule accuracy under load: 100 announcements due 1 s apart on the real clock.

The hub runs in this process (build_hub, real clock, file sink, gpiozero mock pins)
against a private Mosquitto, while a second process publishes 2,000 QoS 1 messages/s
of AP telemetry into it (the ingest writer and paho's thread compete with the playout
for the GIL, as on the Pi). Each broadcast's error is the sink's first sample minus
its due instant (``broadcasts.started_at - scheduled_for``). The amplifier lead-in is
0.3 s and the tail 0 so that 0.5-s broadcasts 1 s apart never queue behind each other.

Prints one JSON line: {"bench": "schedule", "n", "p50_ms", "p99_ms", "max_ms", ...}.
Run: .venv/bin/python bench/schedule.py [--n 100] [--rate 2000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sqlite3
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")

from bench._common import Deadline, Mosquitto, inprocess_settings, log, percentile


def publisher(port: int, site: str, rate: int, seconds: float) -> None:
    """Paced QoS 1 publisher in its own process: ``rate`` messages/s over 500 APs."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-load-{os.getpid()}")
    c.max_inflight_messages_set(1000)
    c.connect("127.0.0.1", port)
    c.loop_start()
    start = time.monotonic()
    sent = 0
    while (elapsed := time.monotonic() - start) < seconds:
        due = int(elapsed * rate)
        while sent < due:
            body = {"clients": sent % 40, "cpu_pct": 12.5, "signal_dbm": -60, "seq": sent}
            c.publish(f"village/{site}/ap/ap-{sent % 500:03d}/state", json.dumps(body), qos=1)
            sent += 1
        time.sleep(0.002)
    c.loop_stop()
    c.disconnect()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--rate", type=int, default=2000)
    args = ap.parse_args()
    deadline = Deadline(600)
    from hub.app import build_hub

    with tempfile.TemporaryDirectory(prefix="langso-bench-") as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "mqtt")
        broker.start()
        try:
            site = "bench"
            settings = inprocess_settings(
                work,
                broker.port,
                site,
                LANGSO_AUDIO__SINK="file",
                LANGSO_AUDIO__CHIME="none",
                LANGSO_GPIO__LEAD_IN_S="0.3",
                LANGSO_GPIO__TAIL_S="0",
            )
            hub = build_hub(settings)
            hub.start()
            from hub.broadcast.models import Actor, AnnouncementIn

            lead = 20.0 + args.n * 0.02  # time to create them all before the first is due
            first = hub.clock.now() + timedelta(seconds=lead)
            actor = Actor("bench", "system")
            log(f"creating {args.n} announcements, the first due in {lead:.0f} s")
            load = mp.Process(
                target=publisher, args=(broker.port, site, args.rate, lead + args.n + 10)
            )
            load.start()
            try:
                for i in range(args.n):
                    when = (first + timedelta(seconds=i)).astimezone(settings.tz)
                    hub.announcements.create(
                        AnnouncementIn(
                            title=f"bench {i}", text="Một.", start_at=when.replace(tzinfo=None)
                        ),
                        actor,
                    )
                    deadline.check("creating announcements")
                db = settings.db_path
                conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
                while True:
                    done = conn.execute("SELECT count(*) FROM broadcasts").fetchone()[0]
                    if done >= args.n:
                        break
                    deadline.check("waiting for the broadcasts")
                    time.sleep(0.5)
                rows = conn.execute(
                    "SELECT scheduled_for, started_at, status FROM broadcasts"
                ).fetchall()
                conn.close()
                received = hub.ingest.stats.stored
            finally:
                load.terminate()
                load.join(10)
                hub.stop()
            errors = [(s - d) * 1000 for d, s, st in rows if st == "played" and s is not None]
            statuses = {st for _, _, st in rows}
            result = {
                "bench": "schedule",
                "n": args.n,
                "played": len(errors),
                "statuses": sorted(statuses),
                "p50_ms": round(percentile(errors, 50), 2),
                "p99_ms": round(percentile(errors, 99), 2),
                "max_ms": round(max(errors), 2),
                "min_ms": round(min(errors), 2),
                "ingest_rate": args.rate,
                "ingest_stored": received,
                "goal_p99_ms": 20,
            }
            print(json.dumps(result), flush=True)
            return 0 if len(errors) == args.n else 1
        finally:
            broker.stop()


if __name__ == "__main__":
    sys.exit(main())
