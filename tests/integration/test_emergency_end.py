"""An emergency's end over real HTTP (issue 11): ``POST /api/announcements/{id}/end`` with its
roles, refusals and audit; the residents' banner shows only what is in force (newest first,
three at most, who issued it), and an ended emergency and its follow-up link each other."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest

from tests.broker import Broker
from tests.hubtest import wait_for
from tests.integration.test_staff_pages import staff_hub
from tests.integration.web_fixture import WebHub

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def web(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebHub]:
    h = staff_hub(broker, tmp_path_factory.mktemp("emergency-end"))
    yield h
    h.stop()


def emergency(web: WebHub, title: str) -> str:
    r = web.http("head").post(
        "/api/announcements",
        json={"title": title, "text": "Lũ lên.", "category": "emergency", "priority": "emergency"},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def banners(web: WebHub) -> list[str]:
    html = web.http().get("/").text
    return re.findall(r'<h2 class="alarm-title" id="alarm-(\w+)"', html)


def audit(web: WebHub, action: str, target: str) -> list[str]:
    rows = web.hub.store.query(
        "SELECT actor FROM audit_log WHERE action=? AND target=?", (action, target)
    )
    return [r["actor"] for r in rows]


def test_the_end_api_refuses_whom_and_what_it_must(web: WebHub) -> None:
    aid = emergency(web, "Lũ sông Đáy")
    notice = web.http("head").post(
        "/api/announcements", json={"title": "Họp", "text": "Họp thôn.", "start_at": None}
    )
    assert notice.status_code == 201
    body = {"follow_up": None}
    assert web.http().post(f"/api/announcements/{aid}/end", json=body).status_code == 401
    r = web.http("technician").post(f"/api/announcements/{aid}/end", json=body)
    assert r.status_code == 403
    r = web.http("head").post("/api/announcements/nope/end", json=body)
    assert r.status_code == 404
    r = web.http("head").post(f"/api/announcements/{notice.json()['id']}/end", json=body)
    assert r.status_code == 409 and "not an emergency" in r.json()["detail"]
    bad = {"follow_up": {"kind": "all_clear", "text": ""}}
    assert web.http("head").post(f"/api/announcements/{aid}/end", json=bad).status_code == 422
    bad = {"follow_up": {"kind": "sorry", "text": "x"}}
    assert web.http("head").post(f"/api/announcements/{aid}/end", json=bad).status_code == 422
    assert aid in banners(web)

    # An admin may end it too; the second time it is a conflict that names who did it.
    r = web.http("admin").post(f"/api/announcements/{aid}/end", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["follow_up"] is None and r.json()["announcement"]["ended_by"] == "admin1"
    r = web.http("head").post(f"/api/announcements/{aid}/end", json=body)
    assert r.status_code == 409 and "admin1" in r.json()["detail"]
    assert audit(web, "announcement.end", aid) == ["admin1"]
    assert aid not in banners(web)


def test_an_all_clear_ends_the_banner_and_links_both_ways(web: WebHub) -> None:
    aid = emergency(web, "Sạt lở đồi Mít")
    home = text_of(web.http().get("/").text)
    assert "Sạt lở đồi Mít" in home and "bởi trưởng thôn head1" in home
    r = web.http("head").post(
        f"/api/announcements/{aid}/end",
        json={"follow_up": {"kind": "all_clear", "text": "Đã hết nguy cơ sạt lở."}},
    )
    assert r.status_code == 200, r.text
    ended, follow = r.json()["announcement"], r.json()["follow_up"]
    assert ended["ended_at"] and ended["followed_by"] == follow["id"]
    assert follow["corrects"] == aid and follow["follow_kind"] == "all_clear"
    assert follow["priority"] == "high" and follow["status"] in ("scheduled", "done")
    assert follow["title"] == "Hết khẩn cấp: Sạt lở đồi Mít"
    assert audit(web, "announcement.end", aid) == ["head1"]
    assert audit(web, "announcement.create", follow["id"]) == ["head1"]

    assert aid not in banners(web)
    home = text_of(web.http().get("/").text)
    assert "Thông báo hết khẩn cấp cho: Sạt lở đồi Mít" in home  # the follow-up's card
    page = web.http().get(f"/a/{aid}").text
    assert f'href="/a/{follow["id"]}"' in page
    assert re.search(r"Đã kết thúc lúc .+ bởi trưởng thôn head1", text_of(page))
    assert "ann-page--emergency" not in page
    page = web.http().get(f"/a/{follow['id']}").text
    assert f'href="/a/{aid}"' in page and "Thông báo hết khẩn cấp cho:" in text_of(page)


def test_a_flood_of_banners_newest_first_three_at_most(web: WebHub) -> None:
    made = []
    for i in range(4):
        made.append(emergency(web, f"Đê vỡ {i}"))
        web.clock.advance(1)
    shown = banners(web)
    assert shown == made[::-1][:3]
    assert "và 1 thông báo khẩn cấp khác" in text_of(web.http().get("/").text)
    # A clearing announcement that corrects one (as a rule's does) ends it, by its author.
    r = web.http("head").post(
        "/api/announcements",
        json={"title": "Đê vỡ 3 (đã qua)", "text": "Nước đã rút.", "corrects": made[3]},
    )
    assert r.status_code == 201
    row = web.hub.store.one("SELECT ended_by FROM announcements WHERE id=?", (made[3],))
    assert row is not None and row["ended_by"] == "head1"
    assert banners(web) == made[::-1][1:4]
    assert "thông báo khẩn cấp khác" not in web.http().get("/").text
    for aid in made[:3]:
        web.http("head").post(f"/api/announcements/{aid}/end", json={"follow_up": None})
    assert banners(web) == []


def test_the_panel_button_is_named_as_the_issuer(web: WebHub) -> None:
    web.hub.announcements.emergency_button()
    wait_for(
        lambda: web.hub.store.one("SELECT 1 FROM announcements WHERE created_by='button:panel'"),
        30,
        "the button's emergency",
    )
    assert "bởi nút khẩn cấp ở nhà văn hóa" in text_of(web.http().get("/").text)


def test_the_dashboard_ends_an_emergency_from_its_form(web: WebHub, tmp_path: Path) -> None:
    aid = emergency(web, "Cháy rừng")
    head = web.sign_in("truong-thon", "head")
    page = head.get("/app/")
    assert f'action="/app/announcements/{aid}/end"' in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    r = head.post(
        f"/app/announcements/{aid}/end",
        files={"csrf": (None, csrf[1]), "follow": (None, "correction"), "text": (None, "")},
    )
    assert r.status_code == 422 and "Hãy viết nội dung" in unescape(r.text)
    r = head.post(
        f"/app/announcements/{aid}/end",
        files={
            "csrf": (None, csrf[1]),
            "follow": (None, "correction"),
            "text": (None, "Tin cháy rừng là nhầm, không có cháy."),
        },
    )
    assert r.status_code == 303 and r.headers["location"] == "/app/?ok=ended_follow"
    follow = web.hub.store.one("SELECT * FROM announcements WHERE corrects=?", (aid,))
    assert follow is not None and follow["follow_kind"] == "correction"
    assert follow["title"] == "Đính chính: Cháy rừng" and follow["created_by"] == "truong-thon"
    assert aid not in banners(web)
    head.close()
