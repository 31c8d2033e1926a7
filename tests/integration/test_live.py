"""Live from the phone, through the hub's WebSocket: a real Mosquitto, real HTTP and
WebSocket on 127.0.0.1, real ffmpeg, the file sink (no clusters: the live voice goes to
the local sink), MockFactory pins for the amplifier. The hub runs on the system clock: a
live voice flows in real time, lead-in and tail are short (0.2 s, 0.3 s).
"""

from __future__ import annotations

import json
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.broadcast.live import LiveBroadcasts
from hub.broadcast.live_settings import LiveSettings
from hub.clock import SystemClock
from hub.services.users import Users
from hub.store import read_models
from tests.broker import Broker
from tests.hubtest import PASSWORD, InProcessHub, hub_settings, wait_for
from tests.integration.web_fixture import form_value
from tests.live_client import LivePhone, tone

pytestmark = pytest.mark.broker

AMP = 17
LOUD = 1000
CHIME_S = 0.4


def attach_live(h: InProcessHub, **live: Any) -> LiveBroadcasts:
    """The hub's live broadcasts (build_hub's), or one with other ``live`` settings."""
    hub = h.hub
    settings = hub.settings
    if live:
        settings = settings.model_copy(
            update={"live": LiveSettings(**{**settings.live.model_dump(), **live})}
        )
    if hub.live is not None and not live:
        return hub.live
    service = LiveBroadcasts(
        settings,
        hub.store,
        hub.clock,
        table=hub.announcements.table,
        playout=hub.playout,
        events=hub.events,
    )
    hub.live = service
    return service


def write_chime(path: Path, seconds: float = CHIME_S) -> Path:
    """A short chime (audio.chime takes a file): the tests hear it without waiting 2 s."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(tone(seconds, 880.0))
    return path


@pytest.fixture(scope="module")
def live_hub(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessHub]:
    work = tmp_path_factory.mktemp("live")
    settings = hub_settings(
        broker,
        work / "hub",
        LANGSO_AUDIO__SINK="file",
        LANGSO_AUDIO__FILE_DIR=str(work / "out"),
        LANGSO_GPIO__LEAD_IN_S="0.2",
        LANGSO_GPIO__TAIL_S="0.3",
        LANGSO_LIVE__IDLE_S="1",
        LANGSO_AUDIO__CHIME=str(write_chime(work / "chime.wav")),
        LANGSO_ANNOUNCEMENTS__EMERGENCY_REPEATS="1",
        LANGSO_ANNOUNCEMENTS__REQUIRE_CLOCK_SYNC="false",
    )
    h = InProcessHub(settings, SystemClock())
    attach_live(h)
    try:
        yield h
    finally:
        h.stop()


def phone(h: InProcessHub, role: str = "head") -> LivePhone:
    p = LivePhone(h.url)
    p.start(["xom-dong"], token=h.token(role), title="Họp khẩn tổ 3")
    return p


def amp_states(h: InProcessHub) -> list[bool]:
    return [s.state for s in h.pins.pin(AMP).states]


def row_of(h: InProcessHub, aid: str) -> Any:
    for b in read_models.logged(h.hub.store, limit=20):
        if b.announcement_id == aid and b.status != "playing":
            return b
    return None


def loud_seconds(wav: Path) -> float:
    with wave.open(str(wav), "rb") as w:
        data = w.readframes(w.getnframes())
        rate = w.getframerate()
    samples = memoryview(data).cast("h")
    return sum(1 for v in samples if abs(v) > LOUD) / rate


def test_the_head_goes_live_heard_between_chimes_and_the_recording_is_kept(
    live_hub: InProcessHub,
) -> None:
    h = live_hub
    before = len(amp_states(h))
    p = phone(h)
    try:
        p.wait("state", "on_air")
        p.say(tone(1.5))
        p.stop()
        ended = p.wait("ended")
    finally:
        p.close()
    assert ended["reason"] == "stopped", ended
    assert 1.2 <= ended["seconds"] <= 1.8, ended
    aid = ended["id"]
    b = wait_for(lambda: row_of(h, aid), 5, "the as-run row")
    assert b.status == "played" and b.zones == ("xom-dong",), b
    assert b.detail.startswith("live 1."), b.detail
    assert "ended: stopped" in b.detail
    # The amplifier: on before the chime, off after the tail, once.
    wait_for(lambda: amp_states(h)[-1] is False, 5, "the amplifier off")
    assert amp_states(h)[before:] == [True, False]
    # The local sink got chime, voice, chime: more sound than the voice alone.
    [record] = [
        json.loads(f.read_text())
        for f in (h.settings.audio.file_dir or Path()).glob("*.json")
        if aid in f.name
    ]
    assert record["live"] is True
    out = (h.settings.audio.file_dir or Path()) / record["wav"]
    # The voice and the two chimes (each a little shorter once decoded and faded).
    assert loud_seconds(out) > 1.3 + 2 * (CHIME_S - 0.1), loud_seconds(out)
    # The recording is the announcement's audio (web and WAV), for the history pages.
    assert ended["recording"] == f"/api/announcements/{aid}/audio"
    r = h.http("head").get(ended["recording"])
    assert r.status_code == 200 and len(r.content) > 1000, r.status_code
    a = h.http("head").get(f"/api/announcements/{aid}").json()
    assert a["category"] == "live" and a["title"] == "Họp khẩn tổ 3", a
    assert 1.2 <= a["duration_s"] <= 1.8, a
    wav = h.http("head").get(f"{ended['recording']}?format=wav")
    assert wav.status_code == 200 and wav.content[:4] == b"RIFF"
    audit = h.hub.store.query("SELECT action FROM audit_log WHERE target=?", (aid,))
    assert [r["action"] for r in audit] == ["live.start", "live.end"]


def test_the_page_is_the_heads_and_linked_from_the_dashboard(live_hub: InProcessHub) -> None:
    h = live_hub
    for role, status in (("head", 200), ("technician", 403)):
        name = f"{role}-live-page"
        if h.hub.store.one("SELECT 1 FROM users WHERE username=?", (name,)) is None:
            Users(h.hub.store).add(name, role, PASSWORD, actor="test", now=0)
        with httpx.Client(base_url=h.url, timeout=10) as c:
            csrf = form_value(c.get("/app/login").text, "csrf")
            c.post("/app/login", data={"csrf": csrf, "username": name, "password": PASSWORD})
            page = c.get("/app/live")
            assert page.status_code == status, (role, page.status_code)
            if role == "head":
                assert 'id="live-start"' in page.text and "/static/live.js" in page.text
                assert 'href="/app/live"' in c.get("/app/").text


def test_a_technician_is_refused_and_a_second_live_gets_409(live_hub: InProcessHub) -> None:
    h = live_hub
    tech = phone(h, "technician")
    try:
        refused = tech.wait("refused")
        assert refused["status"] == 403, refused
        assert tech.wait_closed() == 4403
    finally:
        tech.close()
    first = phone(h)
    try:
        first.wait("state", "on_air")
        assert h.http("technician").get("/api/live").json()["on_air"] is True
        second = phone(h, "admin")
        try:
            refused = second.wait("refused")
            assert refused["status"] == 409 and "one at a time" in refused["detail"], refused
            assert second.wait_closed() == 4409
        finally:
            second.close()
        first.stop()
        assert first.wait("ended")["reason"] == "stopped"
    finally:
        first.close()
    # Another site's page cannot open it with the head's cookie.
    with pytest.raises(Exception, match="403"):
        LivePhone(h.url, headers={"Origin": "http://evil.example"})


def test_a_dropped_connection_ends_it_within_seconds_amplifier_off(
    live_hub: InProcessHub,
) -> None:
    h = live_hub
    p = phone(h)
    p.wait("state", "on_air")
    aid = p.wait("state", "on_air")["id"]
    p.say(tone(0.4))
    p.hush()
    p.ws.socket.close()  # the wifi goes: no close frame
    b = wait_for(lambda: row_of(h, aid), 6, "the broadcast ended")
    assert b.status == "played" and "ended: lost" in b.detail, b
    wait_for(lambda: amp_states(h)[-1] is False, 2, "the amplifier off")
    assert h.http("head").get("/api/live").json()["on_air"] is False


def test_silence_from_a_connected_phone_is_a_lost_connection(live_hub: InProcessHub) -> None:
    h = live_hub
    p = phone(h)
    try:
        p.wait("state", "on_air")
        p.hush()
        ended = p.wait("ended", timeout=8)  # idle_s = 1
    finally:
        p.close()
    assert ended["reason"] == "lost", ended


def test_an_emergency_preempts_a_live_broadcast(live_hub: InProcessHub) -> None:
    h = live_hub
    p = phone(h)
    try:
        aid = p.wait("state", "on_air")["id"]
        p.say(tone(0.3))
        r = h.http("head").post(
            "/api/announcements",
            json={"title": "Lũ", "text": "Khẩn cấp.", "priority": "emergency", "zones": ["all"]},
        )
        assert r.status_code == 201, r.text
        eid = r.json()["id"]
        ended = p.wait("ended", timeout=20)
    finally:
        p.close()
    assert ended["reason"] == "preempted", ended
    assert row_of(h, aid).status == "preempted"
    b = wait_for(lambda: row_of(h, eid), 30, "the emergency played")
    assert b.status == "played", b
    # The live broadcast was not rebooked behind it.
    assert all(j.announcement_id != aid for j in h.hub.playout.pending)


def test_the_time_cap_ends_it_with_the_closing_chime(live_hub: InProcessHub) -> None:
    h = live_hub
    normal = attach_live(h)
    attach_live(h, max_s=1.0)
    try:
        p = phone(h)
        try:
            p.wait("state", "on_air")
            p.say(tone(1.6))
            ended = p.wait("ended")
        finally:
            p.close()
    finally:
        h.hub.live = normal
    assert ended["reason"] == "cap", ended
    assert 0.9 <= ended["seconds"] <= 1.2, ended
