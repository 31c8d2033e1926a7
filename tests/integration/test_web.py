"""The web page over real HTTP: sessions, CSRF, roles, throttling, users, alert ack, the
live stream through the real broker, the catalogue, the pages' HTML and headers."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from hub.api.deps import CSRF_HEADER, SESSION_COOKIE
from hub.services.users import hash_token
from hub.words import LANGS, catalogue, table
from tests.broker import Broker
from tests.hubtest import PASSWORD, hub_settings, wait_for
from tests.integration.web_fixture import (
    WebHub,
    form_value,
    publish_many,
    session_csrf,
    status_of,
)

pytestmark = pytest.mark.broker

WEB = Path(__file__).parents[2] / "hub" / "web"
VI, EN = table("common")["vi"], table("common")["en"]
CATALOGUE = {lang: catalogue(lang) for lang in LANGS}


@pytest.fixture(scope="module")
def web(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebHub]:
    h = WebHub(hub_settings(broker, tmp_path_factory.mktemp("web")))
    yield h
    h.stop()


@pytest.fixture
def admin(web: WebHub) -> Iterator[httpx.Client]:
    c = web.sign_in("admin-web", "admin")
    yield c
    c.close()


@pytest.fixture
def tech(web: WebHub) -> Iterator[httpx.Client]:
    c = web.sign_in("tech-web", "technician")
    yield c
    c.close()


@pytest.fixture
def anon(web: WebHub) -> Iterator[httpx.Client]:
    c = web.browser_client()
    yield c
    c.close()


def audit(web: WebHub, action: str, target: str | None = None) -> list[Any]:
    sql, args = "SELECT * FROM audit_log WHERE action=?", [action]
    if target is not None:
        sql += " AND target=?"
        args.append(target)
    return web.hub.store.query(sql, args)


def set_status(web: WebHub, broker: Broker, device: str, status: str) -> None:
    site = web.settings.site
    publish_many(broker, [(f"village/{site}/ap/{device}/status", status, True)])
    wait_for(lambda: status_of(web, device) == status, 5, f"{device} {status}")


# -- sessions --------------------------------------------------------------------------
def test_signing_in_sets_an_httponly_samesite_strict_session_cookie(
    web: WebHub, anon: httpx.Client
) -> None:
    web.user("cookie-user", "technician")
    page = anon.get("/app/login")
    assert page.status_code == 200
    login_cookie = page.headers["set-cookie"]
    assert "HttpOnly" in login_cookie and "SameSite=strict" in login_cookie
    r = anon.post(
        "/app/login",
        data={
            "csrf": form_value(page.text, "csrf"),
            "username": "cookie-user",
            "password": PASSWORD,
            "next": "/app/alerts",
        },
    )
    assert r.status_code == 303 and r.headers["location"] == "/app/alerts"
    cookie = next(
        v for k, v in r.headers.multi_items() if k == "set-cookie" and SESSION_COOKIE in v
    )
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http on the village LAN; Secure over https
    token = anon.cookies[SESSION_COOKIE]
    row = web.hub.store.one("SELECT * FROM tokens WHERE token_hash=?", (hash_token(token),))
    assert row is not None and row["revoked"] == 0  # stored hashed, never in clear
    assert web.hub.store.one("SELECT 1 FROM tokens WHERE token_hash=?", (token,)) is None
    assert anon.get("/app/").status_code == 200


def test_a_wrong_password_says_so_and_an_open_redirect_is_refused(
    web: WebHub, anon: httpx.Client
) -> None:
    web.user("redirect-user", "technician")
    page = anon.get("/app/login")
    csrf = form_value(page.text, "csrf")
    bad = anon.post("/app/login", data={"csrf": csrf, "username": "redirect-user", "password": "x"})
    assert bad.status_code == 401 and "Sai tên đăng nhập hoặc mật khẩu" in bad.text
    r = anon.post(
        "/app/login",
        data={
            "csrf": csrf,
            "username": "redirect-user",
            "password": PASSWORD,
            "next": "https://evil.example/",
        },
    )
    assert r.status_code == 303 and r.headers["location"] == "/app/"


def test_signing_out_revokes_the_session(web: WebHub) -> None:
    c = web.sign_in("leaver", "technician")
    try:
        token = c.cookies[SESSION_COOKIE]
        r = c.post("/app/logout", data={"csrf": session_csrf(c)})
        assert r.status_code == 303 and r.headers["location"].startswith("/app/login")
        assert SESSION_COOKIE not in c.cookies
        assert len(audit(web, "auth.revoke")) >= 1
    finally:
        c.close()
    with httpx.Client(base_url=web.url, cookies={SESSION_COOKIE: token}) as stale:
        assert stale.get("/app/").status_code == 302
        assert stale.get("/api/devices").status_code == 401


# -- CSRF ------------------------------------------------------------------------------
def test_every_form_needs_its_csrf_token(
    web: WebHub, admin: httpx.Client, anon: httpx.Client, broker: Broker
) -> None:
    set_status(web, broker, "ap-csrf", "offline")
    alert = web.hub.store.one("SELECT id FROM alerts WHERE device_id='ap-csrf'")
    assert alert is not None
    web.user("csrf-target", "technician")
    target = web.hub.store.one("SELECT id FROM users WHERE username='csrf-target'")
    assert target is not None
    uid = target["id"]
    forms: list[tuple[str, dict[str, str]]] = [
        ("/app/logout", {}),
        (f"/app/alerts/{alert['id']}/ack", {}),
        ("/app/users", {"username": "csrf-new", "role": "technician", "password": "x" * 12}),
        (f"/app/users/{uid}/role", {"role": "head"}),
        (f"/app/users/{uid}/password", {"password": "another-long-one"}),
        (f"/app/users/{uid}/disable", {}),
        (f"/app/users/{uid}/enable", {}),
    ]
    before = web.hub.store.one("SELECT count(*) FROM audit_log")[0]  # type: ignore[index]
    for path, data in forms:
        for csrf in (None, "not-the-token", ""):
            body = data if csrf is None else {**data, "csrf": csrf}
            r = admin.post(path, data=body)
            assert r.status_code == 403, (path, csrf, r.status_code)
            assert "CSRF" in r.text
    # The sign-in form too (double submit against its cookie).
    anon.get("/app/login")
    for csrf in (None, "forged"):
        body = {"username": "admin-web", "password": PASSWORD}
        r = anon.post("/app/login", data=body if csrf is None else {**body, "csrf": csrf})
        assert r.status_code == 403
    # Nothing was written, and the session still works.
    assert web.hub.store.one("SELECT count(*) FROM audit_log")[0] == before  # type: ignore[index]
    assert admin.get("/app/").status_code == 200
    assert web.hub.store.one("SELECT acked_by FROM alerts WHERE id=?", (alert["id"],))[0] is None  # type: ignore[index]


def test_cookie_writes_to_the_api_need_the_csrf_header(web: WebHub, admin: httpx.Client) -> None:
    body = {"username": "via-cookie", "role": "technician", "password": "long-enough-pw"}
    assert admin.get("/api/users").status_code == 200  # reads need no header
    r = admin.post("/api/users", json=body)
    assert r.status_code == 403 and CSRF_HEADER in r.json()["detail"]
    r = admin.post("/api/users", json=body, headers={CSRF_HEADER: "wrong"})
    assert r.status_code == 403
    r = admin.post("/api/users", json=body, headers={CSRF_HEADER: session_csrf(admin)})
    assert r.status_code == 201, r.text
    # The bearer path is as it was: no CSRF header, no cookie.
    bearer = web.http("admin")
    r = bearer.post("/api/users", json={**body, "username": "via-bearer"})
    assert r.status_code == 201


# -- who may see what -------------------------------------------------------------------
def test_residents_are_sent_to_sign_in_and_roles_are_checked(
    web: WebHub, anon: httpx.Client, tech: httpx.Client
) -> None:
    r = anon.get("/app/devices")
    assert r.status_code == 302
    assert r.headers["location"] == "/app/login?next=%2Fapp%2Fdevices"
    assert anon.get("/app/").status_code == 302
    assert anon.get("/api/users").status_code == 401
    r = tech.get("/app/users")
    assert r.status_code == 403 and "Quản trị viên" in r.text
    assert tech.get("/api/users").status_code == 403
    assert web.http("technician").get("/api/users").status_code == 403
    assert web.http("head").get("/app/devices").status_code == 302  # no session on bearer
    head = web.sign_in("head-web", "head")
    try:
        assert head.get("/app/").status_code == 200
        assert head.get("/app/devices").status_code == 403
        assert head.get("/app/alerts").status_code == 403
    finally:
        head.close()


def test_web_sign_in_is_throttled_with_the_api(web: WebHub, anon: httpx.Client) -> None:
    csrf = form_value(anon.get("/app/login").text, "csrf")
    limit = web.settings.http.login_attempts
    codes = [
        anon.post(
            "/app/login", data={"csrf": csrf, "username": "guess-web", "password": "nope"}
        ).status_code
        for _ in range(limit + 1)
    ]
    assert codes[:-1] == [401] * limit and codes[-1] == 429
    last = anon.post("/app/login", data={"csrf": csrf, "username": "guess-web", "password": "x"})
    assert last.status_code == 429 and int(last.headers["retry-after"]) > 0
    assert "thử lại sau" in last.text
    # One throttle: the API refuses the same name from the same address too.
    r = web.http().post("/api/auth/token", data={"username": "guess-web", "password": "x"})
    assert r.status_code == 429


# -- users ------------------------------------------------------------------------------
def test_the_users_api_adds_changes_disables_and_audits(web: WebHub, broker: Broker) -> None:
    api = web.http("admin")
    r = api.post(
        "/api/users", json={"username": "ba-lan", "role": "technician", "password": "mat-khau-dai"}
    )
    assert r.status_code == 201, r.text
    uid = r.json()["id"]
    assert r.json() == {"id": uid, "username": "ba-lan", "role": "technician", "disabled": False}
    dup = api.post(
        "/api/users", json={"username": "BA-LAN", "role": "head", "password": "mat-khau-dai"}
    )
    assert dup.status_code == 409
    weak = api.post("/api/users", json={"username": "x2", "role": "head", "password": "short"})
    assert weak.status_code == 422 and "10" in weak.json()["detail"]
    bad_role = api.post("/api/users", json={"username": "x3", "role": "king", "password": "p" * 12})
    assert bad_role.status_code == 422
    assert [u["username"] for u in api.get("/api/users").json()].count("ba-lan") == 1

    r = api.patch(f"/api/users/{uid}", json={"role": "head"})
    assert r.status_code == 200 and r.json()["role"] == "head"
    assert api.patch("/api/users/99999", json={"role": "head"}).status_code == 404

    # She signs in on her phone; then the admin disables her.
    phone = web.sign_in("ba-lan", "head", "mat-khau-dai")
    try:
        assert phone.get("/app/").status_code == 200
        r = api.patch(f"/api/users/{uid}", json={"disabled": True})
        assert r.status_code == 200 and r.json()["disabled"] is True
        assert phone.get("/app/").status_code == 302  # the session is refused at once
        assert phone.get("/api/devices").status_code == 401
    finally:
        phone.close()
    with web.browser_client() as again:
        csrf = form_value(again.get("/app/login").text, "csrf")
        r = again.post(
            "/app/login", data={"csrf": csrf, "username": "ba-lan", "password": "mat-khau-dai"}
        )
        # The same answer as a wrong password: the page reveals no account state.
        assert r.status_code == 401 and VI["login.failed"] in r.text and "bị khóa" not in r.text
    token = httpx.post(
        f"{web.url}/api/auth/token", data={"username": "ba-lan", "password": "mat-khau-dai"}
    )
    assert token.status_code == 401

    assert api.patch(f"/api/users/{uid}", json={"disabled": False}).status_code == 200
    r = api.post(f"/api/users/{uid}/password", json={"password": "short"})
    assert r.status_code == 422
    assert (
        api.post(f"/api/users/{uid}/password", json={"password": "mat-khau-moi-123"}).status_code
        == 204
    )
    ok = httpx.post(
        f"{web.url}/api/auth/token", data={"username": "ba-lan", "password": "mat-khau-moi-123"}
    )
    assert ok.status_code == 200

    for action in ("user.add", "user.role", "user.disable", "user.enable", "user.password"):
        rows = audit(web, action, "ba-lan")
        assert rows and rows[0]["actor"] == "admin1", action


def test_the_last_admin_cannot_be_demoted_or_disabled(web: WebHub) -> None:
    api = web.http("admin")
    users = api.get("/api/users").json()
    me = next(u for u in users if u["username"] == "admin1")
    others = [u for u in users if u["role"] == "admin" and not u["disabled"] and u != me]
    for u in others:
        assert api.patch(f"/api/users/{u['id']}", json={"role": "technician"}).status_code == 200
    assert api.patch(f"/api/users/{me['id']}", json={"disabled": True}).status_code == 409
    assert api.patch(f"/api/users/{me['id']}", json={"role": "head"}).status_code == 409
    assert audit(web, "user.disable", "admin1") == []
    for u in others:
        assert api.patch(f"/api/users/{u['id']}", json={"role": "admin"}).status_code == 200


def test_the_users_page_adds_a_user_and_explains_a_refusal(
    web: WebHub, admin: httpx.Client
) -> None:
    csrf = session_csrf(admin)
    r = admin.post(
        "/app/users",
        data={
            "csrf": csrf,
            "username": "chi-hoa",
            "role": "technician",
            "password": "chi-hoa-2026!",
        },
    )
    assert r.status_code == 303 and r.headers["location"] == "/app/users?ok=added"
    page = admin.get(r.headers["location"])
    assert "Đã thêm người dùng." in page.text and "chi-hoa" in page.text
    r = admin.post(
        "/app/users",
        data={"csrf": csrf, "username": "chi-hoa", "role": "technician", "password": "x" * 12},
    )
    assert r.status_code == 409 and "đã có người dùng" in r.text
    r = admin.post(
        "/app/users?lang=en",
        data={"csrf": csrf, "username": "chi-mai", "role": "technician", "password": "short"},
    )
    assert r.status_code == 422 and "at least 10 characters" in r.text
    assert audit(web, "user.add", "chi-hoa")[0]["actor"] == "admin-web"


# -- alerts -----------------------------------------------------------------------------
def test_acknowledging_an_alert(web: WebHub, broker: Broker, tech: httpx.Client) -> None:
    set_status(web, broker, "ap-ack", "offline")
    alert = web.hub.store.one("SELECT id FROM alerts WHERE device_id='ap-ack'")
    assert alert is not None
    aid = alert["id"]
    assert web.http("head").post(f"/api/alerts/{aid}/ack").status_code == 403
    assert web.http("technician").post("/api/alerts/nope/ack").status_code == 404
    r = web.http("technician").post(f"/api/alerts/{aid}/ack")
    assert r.status_code == 200
    body = r.json()
    assert body["acked_by"] == "technician1" and body["acked_at"].endswith("Z")
    listed = web.http("technician").get("/api/alerts", params={"device": "ap-ack"}).json()
    assert listed[0]["acked_by"] == "technician1"
    # Again (from the page): idempotent, the first name stays, one audit row.
    r = tech.post(f"/app/alerts/{aid}/ack", data={"csrf": session_csrf(tech)})
    assert r.status_code == 303 and r.headers["location"] == "/app/alerts?ok=acked"
    assert web.hub.store.one("SELECT acked_by FROM alerts WHERE id=?", (aid,))[0] == "technician1"  # type: ignore[index]
    assert len(audit(web, "alert.ack", aid)) == 1
    page = tech.get("/app/alerts?ok=acked")
    assert "Đã xác nhận cảnh báo." in page.text and "technician1 đã xác nhận" in page.text


def test_acknowledging_from_the_page_with_the_session(
    web: WebHub, broker: Broker, tech: httpx.Client
) -> None:
    set_status(web, broker, "ap-ack2", "offline")
    aid = web.hub.store.one("SELECT id FROM alerts WHERE device_id='ap-ack2'")[0]  # type: ignore[index]
    r = tech.post(f"/api/alerts/{aid}/ack", headers={CSRF_HEADER: session_csrf(tech)})
    assert r.status_code == 200 and r.json()["acked_by"] == "tech-web"
    assert audit(web, "alert.ack", aid)[0]["actor"] == "tech-web"


# -- the live stream --------------------------------------------------------------------
class Stream:
    """Server-Sent Events read line by line; every read is bounded by httpx's timeout."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.iter_lines()
        self.fields: list[str] = []
        self.seen: list[str] = []

    def next_event(self, deadline: float) -> tuple[str, dict[str, Any]]:
        kind, data = "message", ""
        while time.monotonic() < deadline:
            line = next(self.lines)
            self.seen.append(line)
            if line == "":
                if data:
                    return kind, json.loads(data)
                kind = "message"
                continue
            self.fields.append(line.split(":", 1)[0])
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
        raise AssertionError("no event in time")

    def wait_for(self, kind: str, timeout: float, pred: Any = None) -> list[tuple[str, Any]]:
        """Events up to and including the first ``kind`` (matching ``pred``)."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            ev = self.next_event(deadline)
            seen.append(ev)
            if ev[0] == kind and (pred is None or pred(ev[1])):
                return seen


def open_stream(client: httpx.Client, **headers: str) -> Any:
    return client.stream(
        "GET", "/api/stream", headers=headers, timeout=httpx.Timeout(5.0, read=2.0)
    )


def test_staff_get_a_device_event_within_two_seconds(
    web: WebHub, broker: Broker, tech: httpx.Client
) -> None:
    set_status(web, broker, "ap-live", "online")
    with open_stream(tech) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-store"
        s = Stream(r)
        kind, hello = s.next_event(time.monotonic() + 2)
        assert kind == "heartbeat" and hello["staff"] is True
        assert "retry" in s.fields
        t0 = time.monotonic()
        site = web.settings.site
        publish_many(broker, [(f"village/{site}/ap/ap-live/status", "offline", True)])
        seen = s.wait_for("device", 2.0, lambda d: d["id"] == "ap-live")
        assert time.monotonic() - t0 < 2.0
        d = seen[-1][1]
        assert d["status"] == "offline" and d["previous"] == "online" and d["kind"] == "ap"
        # The offline alert follows on the same stream.
        a = s.wait_for("alert", 2.0, lambda a: a["device_id"] == "ap-live")[-1][1]
        assert a["rule"] == "offline" and a["state"] == "raised"


def test_residents_get_only_public_events(web: WebHub, broker: Broker, anon: httpx.Client) -> None:
    set_status(web, broker, "ap-public", "online")
    staff_client = web.http("technician")  # the bearer works for the stream too
    with open_stream(anon) as pub, open_stream(staff_client) as staff:
        p, s = Stream(pub), Stream(staff)
        assert p.next_event(time.monotonic() + 2)[0] == "heartbeat"
        assert s.next_event(time.monotonic() + 2)[0] == "heartbeat"
        site = web.settings.site
        publish_many(broker, [(f"village/{site}/ap/ap-public/status", "offline", True)])
        s.wait_for("device", 2.0, lambda d: d["id"] == "ap-public")
        # Published after the device change: a resident sees this one and nothing before.
        web.bus.publish("announcement", {"id": "a1", "title": "Họp thôn"}, audience="public")
        seen = p.wait_for("announcement", 2.0)
        assert [k for k, _ in seen] == ["announcement"]
        assert seen[0][1]["title"] == "Họp thôn"
        assert s.wait_for("announcement", 2.0)[-1][1]["id"] == "a1"


def test_a_reconnecting_browser_gets_what_it_missed_or_is_told_to_reload(
    web: WebHub, tech: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub.api import stream

    monkeypatch.setattr(stream, "STREAM_S", 0.5)
    with open_stream(tech) as r:
        s = Stream(r)
        s.next_event(time.monotonic() + 2)
        last_id = next(line for line in s.seen if line.startswith("id:"))[3:].strip()
        # The hub ends the stream by itself (so that a shutdown never waits on it).
        assert list(s.lines) == []
    web.bus.publish("device", {"id": "ap-missed", "status": "offline"}, audience="staff")
    web.bus.publish("announcement", {"id": "a-missed"}, audience="public")
    with open_stream(tech, **{"Last-Event-ID": last_id}) as r:
        s = Stream(r)
        got = [s.next_event(time.monotonic() + 2) for _ in range(3)]
        assert [k for k, _ in got] == ["device", "announcement", "heartbeat"]
        assert got[0][1]["id"] == "ap-missed"
    # A page passes the mark it was rendered at; a resident's backlog is public only.
    with web.browser_client() as resident:
        with resident.stream(
            "GET", "/api/stream", params={"since": last_id}, timeout=httpx.Timeout(5, read=2)
        ) as r:
            s = Stream(r)
            assert [s.next_event(time.monotonic() + 2)[0] for _ in range(2)] == [
                "announcement",
                "heartbeat",
            ]
        # Another epoch (the hub restarted) or garbage: reload the page.
        for mark in ("deadbeef-3", "nonsense"):
            with open_stream(resident, **{"Last-Event-ID": mark}) as r:
                assert Stream(r).next_event(time.monotonic() + 2)[0] == "reset"


def test_an_expired_session_on_the_stream_is_a_resident(web: WebHub) -> None:
    with (
        httpx.Client(base_url=web.url, cookies={SESSION_COOKIE: "expired"}) as c,
        open_stream(c) as r,
    ):
        kind, data = Stream(r).next_event(time.monotonic() + 2)
        assert r.status_code == 200 and kind == "heartbeat" and data["staff"] is False


def test_the_bus_drops_what_comes_before_any_subscriber() -> None:
    from hub.bus import Bus

    bus = Bus()
    bus.publish("device", {"id": "x"}, audience="staff")  # no loop known yet: dropped
    assert bus.dropped == 1 and bus.subscribers == 0


def test_a_slow_subscriber_loses_its_oldest_events() -> None:
    import asyncio

    from hub.bus import STAFF, Bus

    async def scenario() -> list[int]:
        bus = Bus(queue_size=3)
        with bus.subscribe(STAFF) as sub:
            for i in range(5):
                bus.publish("device", {"n": i}, audience="staff")
            await asyncio.sleep(0)  # let call_soon_threadsafe deliver
            got = [(await sub.__anext__()).data["n"] for _ in range(3)]
            assert sub.dropped == 2
        assert bus.subscribers == 0
        return got

    assert asyncio.run(scenario()) == [2, 3, 4]


# -- the catalogue and the pages ---------------------------------------------------------
def test_the_catalogue_has_every_key_in_both_languages() -> None:
    assert set(VI) == set(EN), set(VI) ^ set(EN)
    for lang, texts in CATALOGUE.items():
        for key, text in texts.items():
            assert text.strip(), (lang, key)
    for key in VI:
        assert set(re.findall(r"{(\w+)}", VI[key])) == set(re.findall(r"{(\w+)}", EN[key])), key
    used: set[str] = set()
    for template in (WEB / "templates").rglob("*.html"):
        used |= set(re.findall(r"""\b_\(\s*["']([a-z0-9_.]+)["']\s*[,)]""", template.read_text()))
    for module in WEB.glob("*.py"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z0-9_.]+)["']\s*[,)]""", module.read_text()))
    assert len(used) > 80
    # The residents' and the staff's words live in modules of their own: one catalogue.
    missing = sorted(k for k in used if k not in CATALOGUE["vi"] or k not in CATALOGUE["en"])
    assert missing == []
    # Dynamic keys: every status, severity, role, kind and range the pages can show.
    from devices.events import DEVICE_KINDS
    from hub.services.users import ROLES
    from hub.web.views import RANGES, STATUSES

    for key in [
        *(f"status.{s}" for s in STATUSES),
        *(f"severity.{s}" for s in ("critical", "warning")),
        *(f"role.{r}" for r in ROLES),
        *(f"kind.{k}" for k in DEVICE_KINDS),
        *(f"range.{r}" for r in RANGES),
    ]:
        assert key in VI and key in EN, key


class _Checker(HTMLParser):
    """Every element closed in order (void elements aside), one <html>, <title>, <main>."""

    VOID: ClassVar[frozenset[str]] = frozenset(
        {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta"}
        | {"source", "track", "wbr", "path", "circle", "line", "polyline", "rect"}
    )

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.counts: dict[str, int] = {}
        self.errors: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        inside = "svg:" if "svg" in self.stack else ""  # an SVG has its own <title>
        self.counts[inside + tag] = self.counts.get(inside + tag, 0) + 1
        for k, v in attrs:
            if k == "id" and v:
                if v in self.ids:
                    self.errors.append(f"duplicate id {v}")
                self.ids.add(v)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()


def well_formed(html: str) -> None:
    assert html.startswith("<!doctype html>"), html[:40]
    c = _Checker()
    c.feed(html)
    c.close()
    assert c.errors == [] and c.stack == [], (c.errors, c.stack)
    for tag in ("html", "head", "body", "title", "main"):
        assert c.counts.get(tag) == 1, tag


def test_the_residents_page_in_vietnamese_and_english(web: WebHub, anon: httpx.Client) -> None:
    r = anon.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    well_formed(r.text)
    assert '<html lang="vi">' in r.text and "Chào mừng" in r.text
    assert "/app/login" in r.text
    for placeholder in ("coming soon", "sắp ra mắt", "TODO", "lorem"):
        assert placeholder.lower() not in r.text.lower()
    en = anon.get("/?lang=en")
    assert '<html lang="en">' in en.text and "Welcome" in en.text
    assert "lang=en" in en.headers["set-cookie"]
    assert '<html lang="en">' in anon.get("/").text  # the cookie remembers
    assert '<html lang="vi">' in anon.get("/?lang=vi").text


def test_every_page_is_well_formed_and_escaped(
    web: WebHub, broker: Broker, admin: httpx.Client
) -> None:
    site = web.settings.site
    publish_many(
        broker,
        [(f"village/{site}/sensor/wl-page/state", json.dumps({"water_level_cm": 120}), False)],
    )
    wait_for(lambda: web.hub.store.one("SELECT 1 FROM devices WHERE id='wl-page'"), 5, "wl-page")
    for path in (
        "/",
        "/app/login",
        "/app/",
        "/app/devices",
        "/app/devices?kind=sensor",
        "/app/devices/wl-page",
        "/app/devices/wl-page?range=7d",
        "/app/devices/wl-page?range=30d",
        "/app/alerts",
        "/app/users",
        "/app/?lang=en",
    ):
        r = admin.get(path, follow_redirects=True)
        assert r.status_code == 200, path
        well_formed(r.text)
    assert admin.get("/app/devices/no-such").status_code == 404
    chart = admin.get("/app/devices/wl-page?lang=vi").text
    assert "<svg" in chart and "Mực nước" in chart
    evil = admin.get("/app/devices", params={"q": "<script>alert(1)</script>"}).text
    assert "<script>alert(1)" not in evil and "&lt;script&gt;alert(1)" in evil


def test_security_headers(web: WebHub, anon: httpx.Client) -> None:
    for path in ("/", "/app/login", "/static/app.js"):
        h = anon.get(path).headers
        csp = h["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert h["x-frame-options"] == "DENY"
        assert h["referrer-policy"] == "same-origin"
        assert h["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in anon.get("/docs").headers  # FastAPI's own page


def test_no_inline_script_or_style_in_the_pages() -> None:
    for template in (WEB / "templates").rglob("*.html"):
        text = template.read_text()
        assert " style=" not in text and "<style" not in text, template
        for m in re.finditer(r"<script([^>]*)>", text):
            assert "src=" in m.group(1) or "application/json" in m.group(1), template
        assert not re.search(r"<[^>]+\son[a-z]+=", text), template


def test_an_oversized_form_is_refused(web: WebHub, anon: httpx.Client) -> None:
    r = anon.post("/app/login", data={"csrf": "x", "username": "u" * 20_000, "password": "p"})
    assert r.status_code == 413
    # Streamed without a length, it is cut off just the same.
    r = anon.post(
        "/app/login",
        content=iter([b"a=" + b"b" * 10_000, b"c" * 10_000]),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 413


def test_the_public_page_and_assets_are_compressed_and_nothing_with_a_secret_is(
    web: WebHub, anon: httpx.Client, tech: httpx.Client
) -> None:
    gzip = {"Accept-Encoding": "gzip"}
    for path in ("/", "/static/app.js", "/static/app.css", "/static/public.css"):
        r = anon.get(path, headers=gzip)
        assert r.status_code == 200, path
        assert r.headers.get("content-encoding") == "gzip", path
        assert int(r.headers["content-length"]) < len(r.content) / 2, path  # bytes sent
    assert anon.get("/static/app.js", headers=gzip).content == (WEB / "static/app.js").read_bytes()
    # A client that does not ask gets it plain.
    plain = anon.get("/static/app.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.content == (WEB / "static/app.js").read_bytes()
    # Pages with a CSRF token or a session's data, and the API, are never compressed.
    for client, path in (
        (anon, "/app/login"),
        (anon, "/gop-y"),
        (tech, "/app/"),
        (tech, "/app/devices"),
        (tech, "/api/devices"),
        (tech, "/openapi.json"),
    ):
        r = client.get(path, headers=gzip)
        assert r.status_code == 200, path
        assert "content-encoding" not in r.headers, path
