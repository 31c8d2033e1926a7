"""The hub as a process: killed with SIGKILL, or its broker restarted, loses nothing; under
systemd's supervision (a real AF_UNIX socket as NOTIFY_SOCKET) it says READY, pings the
watchdog and says STOPPING; killed on air, it logs the broadcast interrupted, replays an
emergency once, and `langso gpio off` leaves the PA off and playout/state idle."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hub.services.users import Users
from hub.store import Store
from tests.broker import Broker, free_port
from tests.hubtest import PASSWORD, HubProcess, wait_for
from tests.storedata import all_readings

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def counts(db: Path) -> tuple[int, int]:
    """(rows, distinct seq) of the readings stored, through a read-only connection."""
    if not db.exists():
        return (0, 0)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        seqs = [r.get("seq") for r in all_readings(conn)]
        return (len(seqs), len(set(seqs)))
    except sqlite3.OperationalError:
        return (0, 0)
    finally:
        conn.close()


class Publisher(threading.Thread):
    """Publishes n QoS 1 readings with a unique seq, as a village of 50 sensors would."""

    def __init__(self, broker: Broker, site: str, n: int, client_id: str) -> None:
        super().__init__(daemon=True)
        self.broker, self.site, self.n = broker, site, n
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False
        )
        self.client.max_inflight_messages_set(100)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(1, 1)
        self.sent = 0
        self.done = threading.Event()

    def run(self) -> None:
        c = self.client
        c.connect(self.broker.host, self.broker.port)
        c.loop_start()
        infos = []
        for i in range(self.n):
            payload = json.dumps({"seq": i, "water_level_cm": 100 + i % 50})
            infos.append(c.publish(f"village/{self.site}/sensor/s-{i % 50}/state", payload, qos=1))
            self.sent = i + 1
        for info in infos:
            info.wait_for_publish(120)
        c.loop_stop()
        c.disconnect()
        self.done.set()


def test_sigkill_mid_stream_then_restart_stores_every_message_exactly_once(
    own_broker: Broker, tmp_path: Path
) -> None:
    n = 20_000
    hub = HubProcess(own_broker, tmp_path / "hub", site="crash")
    db = tmp_path / "hub" / "hub.db"
    hub.start()
    pub = Publisher(own_broker, "crash", n, "crash-publisher")
    try:
        pub.start()
        wait_for(lambda: counts(db)[0] >= 3000, 60, "the hub to store some messages")
        hub.kill()  # SIGKILL: no chance to flush, ack or say goodbye
        stored_at_kill = counts(db)[0]
        assert stored_at_kill < n, "the stream ended before the kill: make n larger"
        assert pub.done.wait(120), "the broker did not take every message"
        hub.start()
        wait_for(lambda: counts(db)[1] >= n, 120, f"all {n} messages after the restart")
        hub.stop()
    finally:
        hub.kill()
    rows, distinct = counts(db)
    assert (rows, distinct) == (n, n), f"{rows} rows for {distinct} distinct messages"


def test_broker_restart_mid_stream_loses_nothing(own_broker: Broker, tmp_path: Path) -> None:
    n = 6_000
    hub = HubProcess(own_broker, tmp_path / "hub", site="bounce")
    db = tmp_path / "hub" / "hub.db"
    hub.start()
    pub = Publisher(own_broker, "bounce", n, "bounce-publisher")
    try:
        pub.start()
        wait_for(lambda: counts(db)[0] >= 1000, 60, "some messages stored")
        own_broker.stop()  # SIGTERM: Mosquitto writes its persistence file
        wait_for(lambda: hub.health().get("mqtt") == "disconnected", 10, "hub sees the outage")
        assert hub.health()["status"] == "error"  # honest: not ok while nothing can flow
        own_broker.start()
        assert pub.done.wait(120), "publisher could not deliver after the restart"
        wait_for(lambda: counts(db)[1] >= n, 120, f"all {n} messages after the broker restart")
        wait_for(lambda: hub.health().get("status") == "ok", 10, "health ok again")
    finally:
        hub.stop()
    rows, distinct = counts(db)
    assert distinct == n  # nothing lost
    # QoS 1 between the publisher and the broker is at least once: a message the broker
    # took but could not acknowledge before it stopped is sent again by the publisher and
    # is, for the broker, a new message (new packet id to the hub). The hub stores such a
    # copy; it cannot tell it from a real repeat. At most the publisher's in-flight window.
    assert n <= rows <= n + 100, f"{rows - n} copies stored"


# ---- supervised like an appliance ------------------------------------------------------------


class Manager:
    """systemd's end of NOTIFY_SOCKET: a bound datagram socket."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.path = str(path)

    def next(self, timeout: float = 20) -> str:
        self.sock.settimeout(timeout)
        return self.sock.recv(4096).decode()

    def until(self, line: str, timeout: float = 20, limit: int = 200) -> list[str]:
        """Messages up to the first that has ``line`` (bounded), that one included."""
        seen: list[str] = []
        for _ in range(limit):
            seen.append(self.next(timeout))
            if line in seen[-1].splitlines():
                return seen
        raise AssertionError(f"no {line} in {limit} messages: {seen}")


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[Manager]:
    m = Manager(tmp_path / "notify")
    yield m
    m.sock.close()


def rows(db: Path, aid: str) -> list[tuple[str, str | None]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(
            "SELECT status, detail FROM broadcasts WHERE announcement_id=? ORDER BY id", (aid,)
        ).fetchall()
    finally:
        conn.close()


def retained_playout(broker: Broker, site: str) -> dict[str, Any]:
    got: list[bytes] = []
    done = threading.Event()
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{free_port()}")
    c.on_connect = lambda cl, *_: cl.subscribe(f"village/{site}/playout/state", 1)

    def on_message(_c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        got.append(bytes(msg.payload))
        done.set()

    c.on_message = on_message
    c.connect(broker.host, broker.port)
    c.loop_start()
    try:
        assert done.wait(10), "no retained playout/state"
    finally:
        c.disconnect()
        c.loop_stop()
    body: dict[str, Any] = json.loads(got[0])
    return body


def test_ready_watchdog_pings_and_stopping(
    broker: Broker, tmp_path: Path, manager: Manager
) -> None:
    hub = HubProcess(broker, tmp_path / "hub", site="notify")
    hub.env |= {"NOTIFY_SOCKET": manager.path, "WATCHDOG_USEC": "1000000"}
    try:
        hub.start()
        ready = manager.until("READY=1")
        # READY once HTTP answers (HubProcess.start waited for it, the datagram was sent
        # after the socket listened), then pings every half second.
        assert [m for m in ready if "WATCHDOG=1" in m] == []
        pings = [manager.next() for _ in range(4)]
        assert pings.count("WATCHDOG=1") >= 3, pings
        hub.stop()
        assert "STOPPING=1" in manager.until("STOPPING=1")[-1]
    finally:
        hub.kill()


def emergency(hub: HubProcess) -> str:
    with httpx.Client(base_url=hub.url, timeout=120) as http:
        r = http.post("/api/auth/token", data={"username": "truong", "password": PASSWORD})
        assert r.status_code == 200, r.text
        r = http.post(
            "/api/announcements",
            headers={"Authorization": f"Bearer {r.json()['access_token']}"},
            json={
                "title": "Lũ về",
                "text": "Nước sông lên nhanh. Bà con xóm Đông và xóm Tây chuyển đồ đạc lên "
                "cao và đưa người già, trẻ em đến nhà văn hóa thôn ngay.",
                "category": "emergency",
                "priority": "emergency",
                "repeat": 1,
            },
        )
        assert r.status_code == 201, r.text
        aid: str = r.json()["id"]
        return aid


def langso(hub: HubProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub", *args],
        env=hub.env,
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_killed_on_air_three_times_logs_interrupted_and_replays_once(
    broker: Broker, tmp_path: Path
) -> None:
    data = tmp_path / "hub"
    data.mkdir()
    db = data / "hub.db"
    store = Store(db)
    Users(store).add("truong", "head", PASSWORD, actor="test", now=0)
    store.close()
    hub = HubProcess(broker, data, site="onair")
    hub.env["LANGSO_ANNOUNCEMENTS__EMERGENCY_REPEATS"] = "1"

    def on_air() -> bool:
        return [s for s, _ in rows(db, aid)].count("playing") == 1

    try:
        hub.start()
        aid = emergency(hub)
        wait_for(on_air, 60, "the emergency on air")
        hub.kill()  # 1: on air

        hub.start()
        # Logged interrupted at start, and replayed at once under its own row.
        wait_for(on_air, 30, "the replay on air")
        [(cut, how), (replay, note)] = rows(db, aid)
        assert cut == "interrupted" and how is not None and how.startswith("cut ")
        assert replay == "playing" and note is not None and note.startswith("replay of ")
        hub.kill()  # 2: the replay on air

        # ExecStopPost: the PA off whatever the dead hub left, playout/state idle.
        off = langso(hub, "gpio", "off")
        assert off.returncode == 0, off.stdout + off.stderr
        lines = off.stdout.splitlines()
        assert lines[:3] == [
            "amplifier: GPIO17 off (low, active high)",
            "zone xom-dong: GPIO27 off (low, active high)",
            "zone xom-tay: GPIO22 off (low, active high)",
        ]
        assert lines[-1] == "broker: playout/state = idle"
        assert retained_playout(broker, "onair")["state"] == "idle"

        hub.start()
        # The replay cut in its turn is logged, never replayed: nothing queued, idle.
        playout = httpx.get(f"{hub.url}/api/playout", timeout=10).json()
        assert (playout["state"], playout["queue"]) == ("idle", [])
        hub.kill()  # 3: nothing on air

        hub.start()
        assert [s for s, _ in rows(db, aid)] == ["interrupted", "interrupted"]
        assert httpx.get(f"{hub.url}/api/playout", timeout=10).json()["queue"] == []
        # The hub says it started idle, whatever the broker kept.
        wait_for(lambda: retained_playout(broker, "onair")["state"] == "idle", 10, "idle")
        hub.stop()
    finally:
        hub.kill()
    log = hub.log.read_text()
    assert log.count("was cut by a restart") == 2
    assert log.count("replaying") == 1
