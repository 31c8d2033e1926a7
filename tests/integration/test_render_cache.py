"""The render cache on an SD card, with real renders (espeak-ng, ffmpeg), a real broker and
real HTTP: identical audio stored once, a size budget that holds, emergencies kept, and a
first start with the shipped rules that renders a small, bounded set."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from audio.cache import MIB
from audio.normalize import normalize
from devices.simulation.model import VillageModel
from devices.simulator import Simulator
from hub.clock import FakeClock
from tests.broker import Broker
from tests.hubtest import InProcessHub, hub_settings, wait_for

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 08:00 in the village
BUDGET_MB = 0.19  # a meeting, an emergency and two words said once, nearly


def entries(render_dir: Path) -> dict[str, int]:
    """Cache entries on disk (key -> bytes of its files), measured here, not by the cache."""
    out: dict[str, int] = {}
    for f in render_dir.iterdir():
        if not f.name.startswith("."):
            key = f.name.split(".", 1)[0]
            out[key] = out.get(key, 0) + f.stat().st_size
    return out


def key_of(path: str) -> str:
    return Path(path).name.split(".", 1)[0]


@pytest.fixture(scope="module")
def small(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessHub]:
    """A hub with a tiny render cache: short texts, no chimes, one emergency repeat."""
    settings = hub_settings(
        broker,
        tmp_path_factory.mktemp("small") / "hub",
        LANGSO_AUDIO__RENDER_CACHE_MB=str(BUDGET_MB),
        LANGSO_AUDIO__PRERENDER_MAX="0",
        LANGSO_AUDIO__CHIME="none",
        LANGSO_AUDIO__REPEAT_GAP_S="0.5",
        LANGSO_ANNOUNCEMENTS__EMERGENCY_REPEATS="1",
    )
    v = InProcessHub(settings, FakeClock(T0))
    yield v
    v.stop()


def test_identical_audio_is_stored_once_and_the_budget_holds(small: InProcessHub) -> None:
    v = small
    head = v.http("head")
    render_dir = v.settings.data_dir / "render"
    budget = BUDGET_MB * MIB

    def row(aid: str) -> dict[str, object]:
        r = v.hub.store.one("SELECT * FROM announcements WHERE id=?", (aid,))
        assert r is not None
        return dict(r)

    def preview(text: str) -> None:
        head.post("/api/tts/preview", json={"text": text}).raise_for_status()
        assert sum(entries(render_dir).values()) <= budget  # after every render

    preview("Một.")  # a listen preview nobody scheduled: the first to go
    [first] = entries(render_dir)
    # Two announcements of one text (tonight and in three days) reference one pair of files.
    tonight = (T0 + timedelta(hours=10)).isoformat()
    later = (T0 + timedelta(days=3)).isoformat()
    ids = []
    for title, at in (("Họp", tonight), ("Họp (nhắc lại)", later)):
        body = {"title": title, "text": "Họp thôn tối nay.", "category": "meeting"}
        r = head.post("/api/announcements", json=body | {"start_at": at, "meeting_at": at})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    a, b = (row(i) for i in ids)
    assert (a["render_wav"], a["render_web"], a["render_sha"]) == (
        b["render_wav"],
        b["render_web"],
        b["render_sha"],
    )
    assert len(entries(render_dir)) == 2  # the preview and the one meeting audio
    web = [head.get(f"/api/announcements/{i}/audio").content for i in ids]
    assert web[0] == web[1] and len(web[0]) > 1000
    # An emergency, played at once; its audio is never evicted.
    r = head.post(
        "/api/announcements",
        json={"title": "Khẩn", "text": "Bà con chú ý.", "priority": "emergency"},
    )
    assert r.status_code == 201, r.text
    emergency = key_of(str(row(r.json()["id"])["render_wav"]))
    assert json.loads((render_dir / f"{emergency}.json").read_text())["emergency"] is True
    meeting = key_of(str(a["render_wav"]))
    # Previews until the budget makes the cache evict (usually the first one does).
    for word in ("Hai.", "Ba.", "Bốn.", "Năm.", "Sáu."):
        if first not in entries(render_dir):
            break
        preview(word)
    # The least recently used went; what an emergency and tonight's meeting need stayed.
    on_disk = entries(render_dir)
    assert first not in on_disk, f"{BUDGET_MB} MB never filled: the sizes counted on changed"
    assert {meeting, emergency} <= set(on_disk)
    assert sum(on_disk.values()) <= budget
    assert v.hub.announcements.renderer.cache.size == sum(on_disk.values())  # running size
    # The same text again is a hit: no new file, nothing spoken.
    before = dict(on_disk)
    body = {"title": "Họp", "text": "Họp thôn tối nay.", "start_at": tonight}
    assert head.post("/api/announcements", json=body).status_code == 201
    assert entries(render_dir) == before


def test_audio_gone_before_its_time_is_rendered_again(small: InProcessHub) -> None:
    """Coming audio evicted as a last resort (or deleted by hand) is back before it plays."""
    v = small
    head = v.http("head")
    at = (T0 + timedelta(hours=20)).isoformat()
    r = head.post(
        "/api/announcements", json={"title": "Tin", "text": "Tin sáng mai.", "start_at": at}
    )
    assert r.status_code == 201, r.text
    aid = r.json()["id"]
    stored = v.hub.store.one("SELECT render_wav, render_sha FROM announcements WHERE id=?", (aid,))
    assert stored is not None
    wav = Path(stored["render_wav"])
    for f in wav.parent.glob(f"{wav.stem}.*"):
        f.unlink()
    v.hub.announcements.renderer.cache.rescan()
    # The pre-render pass (at start, after each retention sweep) finds it missing.
    v.hub.prerender()
    assert wav.is_file()
    again = v.hub.store.one("SELECT render_wav, render_sha FROM announcements WHERE id=?", (aid,))
    assert again is not None and tuple(again) == tuple(stored)  # the same name, the same audio
    assert head.get(f"/api/announcements/{aid}/audio").status_code == 200


def test_a_first_start_with_the_shipped_rules_renders_a_small_bounded_set(
    broker: Broker, tmp_path: Path
) -> None:
    settings = hub_settings(
        broker,
        tmp_path / "hub",
        LANGSO_RULES_FILE=str(ROOT / "config" / "rules.toml"),
        LANGSO_AUDIO__PRERENDER_MAX="2",
    )
    clock = FakeClock(T0)
    v = InProcessHub(settings, clock)
    stop = threading.Event()
    sim = Simulator(
        broker.host,
        broker.port,
        VillageModel(7, 0, 5, clock.now().timestamp(), site=settings.site, dropout_per_h=0),
        interval=0.2,
        clock=lambda: clock.now().timestamp(),
        client_id_prefix=f"sim-{tmp_path.name}",
    )
    runner = threading.Thread(target=sim.run, args=(stop,), daemon=True)
    runner.start()
    try:
        # `langso simulate --sensors 5`: two water-level gauges and three weather stations.
        got = wait_for(
            lambda: (
                (ds := [d for d in v.hub.ingest.devices() if d.kind == "sensor"])
                and len(ds) == 5
                and all(d.metrics for d in ds)
                and ds
            ),
            15,
            "five simulated sensors",
        )
        readings = {d.id: d.metrics for d in got}
        gauges = sorted(i for i, m in readings.items() if "water_level_cm" in m)
        assert len(gauges) == 2
        # The devices as the rules engine sees them (build_hub gives it this lookup).
        views = [view for d in got if (view := v.hub.rules._device(d.id)) is not None]
        texts = v.hub.rules.emergency_texts(views, readings)
        # Levels 2 and 3 for each gauge, whole values from the limit on; none for a weather
        # station; the panel button's text (from the emergency-button rule) first.
        assert texts[0]["text"] == settings.announcements.emergency_text
        flood = texts[1:]
        assert len(flood) == 2 * 2 * 11
        nearest = min(gauges, key=lambda g: 220 - readings[g]["water_level_cm"])
        assert "220 cm" in flood[0]["text"] and "báo động 2" in flood[0]["text"]
        level2 = v.hub.rules.rules["flood-level-2"]
        assert v.hub.rules.context(level2, nearest, {}, 0)["device.spoken"] in flood[0]["text"]

        # The pre-render pass as the hub runs it: at most audio.prerender_max. The button's
        # fixed text is rendered whole; a flood text (its level said when the rule fires)
        # only gets its frame, in memory: nothing written for it.
        renderer = v.hub.announcements.renderer
        assert v.hub.announcements.prerender(texts) == 2
        render_dir = settings.data_dir / "render"
        cached = entries(render_dir)
        assert len(cached) == 1
        meta = json.loads((render_dir / f"{next(iter(cached))}.json").read_text())
        assert meta["emergency"] and "khẩn cấp" in meta["text"].lower()
        # About 2 MB (three repeats of ~10 s at 22.05 kHz, plus the web copy).
        assert sum(cached.values()) <= 2.2 * MIB
        # The text nearest to being said: one frame, around its level (the gauge's number
        # and the alarm level are the same in all its texts), that every level fits.
        frames = list(renderer._frames.values())
        assert len(frames) == 1
        assert normalize(flood[0]["text"]).startswith(frames[0].said_before)
        assert frames[0].said_after.startswith(" xăng-ti-mét, vượt báo động hai.")
        assert frames[0].middle(flood[0]["text"].replace("220 cm", "347 cm")) == (
            "ba trăm bốn mươi bảy"
        )
        # A second pass finds them ready: nothing more made, nothing written.
        assert v.hub.announcements.prerender(texts) == 2
        assert entries(render_dir) == cached
        assert list(renderer._frames.values()) == frames
    finally:
        stop.set()
        runner.join(10)
        v.stop()
