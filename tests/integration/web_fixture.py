"""The hub with its web page, in this process: InProcessHub's parts plus ``mount_web``.

Mirrors :class:`tests.hubtest.InProcessHub` (fake clock, real broker, real HTTP on
127.0.0.1) and mounts the web page on the app. ``mount_web`` does nothing the
second time, so this keeps working once ``create_app`` mounts the web itself.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Sequence

import httpx
import paho.mqtt.client as paho
import uvicorn
from fastapi import FastAPI
from paho.mqtt.enums import CallbackAPIVersion

from hub.app import Hub, build_hub
from hub.bus import Bus
from hub.clock import Clock, FakeClock
from hub.server import create_app
from hub.services.users import Users
from hub.settings import Settings
from hub.web import mount_web
from tests.broker import Broker
from tests.hubtest import PASSWORD, InProcessHub, wait_for
from tests.storedata import readings_of


class WebHub(InProcessHub):
    """build_hub + create_app + mount_web, served by uvicorn on 127.0.0.1 in a thread."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or FakeClock()
        self.hub: Hub = build_hub(settings, clock=self.clock)
        self.url = f"http://127.0.0.1:{settings.http.port}"
        self.tokens: dict[str, str] = {}
        self._clients: dict[str, httpx.Client] = {}
        self.app: FastAPI = create_app(self.hub)
        mount_web(self.app, self.hub)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=settings.http.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, 10, "uvicorn to start")
        wait_for(lambda: self.hub.mqtt.connected, 10, "the hub to connect to the broker")

    @property
    def bus(self) -> Bus:
        bus: Bus = self.app.state.bus
        return bus

    def user(self, name: str, role: str, password: str = PASSWORD) -> None:
        if self.hub.store.one("SELECT 1 FROM users WHERE username=?", (name,)) is None:
            Users(self.hub.store).add(name, role, password, actor="test", now=0)

    def browser_client(self) -> httpx.Client:
        """A fresh client with its own cookie jar (a person with a phone); close it."""
        # Saving an announcement renders it (TTS, loudness, the web copy): a few seconds
        # on a loaded 2-core CI machine can pass 10.
        return httpx.Client(base_url=self.url, timeout=30, follow_redirects=False)

    def sign_in(self, name: str, role: str, password: str = PASSWORD) -> httpx.Client:
        """A client signed in through the web form (its session cookie set)."""
        self.user(name, role, password)
        c = self.browser_client()
        page = c.get("/app/login")
        csrf = form_value(page.text, "csrf")
        r = c.post("/app/login", data={"csrf": csrf, "username": name, "password": password})
        assert r.status_code == 303, (r.status_code, r.text[:500])
        return c


def status_of(web: WebHub, device_id: str) -> str | None:
    row = web.hub.store.one("SELECT status FROM devices WHERE id=?", (device_id,))
    return None if row is None else str(row["status"])


def form_value(html: str, name: str) -> str:
    """The value of the first hidden input called ``name`` in a page."""
    m = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', html)
    assert m, f"no input {name!r} in the page"
    return m.group(1)


def session_csrf(client: httpx.Client) -> str:
    """The CSRF token of a signed-in client, as its pages carry it."""
    page = client.get("/app/")
    assert page.status_code == 200, page.status_code
    return form_value(page.text, "csrf")


def publish_many(broker: Broker, messages: Sequence[tuple[str, str | bytes, bool]]) -> None:
    """Publish through the real broker at QoS 1 and wait for every PUBACK."""
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"seed-{time.monotonic_ns()}")
    c.max_inflight_messages_set(100)
    c.connect(broker.host, broker.port)
    c.loop_start()
    try:
        infos = [
            c.publish(topic, payload, qos=1, retain=retain) for topic, payload, retain in messages
        ]
        for info in infos:
            info.wait_for_publish(10)
    finally:
        c.loop_stop()
        c.disconnect()


def seed_village(web: WebHub, broker: Broker) -> None:
    """A small village with a day of history: two APs (one will go offline), a water
    level sensor, a busy AP that turns degraded. Device timestamps spread the readings
    over the past 24 h of the fake clock."""
    site = web.settings.site
    now = web.clock.now().timestamp()
    msgs: list[tuple[str, str | bytes, bool]] = [
        (f"village/{site}/ap/ap-nha-van-hoa/status", "online", True),
        (f"village/{site}/ap/ap-xom-bac/status", "online", True),
        (f"village/{site}/sensor/muc-nuoc-song/status", "online", True),
    ]
    rx = tx = 0.0
    for i in range(96):  # every 15 min for 24 h
        ts = now - (95 - i) * 900
        hour = (ts / 3600 + 7) % 24  # village local time
        busy = max(0.0, math.sin((hour - 6) / 24 * 2 * math.pi))
        rx += 40_000_000 * busy + 2_000_000
        tx += 8_000_000 * busy + 500_000
        msgs.append(
            (
                f"village/{site}/ap/ap-nha-van-hoa/state",
                json.dumps(
                    {
                        "ts": ts,
                        "clients": round(3 + 25 * busy),
                        "signal_dbm": round(-58 - 6 * busy),
                        "cpu_pct": round(12 + 40 * busy),
                        "temp_c": round(41 + 8 * busy, 1),
                        "rx_bytes": rx,
                        "tx_bytes": tx,
                        "ssid": "LangSo-Free",
                    }
                ),
                False,
            )
        )
        if i % 2 == 0:
            msgs.append(
                (
                    f"village/{site}/sensor/muc-nuoc-song/state",
                    json.dumps(
                        {"ts": ts, "water_level_cm": round(150 + 30 * busy), "battery_pct": 80}
                    ),
                    False,
                )
            )
    msgs.append((f"village/{site}/ap/ap-xom-bac/state", json.dumps({"clients": 4}), False))
    publish_many(broker, msgs)
    wait_for(
        lambda: len(readings_of(web.hub.store.connection(), "ap-nha-van-hoa")) >= 96,
        10,
        "the seeded history stored",
    )
