"""Setting the hub's clock from the head's phone, over real HTTP (real broker, SQLite,
espeak-ng, ffmpeg; a fake clock): who may, when it is refused, what is audited, the
dashboard's card and its form, and a scheduled broadcast that waits for a trusted clock
and plays once the head has set it.

The hub's clock trust reads a temporary sysfs tree and boot id file; the system clock's
setter is a recorder that moves the fake clock, so this machine's clock never changes."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from audio.sinks.null import NullSink
from hub.api.deps import CSRF_HEADER
from hub.clock import FakeClock
from hub.services.clock import ClockTrust
from hub.services.users import Users
from hub.store import Store
from tests.broker import Broker
from tests.hubtest import PASSWORD, InProcessHub, hub_settings
from tests.integration.web_fixture import form_value

pytestmark = pytest.mark.broker

#: 07:00 in the village, 1 December 2026: what a Pi without internet believes after a cut.
T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
#: What the head's phone says: the right time, three hours on.
PHONE = datetime(2026, 12, 1, 3, 0, 0, tzinfo=UTC)


class ClockHub:
    """The hub in this process whose scheduler asks a ClockTrust of the test's making."""

    def __init__(self, broker: Broker, data: Path) -> None:
        self.tree = data.parent / f"{data.name}-sys"
        (self.tree / "rtc").mkdir(parents=True)
        self.boot = self.tree / "boot_id"
        settings = hub_settings(
            broker,
            data,
            LANGSO_CLOCK__RTC_SYSFS=str(self.tree / "rtc"),
            LANGSO_CLOCK__BOOT_ID_FILE=str(self.boot),
            LANGSO_CLOCK__FAKE_HWCLOCK_FILE=str(self.tree / "fake-hwclock.data"),
            LANGSO_ANNOUNCEMENTS__QUIET_HOURS="",
        )
        self.clock = FakeClock(T0)
        self.store = Store(settings.db_path)
        self.ntp = False
        self.set_to: list[float] = []
        self.failure: OSError | None = None
        self.trust = self.new_boot(settings)
        self.h = InProcessHub(
            settings,
            self.clock,
            sink=NullSink(speed=0, clock=self.clock.now),
            synced=lambda: self.trust.synced(),
        )
        # build_hub does not make the trust yet: the hub gets this one (see the lead's notes).
        self.h.hub.clock_trust = self.trust  # type: ignore[attr-defined]

    def new_boot(self, settings: Any = None) -> ClockTrust:
        """A new boot id, and the trust a hub started in that boot has."""
        self.boot.write_text(str(uuid.uuid4()) + "\n")
        trust = ClockTrust(
            (settings or self.h.settings).clock,
            self.store,
            self.clock,
            ntp=lambda: self.ntp,
            setter=self.set_system_clock,
        )
        if settings is None:
            self.trust = trust
            self.h.hub.clock_trust = trust  # type: ignore[attr-defined]
        return trust

    def set_system_clock(self, ts: float) -> None:
        if self.failure is not None:
            raise self.failure
        self.set_to.append(ts)
        self.clock.set(datetime.fromtimestamp(ts, UTC))

    def sign_in(self, role: str) -> httpx.Client:
        """A phone's browser signed in through the web form (the session cookie)."""
        name = f"{role}-web"
        if self.h.hub.store.one("SELECT 1 FROM users WHERE username=?", (name,)) is None:
            Users(self.h.hub.store).add(name, role, PASSWORD, actor="test", now=0)
        c = httpx.Client(base_url=self.h.url, timeout=10, follow_redirects=False)
        csrf = form_value(c.get("/app/login").text, "csrf")
        r = c.post("/app/login", data={"csrf": csrf, "username": name, "password": PASSWORD})
        assert r.status_code == 303, r.text[:300]
        return c


@pytest.fixture(scope="module")
def hub(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClockHub]:
    h = ClockHub(broker, tmp_path_factory.mktemp("clockhub") / "hub")
    yield h
    h.h.stop()
    h.store.close()


@pytest.fixture
def fresh(hub: ClockHub) -> ClockHub:
    """Each test starts in a new boot at T0 (a phone's setting from before does not count),
    with NTP not synchronised and a setter that works."""
    hub.clock.set(T0)
    hub.ntp = False
    hub.failure = None
    hub.set_to.clear()
    hub.new_boot()
    return hub


def post_clock(h: ClockHub, role: str | None, body: Any) -> httpx.Response:
    return h.h.http(role).post("/api/clock", json=body)


def test_who_may_set_the_clock_and_what_is_audited(fresh: ClockHub) -> None:
    h = fresh
    before = h.h.http("technician").get("/api/clock").json()
    assert (before["source"], before["synced"], before["can_set"]) == ("none", False, True)
    assert before["now"] == "2026-12-01T00:00:00Z"
    assert h.h.http().get("/api/clock").status_code == 401
    phone_ms = int(PHONE.timestamp() * 1000)
    assert post_clock(h, None, {"phone_time": phone_ms}).status_code == 401
    r = post_clock(h, "technician", {"phone_time": phone_ms})
    assert r.status_code == 403, r.text
    assert h.set_to == []
    r = post_clock(h, "head", {"phone_time": phone_ms})
    assert r.status_code == 200, r.text
    after = r.json()
    assert (after["source"], after["synced"], after["phone_set_by"]) == ("phone", True, "head1")
    assert after["now"] == "2026-12-01T03:00:00Z"
    assert h.set_to == [PHONE.timestamp()]
    row = h.h.hub.store.one(
        "SELECT actor, action, detail FROM audit_log WHERE action='clock.set' ORDER BY id DESC"
    )
    assert row is not None and (row["actor"], row["action"]) == ("head1", "clock.set")
    detail = json.loads(row["detail"])
    assert (detail["old"], detail["new"]) == ("2026-12-01T00:00:00Z", "2026-12-01T03:00:00Z")
    # A reboot (a power cut) forgets it: the phone's word holds for one boot.
    h.new_boot()
    assert h.h.http("head").get("/api/clock").json()["source"] == "none"


def audited(h: ClockHub) -> int:
    row = h.h.hub.store.one("SELECT count(*) FROM audit_log WHERE action='clock.set'")
    return int(row[0]) if row else 0


def test_refusals_say_why(fresh: ClockHub) -> None:
    h = fresh
    audits = audited(h)
    for body, status, words in [
        ({"phone_time": "2019-05-01T08:00:00+07:00"}, 422, "not a time this hub can have"),
        ({"phone_time": 4102444800000}, 422, "not a time this hub can have"),  # 2100
        ({"phone_time": "hôm nay"}, 422, "ISO 8601"),
        ({"phone_time": True}, 422, "phone_time"),
        ({"time": 1}, 422, "phone_time"),
    ]:
        r = post_clock(h, "head", body)
        assert (r.status_code, words in r.json()["detail"]) == (status, True), (body, r.text)
    h.failure = PermissionError(1, "Operation not permitted")
    r = post_clock(h, "head", {"phone_time": "2026-12-05T10:00:00"})
    assert r.status_code == 503 and "no CAP_SYS_TIME" in r.json()["detail"], r.text
    h.failure = None
    h.ntp = True
    got = h.h.http("head").get("/api/clock").json()
    assert (got["source"], got["can_set"]) == ("ntp", False)
    r = post_clock(h, "admin", {"phone_time": "2026-12-05T10:00:00"})
    assert r.status_code == 409 and "NTP" in r.json()["detail"], r.text
    assert h.set_to == []
    assert audited(h) == audits


def _card(html: str) -> str:
    m = re.search(r"<section[^>]*data-clock[^>]*>.*?</section>", html, re.S)
    return m.group(0) if m else ""


def test_the_dashboard_card_and_its_form(fresh: ClockHub) -> None:
    h = fresh
    tech, head = h.sign_in("technician"), h.sign_in("head")
    try:
        card = _card(tech.get("/app/").text)
        assert "Giờ của hub" in card and "07:00:00 01/12/2026" in card
        assert "các buổi phát theo lịch đang chờ" in card  # require_clock_sync: they do
        assert "/app/clock" not in card  # the warning, without the button
        page = head.get("/app/").text
        card = _card(page)
        assert "Đặt giờ theo điện thoại" in card and 'action="/app/clock"' in card
        # Without script: the phone's time typed in the village's time.
        form = {"csrf": form_value(page, "csrf"), "phone_local": "2026-12-01T10:00:00"}
        r = head.post("/app/clock", files={k: (None, v) for k, v in form.items()})
        assert (r.status_code, r.headers["location"]) == (303, "/app/?ok=clock"), r.text[:300]
        assert h.set_to == [PHONE.timestamp()]
        page = head.get(r.headers["location"]).text
        assert _card(page) == "" and "Đã đặt giờ của hub theo điện thoại." in page
        assert "10:00:00 01/12/2026" in page
        # A form without the CSRF token is refused, and sets nothing.
        r = head.post("/app/clock", files={"phone_time": (None, "1796400000000")})
        assert r.status_code == 403 and h.set_to == [PHONE.timestamp()]
        # NTP synchronised: no card at all.
        h.ntp = True
        h.new_boot()
        assert _card(head.get("/app/").text) == ""
    finally:
        tech.close()
        head.close()


def test_a_scheduled_broadcast_waits_for_the_clock_then_plays(fresh: ClockHub) -> None:
    h = fresh
    headers = {"Authorization": f"Bearer {h.h.token('head')}"}
    r = h.h.http().post(
        "/api/announcements",
        json={"title": "Họp", "text": "Họp thôn.", "start_at": "2026-12-01T07:02:00"},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    aid = r.json()["id"]

    def status() -> str:
        return str(h.h.http().get(f"/api/announcements/{aid}").json()["status"])

    h.h.run_until(lambda: h.clock.now() > T0 + timedelta(minutes=4), step=10.0)
    assert status() == "scheduled"  # two minutes past its time: the clock is not trusted
    # The head's phone says it is 07:05 on the same day: the scheduler trusts it, and the
    # broadcast it held back plays (late, within grace).
    phone = int((T0 + timedelta(minutes=5)).timestamp() * 1000)
    assert post_clock(h, "head", {"phone_time": phone}).status_code == 200

    def logged() -> list[tuple[str, str]]:
        rows = h.h.http().get("/api/broadcasts").json()
        return [(b["announcement_id"], b["status"]) for b in rows]

    h.h.run_until(logged, step=2.0, what="the broadcast")
    assert logged() == [(aid, "played")]


def test_headers_carry_csrf_for_the_cookie_api(fresh: ClockHub) -> None:
    """The JSON API through the session cookie needs the CSRF header, as every write."""
    h = fresh
    head = h.sign_in("head")
    try:
        csrf = form_value(head.get("/app/").text, "csrf")
        body = {"phone_time": int(PHONE.timestamp() * 1000)}
        assert head.post("/api/clock", json=body).status_code == 403
        r = head.post("/api/clock", json=body, headers={CSRF_HEADER: csrf})
        assert r.status_code == 200 and r.json()["source"] == "phone", r.text
    finally:
        head.close()
