"""What the technician and the head read is true (issue 11, item 11), over real HTTP on a
real hub (broker, SQLite, espeak-ng, ffmpeg; a fake clock set on a Sunday evening):
refused MQTT messages on a page of their own, each broadcast linked to its announcement's
page, the week on a Sunday, one recording's lengths said one way."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from html import unescape
from pathlib import Path

import httpx
import pytest

from audio.sinks.null import NullSink
from hub.clock import FakeClock
from tests.broker import Broker
from tests.hubtest import hub_settings, wait_for
from tests.integration.web_fixture import WebHub, publish_many

pytestmark = pytest.mark.broker

#: Sunday 6 December 2026, 20:00 in the village (UTC+7): the last day of a Vietnamese week.
SUNDAY_EVENING = datetime(2026, 12, 6, 13, 0, tzinfo=UTC)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def main_of(html: str) -> str:
    return text_of(html[html.find("<main") : html.find("</main>")])


@pytest.fixture(scope="module")
def web(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebHub]:
    settings = hub_settings(
        broker,
        tmp_path_factory.mktemp("truth"),
        LANGSO_ANNOUNCEMENTS__REQUIRE_CLOCK_SYNC="false",
        LANGSO_HEALTH__CHECK_INTERVAL_S="3600",
    )
    h = WebHub(settings, FakeClock(SUNDAY_EVENING))
    h.hub.playout.sink = NullSink(speed=0, clock=h.clock.now)
    yield h
    h.stop()


@pytest.fixture(scope="module")
def tech(web: WebHub) -> Iterator[httpx.Client]:
    c = web.sign_in("ky-thuat", "technician")
    yield c
    c.close()


@pytest.fixture(scope="module")
def head(web: WebHub) -> Iterator[httpx.Client]:
    c = web.sign_in("truong-thon", "head")
    yield c
    c.close()


# -- (c) the week on a Sunday -----------------------------------------------------------------
def test_the_week_on_a_sunday_is_monday_to_today_and_says_what_next_week_holds(
    web: WebHub, head: httpx.Client
) -> None:
    api = web.http("head")
    for body in (
        {"title": "Tối Chủ nhật", "start_at": "2026-12-06T21:00:00"},
        {"title": "Thể dục sáng", "start_at": "2026-12-07T05:45:00", "rrule": "FREQ=DAILY"},
        {"title": "Họp đầu tuần", "start_at": "2026-12-07T19:30:00"},
    ):
        r = api.post(
            "/api/announcements",
            json={"text": "Kính mời bà con.", "category": "notice", **body},
        )
        assert r.status_code == 201, r.text
    words = main_of(head.get("/app/schedule?view=week").text)
    # This week: Monday 30 November to today, Sunday 6 December; tomorrow is not in it.
    assert "Tuần 30/11 – 06/12/2026" in words
    assert "Chủ nhật 06/12 Hôm nay 21:00 Tối Chủ nhật" in words
    grid, coming = words.split("Thứ Hai 30/11")[1].split("21:00 Tối Chủ nhật")
    assert "Thể dục sáng" not in grid and "Họp đầu tuần" not in grid
    # ...and it says what the coming week holds, with the link to it.
    assert "Tuần sau Tuần 07/12 – 13/12/2026" in coming
    assert "8 buổi phát; buổi đầu: Ngày mai, 05:45, Thể dục sáng" in coming
    nxt = main_of(head.get("/app/schedule?view=week&week=1").text)
    assert "Thứ Hai 07/12 05:45 Thể dục sáng 19:30 Họp đầu tuần" in nxt
    assert nxt.count("Thể dục sáng") == 7 and "Tuần sau" not in nxt.split("Thứ Hai")[1]


# -- (a) refused messages -----------------------------------------------------------------------
def _refuse(web: WebHub, broker: Broker) -> None:
    site = web.settings.site
    msgs: list[tuple[str, str | bytes, bool]] = [
        (f"village/{site}/ap/ap-cong-lang/status", "online", False),
        (f"village/{site}/ap/ap-cong-lang/state", "{clients: 3", False),
        (f"village/{site}/ap/ap-cong-lang/state", json.dumps({"clients": "ba"}), False),
        (f"village/{site}/sensor/muc-nuoc/state", b"\xff\xfe\x00\x01binary", False),
        (f"village/{site}/sensor/muc-nuoc/state", '"<script>alert(1)</script>"', False),
        (f"village/{site}/ap", "hello", False),
    ]
    # A flood from one broken sensor: more than one page.
    msgs += [(f"village/{site}/sensor/hong/state", f"x{i}", False) for i in range(50)]
    publish_many(broker, msgs)
    wait_for(
        lambda: web.hub.store.one("SELECT count(*) FROM dead_letters")[0] >= 55,  # type: ignore[index]
        10,
        "the refused messages stored",
    )


def test_refused_messages_are_shown_to_technicians_in_words(
    web: WebHub, broker: Broker, tech: httpx.Client, head: httpx.Client
) -> None:
    _refuse(web, broker)
    # The devices page and the device's page link here, with the count.
    devices = text_of(tech.get("/app/devices").text)
    assert "55 tin lỗi trong 24 giờ qua" in devices
    page = tech.get("/app/devices/ap-cong-lang").text
    assert 'href="/app/dead-letters?device=ap-cong-lang"' in page
    assert "2 tin lỗi trong 24 giờ qua" in text_of(page)

    first = tech.get("/app/dead-letters")
    assert first.status_code == 200
    words = main_of(first.text)
    assert "55 tin lỗi trong 24 giờ qua" in words
    assert words.count("Lý do (nguyên văn)") == 50  # one page; the rest a link away
    older = re.search(r'href="(/app/dead-letters\?[^"]*before=\d+)"', first.text)
    assert older, "no link to the older ones"
    rest = main_of(tech.get(unescape(older.group(1))).text)
    assert rest.count("Lý do (nguyên văn)") == 5 and "Không phải JSON" in rest

    mine = tech.get("/app/dead-letters?device=ap-cong-lang").text
    shown = main_of(mine)
    assert "2 tin lỗi trong 24 giờ qua" in shown
    assert "Không phải JSON" in shown and "Giá trị sai kiểu" in shown
    assert "field 'clients' is not a number" in shown  # the logged reason, beside the words
    assert '<a href="/app/devices/ap-cong-lang">' in mine and "muc-nuoc" not in shown

    sensor = tech.get("/app/dead-letters?topic=muc-nuoc").text
    # Binary as hex; text escaped, never markup.
    assert "ff fe 00 01 62 69 6e 61 72 79" in sensor and "Nội dung nhị phân (hex)" in sensor
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in sensor and "<script>alert" not in sensor
    assert "JSON không phải một đối tượng" in text_of(sensor)

    odd = main_of(tech.get("/app/dead-letters?kind=unknown_topic").text)
    assert "1 tin lỗi" in odd and "Chủ đề lạ" in odd and f"village/{web.settings.site}/ap" in odd

    # A head may read it; nobody without an account.
    assert head.get("/app/dead-letters").status_code == 200
    with web.browser_client() as anon:
        r = anon.get("/app/dead-letters")
        assert r.status_code == 302 and r.headers["location"].startswith("/app/login")


# -- (b) and (d): one announcement's page; one length each --------------------------------------
def _recording(tmp: Path) -> bytes:
    out = tmp / "voice.wav"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=300:duration=3",
            "-ar",
            "16000",
            "-ac",
            "1",
            "-y",
            str(out),
        ],
        check=True,
    )
    return out.read_bytes()


def test_an_announcements_page_its_broadcasts_and_its_one_length(
    web: WebHub, head: httpx.Client, tech: httpx.Client, tmp_path: Path
) -> None:
    api = web.http("head")
    up = api.post("/api/audio", files={"file": ("voice.wav", _recording(tmp_path), "audio/wav")})
    assert up.status_code in (200, 201), up.text
    r = api.post(
        "/api/announcements",
        json={"title": "Loa thử ghi âm", "audio_id": up.json()["id"], "repeat": 2},
    )
    assert r.status_code == 201, r.text
    a = r.json()
    aid, length = a["id"], a["duration_s"]
    clock = f"{round(length) // 60}:{round(length) % 60:02d}"
    web.run_until(
        lambda: web.hub.store.one(
            "SELECT 1 FROM broadcasts WHERE announcement_id=? AND status='played'", (aid,)
        ),
        step=2.0,
        what="the broadcast played",
    )
    # The history's row opens the announcement.
    history = head.get("/app/history").text
    assert f'href="/app/announcements/{aid}"' in history

    page = head.get(f"/app/announcements/{aid}")
    assert page.status_code == 200
    words = main_of(page.text)
    assert "Loa thử ghi âm" in words and "Đã phát" in words
    # The voice as recorded, and the broadcast with what makes it longer: one way each.
    assert "Ghi âm 0:03" in words
    assert f"Phát {clock} (cả chuông, đọc 2 lần)" in words
    assert "Người soạn head1" in words
    assert f'src="/app/announcements/{aid}/audio"' in page.text
    assert tech.get(f"/app/announcements/{aid}").status_code == 200

    # A correction follows it up: each page links the other.
    fix = api.post(
        "/api/announcements",
        json={
            "title": "Đính chính loa thử",
            "text": "Xin lỗi bà con.",
            "corrects": aid,
            "start_at": "2026-12-07T07:00:00",
        },
    )
    assert fix.status_code == 201, fix.text
    fid = fix.json()["id"]
    assert f'href="/app/announcements/{fid}"' in head.get(f"/app/announcements/{aid}").text
    again = head.get(f"/app/announcements/{fid}").text
    assert f'href="/app/announcements/{aid}"' in again and "Đính chính cho" in text_of(again)
    # Still to play: the head may edit and cancel it, through the existing forms.
    assert f'href="/app/announcements/{fid}/edit"' in again
    assert f'action="/app/announcements/{fid}/cancel"' in again
    # The schedule says the broadcast's length in the same words ("Dài 0:07 (cả chuông)").
    fix_len = fix.json()["duration_s"]
    fix_clock = f"{round(fix_len) // 60}:{round(fix_len) % 60:02d}"
    assert f"Dài {fix_clock} (cả chuông)" in text_of(head.get("/app/schedule").text)
    assert f"Phát {fix_clock} (cả chuông)" in text_of(again)
    # The week links each broadcast to its page.
    week = head.get("/app/schedule?view=week&week=1").text
    assert f'href="/app/announcements/{fid}"' in week

    assert head.get("/app/announcements/nope").status_code == 404
    with web.browser_client() as anon:
        r = anon.get(f"/app/announcements/{aid}")
        assert r.status_code == 302 and r.headers["location"].startswith("/app/login")
