"""GET /api/voices and the listen preview, over real HTTP on a hub whose renderer speaks
through the voice engine (espeak-ng, and the stand-in Piper voice installed)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from gpiozero.pins.mock import MockFactory

from audio.tts import EspeakNG
from audio.voices import VoiceEngine, VoiceFolder
from hub.api import voices
from hub.app import Hub, build_hub
from hub.clock import FakeClock
from hub.server import create_app
from hub.services.users import Users
from tests.broker import Broker
from tests.hubtest import PASSWORD, hub_settings, wait_for
from tests.integration.voice_fixture import VOICE, voice_folder


class VoiceHub:
    """build_hub with the voice engine, create_app with the voices routes, on 127.0.0.1."""

    def __init__(self, broker: Broker, data_dir: Path) -> None:
        settings = hub_settings(broker, data_dir)
        folder = VoiceFolder(voice_folder(data_dir / "voices"))
        self.hub: Hub = build_hub(
            settings,
            clock=FakeClock(),
            pin_factory=MockFactory(),
            engine_factory=lambda: VoiceEngine(EspeakNG(), folder, default_voice="north"),
        )
        app = create_app(self.hub)
        app.include_router(voices.router)
        self.url = f"http://127.0.0.1:{settings.http.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=settings.http.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, 10, "uvicorn to start")
        self.clients: list[httpx.Client] = []

    def client(self, role: str) -> httpx.Client:
        Users(self.hub.store).add(f"{role}1", role, PASSWORD, actor="test", now=0)
        token = httpx.post(
            f"{self.url}/api/auth/token", data={"username": f"{role}1", "password": PASSWORD}
        ).json()["access_token"]
        c = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        self.clients.append(c)
        return c

    def stop(self) -> None:
        for c in self.clients:
            c.close()
        self.server.should_exit = True
        self.thread.join(15)


@pytest.fixture(scope="module")
def vhub(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceHub]:
    h = VoiceHub(broker, tmp_path_factory.mktemp("voices-api"))
    yield h
    h.stop()


def test_the_voices_one_can_choose(vhub: VoiceHub) -> None:
    head = vhub.client("head")
    listed = head.get("/api/voices").json()
    assert [v["id"] for v in listed] == ["north", "central", "south", VOICE]
    assert [v["id"] for v in listed if v["default"]] == ["north"]
    joe = listed[-1]
    assert (joe["engine"], joe["language"], joe["sample_rate"], joe["status"]) == (
        "piper",
        "en_US",
        22050,
        "ok",
    )
    assert httpx.get(f"{vhub.url}/api/voices").status_code == 401


def test_listen_renders_through_the_same_engine(vhub: VoiceHub) -> None:
    tech = vhub.client("technician")
    r = tech.post(f"/api/voices/{VOICE}/listen", json={})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(("audio/ogg", "audio/mpeg"))
    assert (r.headers["x-voice-engine"], r.headers["x-voice-status"]) == ("piper", "ok")
    assert len(r.content) > 5_000
    engine = vhub.hub.announcements.renderer.engine
    assert isinstance(engine, VoiceEngine) and engine.fallback_count == 0
    assert tech.post("/api/voices/piper:nope/listen", json={}).status_code == 404
    # A preview is a render: a few per minute, then 429 with Retry-After.
    codes = [
        tech.post("/api/voices/north/listen", json={"text": "Thử loa"}).status_code
        for _ in range(voices.LISTEN_LIMIT)
    ]
    assert codes[:-1] == [200] * (voices.LISTEN_LIMIT - 1) and codes[-1] == 429


def test_an_announcement_naming_a_voice_never_installed_is_refused(vhub: VoiceHub) -> None:
    r = vhub.client("admin").post(
        "/api/announcements",
        json={"title": "Họp", "text": "Mời bà con đi họp", "voice": "piper:typo"},
    )
    assert r.status_code == 422
    assert "installed Piper voices: " + VOICE in r.json()["detail"]
