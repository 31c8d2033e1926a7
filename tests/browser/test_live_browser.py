"""Live from the phone, end to end: Chromium on a 390x844 phone with a fake microphone (a WAV
of a tone, ``--use-file-for-fake-audio-capture``) signed in as the head, the hub in this
process on the system clock with the speaker clusters on (a real snapserver, two real
snapclients with the file player: ``cum-dong`` in xóm Đông, ``cum-tay`` in xóm Tây).
"""

from __future__ import annotations

import json
import math
import os
import struct
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hub.clock import SystemClock
from hub.store import read_models
from tests.broker import Broker
from tests.browser.conftest import ARGS, CHROMIUM, _need_chromium
from tests.browser.phone import Phone
from tests.hubtest import hub_settings, wait_for
from tests.integration.test_live import attach_live
from tests.integration.web_fixture import WebHub
from tests.snapcast import SnapClientProc, SnapServer, have_snapcast

pytestmark = [
    pytest.mark.broker,
    pytest.mark.skipif(
        not have_snapcast() and os.environ.get("CI") != "true", reason="no snapserver"
    ),
]

CLUSTERS = {"cum-dong": ("xom-dong", "Cụm Đông"), "cum-tay": ("xom-tay", "Cụm Tây")}


def _mic_wav(path: Path) -> Path:
    """What the fake microphone says: a 300 Hz tone, 1 s on a loop (48 kHz, as a phone)."""
    rate = 48000
    frames = [int(9000 * math.sin(2 * math.pi * 300 * i / rate)) for i in range(rate)]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(struct.pack(f"<{len(frames)}h", *frames))
    return path


class Village:
    def __init__(self, web: WebHub, clients: dict[str, SnapClientProc]) -> None:
        self.web, self.clients = web, clients


@pytest.fixture(scope="module")
def village(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Village]:
    work = tmp_path_factory.mktemp("live-browser")
    server = SnapServer(work / "snapserver", buffer_ms=400)
    clients = {cid: SnapClientProc(server, cid, work) for cid in CLUSTERS}
    chime = work / "chime.wav"
    with wave.open(str(chime), "wb") as w:  # a short chime: the test does not wait 2 s
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(bytes(2 * 1600) + struct.pack("<1600h", *([8000, -8000] * 800)))
    settings = hub_settings(
        broker,
        work / "hub",
        **server.hub_env(),
        LANGSO_CLUSTERS__POLL_S="0.5",
        LANGSO_CLUSTERS__AMP_TAIL_S="0.2",
        LANGSO_HEALTH__DEVICES=json.dumps(
            {cid: {"zone": z, "name": n} for cid, (z, n) in CLUSTERS.items()}
        ),
        LANGSO_HEALTH__CHECK_INTERVAL_S="3600",
        LANGSO_GPIO__LEAD_IN_S="0.2",
        LANGSO_GPIO__TAIL_S="0.3",
        LANGSO_AUDIO__CHIME=str(chime),
    )
    pub = paho.Client(CallbackAPIVersion.VERSION2)
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    topics = [f"village/{settings.site}/speaker/{cid}/status" for cid in CLUSTERS]
    for t in topics:
        pub.publish(t, b"online", qos=1, retain=True).wait_for_publish(5)
    web = WebHub(settings, SystemClock())
    try:
        attach_live(web)
        h = web.hub
        wait_for(lambda: len(h.devices.query("speaker")) == 2, 30, "two speaker devices")
        assert h.clusters is not None
        wait_for(lambda: len(h.clusters.reach(["all"]).connected) == 2, 30, "two snapclients")
        yield Village(web, clients)
    finally:
        for t in topics:
            pub.publish(t, b"", qos=1, retain=True).wait_for_publish(5)
        pub.disconnect()
        pub.loop_stop()
        web.stop()
        for cl in clients.values():
            cl.stop()
        server.stop()


@pytest.fixture(scope="module")
def mic_browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    _need_chromium()
    from playwright.sync_api import sync_playwright

    wav = _mic_wav(tmp_path_factory.mktemp("mic") / "voice.wav")
    media = [
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
        "--autoplay-policy=no-user-gesture-required",
    ]
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[*ARGS, *media])
        try:
            yield b
        finally:
            b.close()


def test_the_head_goes_live_from_the_phone_and_one_zone_hears_it(
    village: Village, mic_browser: Any, artifacts: Path
) -> None:
    web = village.web
    phone = Phone(mic_browser, web, prefix="live-", timeout_ms=15000, permissions=["microphone"])
    try:
        phone.sign_in("truong-thon-live", "head")
        phone.page.click("[data-live-link]")  # from the dashboard
        phone.page.wait_for_url("**/app/live")
        phone.page.uncheck("input[name=zone][value=all]")
        phone.page.check("input[name=zone][value=xom-tay]")
        for c in village.clients.values():
            c.mark()
        phone.page.click("#live-start")
        phone.page.wait_for_selector("#live-state[data-state=on_air]")
        phone.page.wait_for_selector("#live-level:not([hidden])")
        tay, dong = village.clients["cum-tay"], village.clients["cum-dong"]
        # Half a second of the head's voice at xóm Tây's cluster (48 kHz samples).
        wait_for(lambda: tay.loud_samples() > 24000, 10, "the voice at cum-tay")
        phone.shot(artifacts, "on-air")
        phone.page.click("#live-stop")
        phone.page.wait_for_selector("#live-state[data-state=ended-stopped]")
        phone.page.wait_for_selector("#live-recording:not([hidden])")
        phone.shot(artifacts, "ended")
    finally:
        phone.close()
    assert dong.loud_samples() == 0  # the other zone's cluster stayed muted
    h = web.hub
    [row] = [
        b for b in read_models.logged(h.store, limit=10) if b.announcement_id.startswith("live-")
    ]
    assert row.status == "played" and row.zones == ("xom-tay",), row
    assert "ended: stopped" in (row.detail or "") and "clusters 1/1" in (row.detail or ""), row
    a = h.announcements.table.row(row.announcement_id)
    assert a is not None and a["category"] == "live" and Path(a["render_web"]).exists()
