"""The hub as a process against what one device on the village wifi may send: a retained
command (run at every start before), a command taken for a device, and a flood of new
metric names (one AP made 5,001 retained Home Assistant configs before)."""

from __future__ import annotations

import json
import queue
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hub.settings import IngestSettings
from tests.broker import Broker
from tests.hubtest import PASSWORD, HubProcess, wait_for
from tests.storedata import newest_reading

pytestmark = [pytest.mark.broker]

WAIT_S = 20.0
CAP = IngestSettings().max_metrics_per_device


def last(db: Path) -> dict[str, Any] | None:
    """The metrics of the newest reading stored, through a read-only connection."""
    if not db.exists():
        return None
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return newest_reading(conn)
    except sqlite3.OperationalError:
        return None
    finally:
        conn.close()


def rows(db: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    """A query through a read-only connection ([] before the hub made its tables)."""
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


class Client:
    """A plain MQTT client of the test (anonymous: the test broker allows it)."""

    def __init__(self, broker: Broker, client_id: str) -> None:
        self.messages: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.c.on_message = lambda _c, _u, m: self.messages.put(
            (m.topic, bytes(m.payload), bool(m.retain))
        )
        self.c.connect(broker.host, broker.port)
        self.c.loop_start()

    def publish(self, topic: str, payload: bytes | str, *, retain: bool = False) -> None:
        self.c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(timeout=WAIT_S)

    def retained(self, filter: str) -> set[str]:
        """Topics of the retained messages under ``filter``: Mosquitto sends them right
        after the SUBACK, so a marker published afterwards by this client comes last."""
        done: queue.Queue[int] = queue.Queue()
        self.c.on_subscribe = lambda _c, _u, mid, _r, _p: done.put(mid)
        _, mid = self.c.subscribe(filter, qos=1)
        assert done.get(timeout=WAIT_S) == mid
        marker = f"{filter.rstrip('#')}zz-marker"
        self.publish(marker, b"")
        seen: set[str] = set()
        while True:
            topic, payload, retain = self.messages.get(timeout=WAIT_S)
            if topic == marker:
                break
            if retain and payload:
                seen.add(topic)
        self.c.unsubscribe(filter)
        return seen

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def client(own_broker: Broker) -> Iterator[Client]:
    c = Client(own_broker, "test-device")
    yield c
    c.close()


def test_a_retained_command_runs_neither_at_start_nor_at_restart(
    own_broker: Broker, client: Client, tmp_path: Path
) -> None:
    site = "replay"
    db = tmp_path / "hub" / "hub.db"
    body = {
        "title": "Báo động giả",
        "text": "Lũ về, sơ tán ngay",
        "category": "emergency",
        "priority": "emergency",
        "start_at": "2099-01-01T19:30:00",
    }
    # Left on the broker by anyone who could publish it once, long before the hub starts.
    client.publish(f"village/{site}/cmd/announce", json.dumps(body), retain=True)
    hub = HubProcess(own_broker, tmp_path / "hub", site=site)
    try:
        hub.start()
        replays = "SELECT reason FROM dead_letters WHERE reason LIKE 'retained command%'"
        wait_for(lambda: rows(db, replays), WAIT_S, "the retained command as a dead letter")
        assert rows(db, "SELECT count(*) FROM announcements") == [(0,)]

        hub.stop()
        hub.start()
        # Mosquitto delivers in order: once this reading is stored, any replay of the
        # retained command at the new start has been handled before it.
        client.publish(f"village/{site}/sensor/s-1/state", b'{"water_level_cm": 80}')
        wait_for(lambda: rows(db, "SELECT 1 FROM devices WHERE id='s-1'"), WAIT_S, "the reading")
        assert rows(db, "SELECT count(*) FROM announcements") == [(0,)]

        # Sent now (not retained), the same command runs once, and it is not a device.
        body["title"] = "Họp thôn"
        body["category"], body["priority"] = "notice", "normal"
        client.publish(f"village/{site}/cmd/announce", json.dumps(body))
        titles = "SELECT title FROM announcements"
        assert wait_for(lambda: rows(db, titles), WAIT_S, "the announcement") == [("Họp thôn",)]
        assert rows(db, "SELECT id FROM devices") == [("s-1",)]
        assert api_device_ids(hub) == ["s-1"]
    finally:
        hub.stop()
        client.publish(f"village/{site}/cmd/announce", b"", retain=True)


def test_one_ap_cannot_grow_its_metrics_or_the_discovery_configs_without_end(
    own_broker: Broker, client: Client, tmp_path: Path
) -> None:
    site = "flood"
    db = tmp_path / "hub" / "hub.db"
    hub = HubProcess(own_broker, tmp_path / "hub", site=site)
    topic = f"village/{site}/ap/ap-flood/state"
    try:
        hub.start()
        for i in range(50):
            client.publish(topic, json.dumps({f"k{i}_{j}": j for j in range(100)}))
        dead = "SELECT reason FROM dead_letters ORDER BY id"
        reasons = wait_for(lambda: len(rows(db, dead)) >= 50 and rows(db, dead), WAIT_S, "50")
        assert len(reasons) == 50
        for (reason,) in reasons:
            assert reason.startswith(f"too many metric names for device ap-flood (limit {CAP}):")
        (metrics,) = rows(db, "SELECT metrics FROM devices WHERE id='ap-flood'")[0]
        assert sorted(json.loads(metrics)) == sorted(f"k0_{j}" for j in range(CAP))

        # Known names still count; a new one has no room.
        client.publish(topic, json.dumps({"k0_1": 7, "clients": 3}))
        wait_for(lambda: "k0_1" in (last(db) or {}) and len(rows(db, dead)) == 51, WAIT_S)
        assert last(db) == {"k0_1": 7}

        # Home Assistant: the hub's 3 entities, the AP's connectivity and one per metric.
        want = 3 + 1 + CAP
        configs = wait_for(
            lambda: (found := client.retained("homeassistant/#")) and len(found) >= want and found,
            WAIT_S,
            f"{want} discovery configs",
        )
        assert len(configs) == want
    finally:
        hub.stop()


def api_device_ids(hub: HubProcess) -> list[str]:
    """``GET /api/devices`` as a technician (made through the CLI, as an installer does)."""
    argv = ["user", "add", "tech", "--role", "technician", "--password-stdin"]
    subprocess.run(
        [sys.executable, "-m", "hub", *argv],
        input=PASSWORD + "\n",
        env=hub.env,
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        form = {"username": "tech", "password": PASSWORD}
        token = http.post("/api/auth/token", data=form).json()["access_token"]
        devices = http.get("/api/devices", headers={"Authorization": f"Bearer {token}"})
        return [d["id"] for d in devices.json()]
