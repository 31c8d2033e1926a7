"""Announcements end to end: real espeak-ng, ffmpeg, SQLite, broker and HTTP; a fake clock,
the file sink, and gpiozero's MockFactory for the amplifier and zone relays."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from audio.sinks.file import FileSink
from hub.clock import FakeClock
from hub.settings import Settings, load_settings
from tests.broker import Broker, free_port
from tests.hubtest import PASSWORD, InProcessHub, hub_settings, wait_for

pytestmark = pytest.mark.broker

VN_OFFSET = timedelta(hours=7)
T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)  # 07:00 in the village
AMP, XOM_DONG, XOM_TAY, LED = 17, 27, 22, 23


def local(dt: datetime) -> str:
    """A request time without offset: the village's local time."""
    return (dt.astimezone(UTC) + VN_OFFSET).replace(tzinfo=None).isoformat()


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Village:
    """A hub on a fake clock with a file sink, plus the trace of what the PA did."""

    def __init__(
        self, broker: Broker, data: Path, clock: FakeClock, *, speed: float = 0, **env: str
    ) -> None:
        self.clock = clock
        self.out = data / "out"
        self.settings = hub_settings(broker, data, **env)
        self.hub = InProcessHub(
            self.settings, clock, sink=FileSink(self.out, speed=speed, clock=clock.now)
        )
        self.trace: list[tuple[str, datetime]] = []
        self.hub.hub.playout.trace = lambda what, at: self.trace.append((what, at))

    def head(self) -> Any:
        return self.hub.http("head")

    def broadcasts(self) -> list[dict[str, Any]]:
        r = self.hub.http().get("/api/broadcasts", params={"limit": 100})
        assert r.status_code == 200
        return list(reversed(r.json()))  # oldest first

    def pin(self, n: int) -> list[bool]:
        return [s.state for s in self.hub.pins.pin(n).states]

    def stop(self) -> None:
        self.hub.stop()


@pytest.fixture
def village(broker: Broker, tmp_path: Path) -> Iterator[Village]:
    v = Village(broker, tmp_path / "hub", FakeClock(T0))
    yield v
    v.stop()


def test_announcement_plays_on_its_second_with_amplifier_lead_in_and_zones(
    village: Village,
) -> None:
    due = T0 + timedelta(minutes=2)
    r = village.head().post(
        "/api/announcements",
        json={
            "title": "Họp thôn",
            "text": "Mời bà con đến họp lúc 19h30 tại nhà văn hóa thôn.",
            "category": "meeting",
            "meeting_at": local(due + timedelta(hours=12)),
            "zones": ["xom-dong"],
            "start_at": local(due),
        },
    )
    assert r.status_code == 201, r.text
    a = r.json()
    assert (a["status"], a["next_run"], a["zones"]) == ("scheduled", iso(due), ["xom-dong"])
    assert a["duration_s"] > 3  # chimes + speech
    village.hub.run_until(lambda: village.broadcasts(), what="the broadcast")
    [b] = village.broadcasts()
    assert (b["status"], b["scheduled_for"], b["started_at"]) == ("played", iso(due), iso(due))
    times = dict(village.trace)
    lead = village.settings.gpio.lead_in_s
    assert times["play"] == due
    assert due - times["amp_on"] >= timedelta(seconds=lead)
    village.hub.run_until(lambda: "amp_off" in dict(village.trace), what="amplifier off")
    times = dict(village.trace)
    assert times["amp_off"] - due >= timedelta(seconds=village.settings.gpio.tail_s)
    # The whole pin histories: off, on for the broadcast, off again; the other zone never.
    assert village.pin(AMP) == [False, True, False]
    assert village.pin(XOM_DONG) == [False, True, False]
    assert True not in village.pin(XOM_TAY)
    assert village.pin(LED) == [False, True, False]
    # The file sink got the rendered WAV, started on the second.
    sidecars = [json.loads(p.read_text()) for p in village.out.glob("*.json")]
    assert [(s["announcement_id"], s["zones"]) for s in sidecars] == [(a["id"], ["xom-dong"])]
    one = village.hub.http().get(f"/api/announcements/{a['id']}").json()
    assert one["status"] == "done" and one["next_run"] is None
    assert one["last_broadcast"]["status"] == "played"
    audio = village.hub.http().get(f"/api/announcements/{a['id']}/audio")
    assert audio.status_code == 200 and audio.headers["content-type"].startswith("audio/")


def test_emergency_preempts_and_the_preempted_one_is_rebooked(
    broker: Broker, tmp_path: Path
) -> None:
    v = Village(broker, tmp_path / "hub", FakeClock(T0), speed=4)
    try:
        head = v.head()
        long_text = "Thông báo về lịch tiêm phòng cho gia súc gia cầm. " * 6
        normal = head.post(
            "/api/announcements", json={"title": "Tiêm phòng", "text": long_text}
        ).json()
        v.hub.run_until(
            lambda: v.hub.hub.playout.state.state == "playing", step=0.25, what="normal on air"
        )
        emergency = head.post(
            "/api/announcements",
            json={
                "title": "Bão số 9",
                "text": "Bão số 9 đổ bộ, bà con ở trong nhà.",
                "category": "emergency",
                "priority": "emergency",
            },
        ).json()
        assert emergency["status"] in ("scheduled", "done")  # it may be handed over already
        v.hub.run_until(
            lambda: len([b for b in v.broadcasts() if b["status"] == "played"]) == 2,
            step=0.25,
            limit=900,
            what="emergency then the rebooked one",
        )
        # In the order they went on air (the rebooked one keeps its scheduled instant).
        on_air = sorted(v.broadcasts(), key=lambda b: b["started_at"])
        log = [(b["announcement_id"], b["status"]) for b in on_air]
        assert log == [
            (normal["id"], "preempted"),
            (emergency["id"], "played"),
            (normal["id"], "played"),
        ]
        played = {b["announcement_id"]: b for b in v.broadcasts() if b["status"] == "played"}
        assert played[emergency["id"]]["started_at"] < played[normal["id"]]["started_at"]
    finally:
        v.stop()


def test_quiet_hours_hold_normal_but_never_emergency(broker: Broker, tmp_path: Path) -> None:
    night = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # 22:00 in the village
    v = Village(broker, tmp_path / "hub", FakeClock(night))
    try:
        normal = (
            v.head()
            .post("/api/announcements", json={"title": "Tin tối", "text": "Tin buổi tối."})
            .json()
        )
        v.hub.run_until(lambda: v.clock.now() >= night + timedelta(minutes=5), step=30)
        assert v.broadcasts() == []  # held back
        em = (
            v.head()
            .post(
                "/api/announcements",
                json={
                    "title": "Lũ",
                    "text": "Nước lũ lên nhanh.",
                    "priority": "emergency",
                    "category": "emergency",
                },
            )
            .json()
        )
        v.hub.run_until(lambda: v.broadcasts(), what="emergency at night")
        assert [(b["announcement_id"], b["status"]) for b in v.broadcasts()] == [
            (em["id"], "played")
        ]
        v.hub.run_until(
            lambda: len(v.broadcasts()) == 2,
            step=300,
            limit=9 * 3600,
            what="the normal one after quiet hours",
        )
        [b] = [b for b in v.broadcasts() if b["announcement_id"] == normal["id"]]
        assert b["status"] == "played"
        started = datetime.fromisoformat(b["started_at"].replace("Z", "+00:00"))
        assert (started + VN_OFFSET).strftime("%H:%M") >= "05:30"
    finally:
        v.stop()


def test_restart_mid_schedule_and_missed_occurrences(broker: Broker, tmp_path: Path) -> None:
    clock = FakeClock(T0)  # 07:00
    data = tmp_path / "hub"
    v = Village(broker, data, clock)
    a = (
        v.head()
        .post(
            "/api/announcements",
            json={
                "title": "Bản tin sáng",
                "text": "Bản tin buổi sáng.",
                "category": "news",
                "start_at": "2026-12-01T08:00:00",
                "rrule": "FREQ=DAILY",
            },
        )
        .json()
    )
    assert a["next_run"] == "2026-12-01T01:00:00Z"
    v.stop()
    # Down over 08:00; back at 08:05, inside the 10-minute grace: it still plays.
    clock.set(datetime(2026, 12, 1, 1, 5, tzinfo=UTC))
    v = Village(broker, data, clock)
    v.hub.run_until(lambda: v.broadcasts(), what="late play within grace")
    assert [b["status"] for b in v.broadcasts()] == ["played"]
    v.stop()
    # Down over the next day's 08:00 until 08:30: logged missed, the schedule goes on.
    clock.set(datetime(2026, 12, 2, 1, 30, tzinfo=UTC))
    v = Village(broker, data, clock)
    try:
        v.hub.run_until(lambda: len(v.broadcasts()) == 2, what="missed logged")
        assert [(b["scheduled_for"], b["status"]) for b in v.broadcasts()] == [
            ("2026-12-01T01:00:00Z", "played"),
            ("2026-12-02T01:00:00Z", "missed"),
        ]
        nxt = v.hub.http().get(f"/api/announcements/{a['id']}").json()["next_run"]
        assert nxt == "2026-12-03T01:00:00Z"
        v.hub.run_until(lambda: len(v.broadcasts()) == 3, step=600, limit=2 * 86400, what="day 3")
        assert v.broadcasts()[2]["status"] == "played"
    finally:
        v.stop()


def test_scheduled_items_wait_while_the_clock_is_not_synchronised(
    broker: Broker, tmp_path: Path
) -> None:
    # A scheduled item waits for a clock that is known; one that must play now does not
    # (tests/integration/test_clock_and_disk.py).
    synced = threading.Event()
    clock = FakeClock(T0)
    settings = hub_settings(broker, tmp_path / "hub")
    h = InProcessHub(
        settings,
        clock,
        sink=FileSink(tmp_path / "out", speed=0, clock=clock.now),
        synced=lambda: synced.is_set(),
    )
    try:
        h.http("head").post(
            "/api/announcements",
            json={"title": "x", "text": "Xin chào.", "start_at": "2026-12-01T07:05:00"},
        )
        tech = h.http("technician")
        alerts = h.run_until(
            lambda: [
                a
                for a in tech.get("/api/alerts", params={"state": "open"}).json()
                if a["rule"] == "clock_unsynced"
            ],
            what="clock alert",
        )
        assert "not synchronised" in alerts[0]["message"]
        h.run_until(lambda: h.clock.now() > T0 + timedelta(minutes=6), step=10.0)
        assert h.http().get("/api/broadcasts").json() == []
        synced.set()
        h.run_until(lambda: h.http().get("/api/broadcasts").json(), what="plays once synced")
        assert not [
            a
            for a in tech.get("/api/alerts", params={"state": "open"}).json()
            if a["rule"] == "clock_unsynced"
        ]
    finally:
        h.stop()


def test_mirrored_on_mqtt_and_cancel_clears_the_retained_copy(
    village: Village, broker: Broker
) -> None:
    site = village.settings.site
    got: dict[str, bytes] = {}
    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"mirror-{site}")
    sub.on_message = lambda c, u, m: got.__setitem__(m.topic, m.payload)
    sub.connect(broker.host, broker.port)
    sub.subscribe([(f"village/{site}/announcements/+", 1), (f"village/{site}/playout/state", 1)])
    sub.loop_start()
    try:
        a = (
            village.head()
            .post(
                "/api/announcements",
                json={
                    "title": "Họp",
                    "text": "Họp chi bộ.",
                    "start_at": local(T0 + timedelta(hours=3)),
                },
            )
            .json()
        )
        topic = f"village/{site}/announcements/{a['id']}"
        wait_for(lambda: got.get(topic), 5, "retained announcement")
        assert json.loads(got[topic])["id"] == a["id"]
        assert village.head().delete(f"/api/announcements/{a['id']}").json()["status"] == (
            "cancelled"
        )
        wait_for(lambda: got.get(topic) == b"", 5, "retained copy emptied")
        # A new subscriber sees nothing retained for it.
        late: list[str] = []
        s2 = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"late-{site}")
        s2.on_message = lambda c, u, m: late.append(m.topic)
        s2.connect(broker.host, broker.port)
        s2.subscribe(f"village/{site}/announcements/+", 1)
        s2.loop_start()
        wait_for(lambda: s2.is_connected(), 3)
        s2.loop_stop()
        s2.disconnect()
        assert topic not in late
    finally:
        sub.loop_stop()
        sub.disconnect()


def test_cmd_announce_over_mqtt(village: Village, broker: Broker) -> None:
    site = village.settings.site
    body = {"title": "Từ xã", "text": "Thông báo từ ủy ban xã.", "priority": "high"}
    subprocess.run(
        [
            "mosquitto_pub",
            "-h",
            broker.host,
            "-p",
            str(broker.port),
            "-q",
            "1",
            "-t",
            f"village/{site}/cmd/announce",
            "-m",
            json.dumps(body),
        ],
        check=True,
        timeout=10,
    )
    lst = wait_for(lambda: village.head().get("/api/announcements").json(), 10, "created")
    assert lst[0]["title"] == "Từ xã" and lst[0]["created_by"].startswith("mqtt:")
    village.hub.run_until(lambda: village.broadcasts(), what="played")


def test_bad_requests_get_a_reason_and_roles_are_checked(village: Village) -> None:
    head = village.head()
    cases = [
        ({"title": "x"}, "either text"),
        ({"title": "x", "text": "a", "audio_id": "nope"}, "either text"),
        ({"title": "x", "text": "a", "zones": ["xom-bac"]}, "unknown zone"),
        ({"title": "x", "text": "a", "rrule": "FREQ=SECONDLY"}, "FREQ"),
        ({"title": "x", "text": "a", "priority": "emergency", "rrule": "FREQ=DAILY"}, "recur"),
        ({"title": "x", "text": "a", "start_at": "2020-01-01T00:00:00"}, "past"),
        ({"title": "x", "audio_id": "nope"}, "no recording"),
        ({"title": "x", "text": "a", "priority": "urgent"}, "priority"),
        ({"title": "", "text": "a"}, "title"),
    ]
    for body, reason in cases:
        r = head.post("/api/announcements", json=body)
        assert r.status_code == 422, (body, r.text)
        assert reason in r.json()["detail"], (body, r.json())
    assert (
        village.hub.http().post("/api/announcements", json={"title": "x", "text": "a"}).status_code
        == 401
    )
    assert (
        village.hub.http("technician")
        .post("/api/announcements", json={"title": "x", "text": "a"})
        .status_code
        == 403
    )
    assert village.hub.http().get("/api/announcements/nope").status_code == 404
    assert village.hub.http().post("/api/broadcasts/stop").status_code == 401
    assert head.post("/api/broadcasts/stop").json() == {"stopped": False}


def _ffmpeg(out: Path, *args: str) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args, str(out)], check=True, timeout=60)
    return out


def test_upload_recordings_approval_and_public_visibility(broker: Broker, tmp_path: Path) -> None:
    v = Village(
        broker,
        tmp_path / "hub",
        FakeClock(T0),
        LANGSO_ANNOUNCEMENTS__REQUIRE_APPROVAL="true",
        LANGSO_AUDIO__MAX_UPLOAD_MB="0.2",
        LANGSO_AUDIO__MAX_UPLOAD_S="4",
    )
    try:
        head = v.head()
        tone = "sine=frequency=440:duration=2"
        ok = _ffmpeg(tmp_path / "voice.webm", "-f", "lavfi", "-i", tone, "-c:a", "libopus")
        r = head.post("/api/audio", files={"file": ("voice.webm", ok.read_bytes(), "audio/webm")})
        assert r.status_code == 201, r.text
        rec = r.json()
        assert 1.9 < rec["duration_s"] < 2.2
        long = _ffmpeg(
            tmp_path / "long.mp3",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=8",
            "-b:a",
            "8k",
        )
        bad = [
            (("x.mp3", os.urandom(4000), "audio/mpeg"), 415),
            (("notes.txt", b"hello, not audio at all\n" * 50, "text/plain"), 415),
            (("big.wav", os.urandom(300_000), "audio/wav"), 413),
            (("long.mp3", long.read_bytes(), "audio/mpeg"), 422),
            (("empty.ogg", b"", "audio/ogg"), 422),
        ]
        for upload, status in bad:
            r = head.post("/api/audio", files={"file": upload})
            assert r.status_code == status, (upload[0], r.status_code, r.text)
            assert r.json()["detail"]
        # With approval on, a head's announcement is a draft until a second person approves.
        a = head.post("/api/announcements", json={"title": "Ghi âm", "audio_id": rec["id"]}).json()
        assert a["status"] == "draft"
        assert v.hub.http().get(f"/api/announcements/{a['id']}").status_code == 404
        assert head.post(f"/api/announcements/{a['id']}/approve").status_code == 403
        admin = v.hub.http("admin")
        approved = admin.post(f"/api/announcements/{a['id']}/approve")
        assert approved.status_code == 200 and approved.json()["status"] in (
            "scheduled",
            "done",  # the scheduler may already have handed it to the playout
        )
        v.hub.run_until(lambda: v.broadcasts(), what="the approved recording plays")
        assert v.hub.http().get(f"/api/announcements/{a['id']}").status_code == 200
        audit = v.hub.hub.store.query(
            "SELECT action FROM audit_log WHERE target=? ORDER BY id", (a["id"],)
        )
        assert [r["action"] for r in audit] == ["announcement.create", "announcement.approve"]
    finally:
        v.stop()


def test_patch_rerenders_and_reschedules(village: Village) -> None:
    head = village.head()
    a = head.post(
        "/api/announcements",
        json={"title": "Họp", "text": "Họp lúc 19h.", "start_at": local(T0 + timedelta(hours=2))},
    ).json()
    r = head.patch(
        f"/api/announcements/{a['id']}",
        json={"text": "Họp lúc 20h, đổi giờ.", "start_at": local(T0 + timedelta(hours=3))},
    )
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["id"] == a["id"] and b["next_run"] == iso(T0 + timedelta(hours=3))
    assert b["text"] == "Họp lúc 20h, đổi giờ." and b["duration_s"] != a["duration_s"]
    assert head.patch(f"/api/announcements/{a['id']}", json={"zones": ["mars"]}).status_code == 422


def _langso(
    settings: Settings, *args: str, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    """The real ``langso`` command, configured (as a shell would be) for this hub's address."""
    full = {**os.environ, "LANGSO_HTTP__HOST": "127.0.0.1"}
    full["LANGSO_HTTP__PORT"] = str(settings.http.port)
    full.pop("LANGSO_CONFIG", None)
    full.pop("LANGSO_PASSWORD", None)
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "hub", *args],
        capture_output=True,
        text=True,
        input=stdin,
        env=full,
        timeout=120,
        cwd=settings.data_dir,
    )


def test_cli_announce_and_schedule_through_the_running_hub(village: Village) -> None:
    village.hub.token("head")  # the account head1, as `langso user add` would make it
    r = _langso(
        village.settings,
        "announce",
        "Họp thôn lúc 19h30",
        "--user",
        "head1",
        "--at",
        "2030-12-01 19:30",
        "--rrule",
        "FREQ=WEEKLY;BYDAY=MO",
        "--zone",
        "xom-dong",
        LANGSO_PASSWORD=PASSWORD,
    )
    assert r.returncode == 0, r.stderr
    assert "scheduled next run 2030-12-02 19:30:00" in r.stdout
    [a] = village.head().get("/api/announcements").json()
    assert a["created_by"] == "head1" and a["zones"] == ["xom-dong"]
    s = _langso(village.settings, "schedule")
    assert s.returncode == 0 and "FREQ=WEEKLY;BYDAY=MO" in s.stdout
    # The password from stdin this time; the hub refuses the zone, with its reason.
    bad = _langso(
        village.settings,
        "announce",
        "x",
        "--user",
        "head1",
        "--zone",
        "nowhere",
        stdin=PASSWORD + "\n",
    )
    assert bad.returncode == 2 and "unknown zone" in bad.stderr
    wrong = _langso(village.settings, "announce", "x", "--user", "head1", LANGSO_PASSWORD="not-it")
    assert wrong.returncode == 2 and wrong.stderr.startswith("langso: ")


def test_cli_says_when_the_hub_is_not_running(tmp_path: Path) -> None:
    env = {"LANGSO_DATA_DIR": str(tmp_path), "LANGSO_HTTP__PORT": str(free_port())}
    settings = load_settings(None, env=env)
    expected = (
        f"the hub is not running at http://127.0.0.1:{settings.http.port}"
        " (start it with `langso run`)"
    )
    for args in (("schedule",), ("announce", "Xin chào.", "--user", "head1")):
        r = _langso(settings, *args, LANGSO_PASSWORD=PASSWORD)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert expected in r.stderr, (args, r.stderr)


def test_a_failing_sink_logs_failed_and_raises_an_alert(broker: Broker, tmp_path: Path) -> None:
    from audio.sinks.alsa import AlsaSink

    clock = FakeClock(T0)
    # An ALSA device that does not exist: aplay exits with an error, as with no sound card.
    h = InProcessHub(
        hub_settings(broker, tmp_path / "hub"),
        clock,
        sink=AlsaSink(device="hw:99,0", clock=clock.now),
    )
    try:
        h.http("head").post("/api/announcements", json={"title": "x", "text": "Xin chào."})
        [b] = h.run_until(lambda: h.http().get("/api/broadcasts").json(), what="a log line")
        assert b["status"] == "failed" and b["detail"]
        alerts = h.http("technician").get("/api/alerts", params={"state": "open"}).json()
        assert [a["rule"] for a in alerts] == ["playout_failed"]
        assert [s.state for s in h.pins.pin(AMP).states] == [False, True, False]
    finally:
        h.stop()


def test_panel_buttons_emergency_held_and_stop(broker: Broker, tmp_path: Path) -> None:
    village = Village(broker, tmp_path / "hub", FakeClock(T0), speed=1)  # real-time playback
    try:
        _panel_buttons(village)
    finally:
        village.stop()


def _panel_buttons(village: Village) -> None:
    hw = village.hub.hub.hardware
    assert hw is not None and hw.buttons is not None
    pin = village.hub.pins.pin(village.settings.gpio.emergency_button_pin or 0)
    pin.drive_low()  # pressed (pull-up wiring) and held: gpiozero fires after hold_time
    try:
        lst = wait_for(
            lambda: village.head().get("/api/announcements").json(),
            10,
            "the emergency announcement from the held button",
        )
    finally:
        pin.drive_high()
    assert lst[0]["priority"] == "emergency" and lst[0]["created_by"] == "button:panel"
    village.hub.run_until(
        lambda: village.hub.hub.playout.state.state == "playing", step=0.25, what="on air"
    )
    stop = village.hub.pins.pin(village.settings.gpio.stop_button_pin or 0)
    stop.drive_low()
    stop.drive_high()
    village.hub.run_until(lambda: village.broadcasts(), what="stopped")
    assert village.broadcasts()[0]["status"] == "cancelled"
    assert village.broadcasts()[0]["detail"] == "stopped by stop button"


def test_the_daily_cap_holds_normal_broadcasts_until_the_next_day(
    broker: Broker, tmp_path: Path
) -> None:
    v = Village(broker, tmp_path / "hub", FakeClock(T0), LANGSO_ANNOUNCEMENTS__DAILY_CAP="1")
    try:
        head = v.head()
        first = head.post("/api/announcements", json={"title": "1", "text": "Một."}).json()
        v.hub.run_until(lambda: v.broadcasts(), what="the first")
        second = head.post("/api/announcements", json={"title": "2", "text": "Hai."}).json()
        v.hub.run_until(lambda: v.clock.now() >= T0 + timedelta(hours=2), step=600, limit=3 * 3600)
        assert [b["announcement_id"] for b in v.broadcasts()] == [first["id"]]
        # Midnight in the village (17:00 UTC), then quiet hours until 05:30: it plays then.
        v.hub.run_until(
            lambda: len(v.broadcasts()) == 2,
            step=900,
            limit=30 * 3600,
            what="the second, the next day",
        )
        b = next(b for b in v.broadcasts() if b["announcement_id"] == second["id"])
        started = datetime.fromisoformat(b["started_at"].replace("Z", "+00:00")) + VN_OFFSET
        assert started.date().isoformat() == "2026-12-02" and started.strftime("%H:%M") >= "05:30"
    finally:
        v.stop()


def test_the_amplifier_goes_off_when_the_hub_stops_mid_broadcast(
    broker: Broker, tmp_path: Path
) -> None:
    v = Village(broker, tmp_path / "hub", FakeClock(T0), speed=1)  # real-time playback
    v.head().post("/api/announcements", json={"title": "Dài", "text": "Thông báo dài. " * 20})
    v.hub.run_until(lambda: v.hub.hub.playout.state.state == "playing", step=0.25, what="on air")
    assert v.pin(AMP)[-1] is True
    v.stop()  # uvicorn's shutdown runs the lifespan: hub.stop(), as on SIGTERM
    assert v.pin(AMP) == [False, True, False]
    assert v.pin(XOM_DONG)[-1] is False and v.pin(LED)[-1] is False
