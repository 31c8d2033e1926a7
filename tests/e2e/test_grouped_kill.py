"""The hub as a process, its readings grouped into one commit every few seconds: killed
between receiving messages and committing them, it has acknowledged none of them, so the
broker sends them again and every one is stored once."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.broker import Broker
from tests.hubtest import HubProcess, wait_for
from tests.storedata import all_readings

pytestmark = [pytest.mark.broker, pytest.mark.slow]

N = 200


def seqs(db: Path) -> list[object]:
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return [r.get("seq") for r in all_readings(conn)]
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def test_killed_before_the_group_commits_nothing_is_lost_or_doubled(
    own_broker: Broker, tmp_path: Path
) -> None:
    hub = HubProcess(own_broker, tmp_path / "hub", site="group")
    hub.env["LANGSO_INGEST__COMMIT_INTERVAL_S"] = "20"
    db = tmp_path / "hub" / "hub.db"
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="group-pub")
    client.connect(own_broker.host, own_broker.port)
    client.loop_start()
    topic = "village/group/sensor/s-1/state"
    try:
        hub.start()
        wait_for(lambda: hub.health().get("mqtt") == "connected", 20, "the hub on the broker")
        client.publish(topic, json.dumps({"seq": -1}), qos=1).wait_for_publish(10)
        wait_for(lambda: seqs(db) == [-1], 20, "the new device's first reading, at once")
        for i in range(N):
            client.publish(topic, json.dumps({"seq": i}), qos=1)
        wait_for(
            lambda: hub.health().get("ingest", {}).get("received", 0) >= N + 1, 20, "all received"
        )
        # Received and decoded, in the group: not committed, so not acknowledged.
        assert seqs(db) == [-1] and hub.health()["ingest"]["pending"] >= N
        hub.kill()
        hub.env["LANGSO_INGEST__COMMIT_INTERVAL_S"] = "0"
        hub.start()
        wait_for(lambda: len(seqs(db)) >= N + 1, 30, "the group sent again by the broker")
        hub.stop()
    finally:
        hub.kill()
        client.loop_stop()
        client.disconnect()
    assert sorted(seqs(db), key=lambda s: int(str(s))) == [-1, *range(N)]
