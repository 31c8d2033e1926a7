"""Remote speaker clusters end to end: a real snapserver, three real snapclients (their file
player: each cluster's output read back), two node agents (MockFactory relays), a real
Mosquitto, the hub in this process (fake clock; the audio itself in real time).

Clusters: ``cum-dong`` (xóm Đông, with an agent), ``cum-tay-1`` (xóm Tây, with an agent),
``cum-tay-2`` (xóm Tây, its status published by hand). One snapserver for the module.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import paho.mqtt.client as paho
import pytest
from gpiozero.pins.mock import MockFactory
from paho.mqtt.enums import CallbackAPIVersion

from devices.node.agent import NodeAgent, NodeConfig
from hub.broadcast.clusters import (
    RULE,
    Clusters,
    cluster_sink,
    open_cluster_alerts,
    parse_note,
    roster_from,
)
from hub.broadcast.hub_alerts import HubAlerts
from hub.broadcast.pa_link import SafeClusters
from hub.clock import FakeClock
from hub.services.users import Users
from hub.settings import Settings
from hub.store import read_models
from tests.broker import Broker
from tests.hubtest import PASSWORD, InProcessHub, hub_settings, wait_for
from tests.integration.web_fixture import form_value
from tests.snapcast import SnapClientProc, SnapServer, have_snapcast

pytestmark = [
    pytest.mark.broker,
    pytest.mark.skipif(
        not have_snapcast() and os.environ.get("CI") != "true", reason="no snapserver"
    ),
]

T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 08:00 in the village
ZONES = {"cum-dong": ("xom-dong", "Cụm Đông"), "cum-tay-1": ("xom-tay", "Tây 1")}
ZONES["cum-tay-2"] = ("xom-tay", "Tây 2")
PIN = 17


@dataclass
class Village:
    settings: Settings
    server: SnapServer
    clients: dict[str, SnapClientProc]
    agents: dict[str, NodeAgent]
    hub: InProcessHub
    clusters: Clusters
    threads: list[threading.Thread] = field(default_factory=list)

    def attach(self) -> None:
        """The hub's clusters: build_hub's (once wired there), else built as it will."""
        h = self.hub.hub
        wired = getattr(h, "clusters", None)
        if isinstance(wired, Clusters):
            self.clusters = wired
            wait_for(lambda: len(wired.reach(["all"]).connected) == 3, 10, "3 clients")
            return
        self.clusters = Clusters(
            self.settings.clusters,
            site=self.settings.site,
            roster=roster_from(h.devices),
            publish=lambda t, p, r: h.mqtt.publish(t, p, qos=1, retain=r),
            alerts=HubAlerts(h.store, h.clock, h.events),
            open_alerts=open_cluster_alerts(h.store),
        )
        h.playout.clusters = SafeClusters(self.clusters)
        self.clusters.start()
        wait_for(lambda: len(self.clusters.reach(["all"]).connected) == 3, 10, "3 clients")

    def start_hub(self) -> None:
        s = self.settings
        self.hub = InProcessHub(s, FakeClock(T0), sink=cluster_sink(s.clusters, None, _now))
        self.attach()

    def stop_hub(self) -> None:
        self.clusters.stop()
        self.hub.stop()

    def broadcast(self, text: str, zones: list[str], priority: str = "normal") -> dict[str, Any]:
        """Send one to play now; wait until it is logged; its log row."""
        for c in self.clients.values():
            c.mark()
        r = self.hub.http("head").post(
            "/api/announcements",
            json={"title": text[:20], "text": text, "zones": zones, "priority": priority},
        )
        assert r.status_code == 201, r.text
        aid = r.json()["id"]
        row: dict[str, Any] = self.hub.run_until(
            lambda: _logged(self.hub, aid), step=2.0, what="the broadcast"
        )
        return row

    def loud(self) -> dict[str, int]:
        return {cid: c.loud_samples() for cid, c in self.clients.items()}


def _sign_in(h: InProcessHub, role: str) -> httpx.Client:
    """A phone's browser signed in through the web form (the session cookie)."""
    name = f"{role}-web"
    if h.hub.store.one("SELECT 1 FROM users WHERE username=?", (name,)) is None:
        Users(h.hub.store).add(name, role, PASSWORD, actor="test", now=0)
    c = httpx.Client(base_url=h.url, timeout=10, follow_redirects=False)
    csrf = form_value(c.get("/app/login").text, "csrf")
    r = c.post("/app/login", data={"csrf": csrf, "username": name, "password": PASSWORD})
    assert r.status_code == 303, r.text[:300]
    return c


def _now() -> datetime:
    return datetime.now(UTC)


def _logged(h: InProcessHub, aid: str) -> dict[str, Any] | None:
    for b in read_models.logged(h.hub.store, limit=20):
        if b.announcement_id == aid and b.status != "playing":
            return {"status": b.status, "detail": b.detail}
    return None


@pytest.fixture(scope="module")
def village(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Village]:
    work = tmp_path_factory.mktemp("clusters")
    server = SnapServer(work / "snapserver", buffer_ms=400)
    clients = {cid: SnapClientProc(server, cid, work) for cid in ZONES}
    devices = {cid: {"zone": z, "name": n} for cid, (z, n) in ZONES.items()}
    settings = hub_settings(
        broker,
        work / "hub",
        **server.hub_env(),
        LANGSO_CLUSTERS__POLL_S="0.5",
        LANGSO_CLUSTERS__AMP_TAIL_S="0.2",
        LANGSO_HEALTH__DEVICES=json.dumps(devices),
        LANGSO_ANNOUNCEMENTS__QUIET_HOURS="",
        LANGSO_ANNOUNCEMENTS__EMERGENCY_REPEATS="1",
        LANGSO_AUDIO__CHIME="none",
    )
    agents = {}
    for cid in ("cum-dong", "cum-tay-1"):
        agents[cid] = NodeAgent(
            NodeConfig(
                id=cid,
                site=settings.site,
                amp_pin=PIN,
                mqtt_port=broker.port,
                stream_port=server.stream_port,
                state_s=1.0,
            ),
            pin_factory=MockFactory(),
        )
    v = Village(settings, server, clients, agents, None, None)  # type: ignore[arg-type]
    for a in agents.values():
        a.start()
        t = threading.Thread(target=a.run, daemon=True)
        t.start()
        v.threads.append(t)
    pub = paho.Client(CallbackAPIVersion.VERSION2)
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    topic = f"village/{settings.site}/speaker/cum-tay-2/status"
    pub.publish(topic, b"online", qos=1, retain=True).wait_for_publish(5)
    try:
        v.start_hub()
        h = v.hub.hub
        wait_for(lambda: len(h.devices.query("speaker")) == 3, 10, "three speaker devices")
        yield v
    finally:
        pub.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
        pub.disconnect()
        pub.loop_stop()
        if v.hub is not None:
            v.stop_hub()
        for a in agents.values():
            a.stop()
        for t in v.threads:
            t.join(5)
        for cl in clients.values():
            cl.stop()
        server.stop()


def test_a_broadcast_to_one_zone_reaches_that_zones_clusters_only(village: Village) -> None:
    row = village.broadcast("Mời bà con xóm Tây đi họp.", ["xom-tay"])
    assert row["status"] == "played", row
    loud = village.loud()
    assert loud["cum-tay-1"] > 4800 and loud["cum-tay-2"] > 4800, loud  # 0.1 s and more
    assert loud["cum-dong"] == 0, loud  # silence: muted, and no audio sent to it
    note = parse_note(row["detail"])
    assert note is not None and (note.heard, note.total) == (2, 2), row
    # The cluster's node switched its amplifier on before the audio and off after its tail.
    tay, dong = village.agents["cum-tay-1"], village.agents["cum-dong"]
    wait_for(lambda: not tay.relay.amp.is_on, 5, "the tail")
    assert [s.state for s in tay.relay.amp._device.pin.states] == [False, True, False]
    assert [s.state for s in dong.relay.amp._device.pin.states] == [False]
    # Between broadcasts every client is muted again.
    wait_for(lambda: all(c.muted for c in village.clusters.control.status().values()), 5, "mute")


def test_an_emergency_reaches_every_cluster(village: Village) -> None:
    row = village.broadcast("Khẩn cấp: nước sông lên nhanh.", ["xom-dong"], "emergency")
    assert row["status"] == "played", row
    loud = village.loud()
    assert all(n > 4800 for n in loud.values()), loud
    note = parse_note(row["detail"])
    assert note is not None and (note.heard, note.total) == (3, 3), row


def test_a_cluster_lost_mid_broadcast_is_logged_and_alerted_then_rejoins(
    village: Village,
) -> None:
    lost = village.clients["cum-tay-2"]

    def kill_when_it_plays() -> None:
        wait_for(lambda: lost.first_loud() is not None, 20, "cum-tay-2 playing")
        lost.kill()

    lost.mark()  # what the last test played is behind the mark
    killer = threading.Thread(target=kill_when_it_plays, daemon=True)
    killer.start()
    row = village.broadcast(
        "Thông báo: sáng mai thôn tổ chức tổng vệ sinh đường làng, mời bà con tham gia.",
        ["all"],
    )
    killer.join(5)
    assert row["status"] == "played", row
    note = parse_note(row["detail"])
    assert note is not None and (note.heard, note.total) == (2, 3), row
    assert note.dropped == ("Tây 2",), row
    h = village.hub.hub

    def open_alerts() -> list[Any]:
        return [a for a in h.alerts.query("open", None, None) if a.rule == RULE]

    [alert] = open_alerts()
    assert alert.message.startswith("cum-tay-2:"), alert
    # The head sees it on the dashboard's on-air card.
    browser = _sign_in(village.hub, "head")
    try:
        page = browser.get("/app/").text
    finally:
        browser.close()
    assert "Phát trên 2/3 cụm loa; Tây 2 bị ngắt giữa chừng" in page
    lost.start()  # it rejoins: the alert clears
    wait_for(lambda: not open_alerts(), 10, "the alert cleared")
    assert village.clusters.reach(["xom-tay"]).connected == {"cum-tay-1", "cum-tay-2"}


def test_the_hub_restarts_while_the_clusters_stay_up(village: Village) -> None:
    village.stop_hub()
    village.start_hub()  # the same database, the same snapserver; clients never left
    row = village.broadcast("Tin buổi sáng.", ["all"])
    assert row["status"] == "played", row
    loud = village.loud()
    assert all(n > 4800 for n in loud.values()), loud
    assert parse_note(row["detail"]) is not None
