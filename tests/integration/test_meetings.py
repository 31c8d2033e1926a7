"""A meeting's own time and place over real HTTP (issue 11, item 2): the API's fields, their
refusals and the guess for an invitation left in the default category; the residents' list
by the meeting's time (not the broadcast's), until the meeting is over; the page, the feed
and the calendar, where the event is the meeting; the compose form without JavaScript.

The village's clock starts on Tuesday 1 December 2026, 07:00 (the fake clock's T0)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from html import unescape
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import icalendar
import pytest

from hub.clock import FakeClock
from tests.broker import Broker
from tests.integration.test_staff_pages import staff_hub
from tests.integration.web_fixture import WebHub, form_value

pytestmark = pytest.mark.broker

#: One text for most announcements here: rendered once, then from the render cache.
TEXT = "Mời đại diện các hộ đến họp."
AT_HALL = "Họp lúc 19:30 thứ Năm 10/12 tại Nhà văn hóa thôn"


@pytest.fixture(scope="module")
def web(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebHub]:
    h = staff_hub(broker, tmp_path_factory.mktemp("meetings"))
    yield h
    h.stop()


def post(web: WebHub, **body: Any) -> httpx.Response:
    return web.http("head").post("/api/announcements", json={"text": TEXT, **body})


def made(web: WebHub, **body: Any) -> dict[str, Any]:
    r = post(web, **body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def refused(r: httpx.Response) -> str:
    assert r.status_code == 422, (r.status_code, r.text)
    return str(r.json()["detail"])


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()


def listed(web: WebHub) -> list[tuple[str, str]]:
    """The home page's "Lịch họp sắp tới": (announcement id, the item's text), in order."""
    html = web.http().get("/").text
    section = html.split('id="meetings-h"', 1)[1].split("</section>", 1)[0]
    items = re.findall(r'<li class="meeting" data-meeting="(\w+)">(.*?)</li>', section, re.S)
    return [(aid, text_of(body)) for aid, body in items]


def test_the_meeting_fields_round_trip_and_follow_the_category(web: WebHub) -> None:
    a = made(
        web,
        title="Họp thôn",
        category="meeting",
        start_at="2026-12-01T18:00",
        meeting_at="2026-12-03T19:30",
        meeting_place="  Nhà văn hóa thôn ",
    )
    # The meeting is not the broadcast: both are kept, in UTC like every time.
    assert (a["meeting_at"], a["meeting_place"]) == ("2026-12-03T12:30:00Z", "Nhà văn hóa thôn")
    assert (a["start_at"], a["next_run"]) == ("2026-12-01T11:00:00Z", "2026-12-01T11:00:00Z")
    assert "guess" not in a
    public = web.http().get(f"/api/announcements/{a['id']}").json()
    assert (public["meeting_at"], public["meeting_place"]) == (a["meeting_at"], "Nhà văn hóa thôn")

    head = web.http("head")
    r = head.patch(f"/api/announcements/{a['id']}", json={"meeting_place": "Sân đình"})
    assert r.status_code == 200, r.text
    assert (r.json()["meeting_at"], r.json()["meeting_place"]) == (a["meeting_at"], "Sân đình")
    # An offset is honoured: the same meeting, said in UTC.
    r = head.patch(f"/api/announcements/{a['id']}", json={"meeting_at": "2026-12-03T13:00:00Z"})
    assert r.status_code == 200 and r.json()["meeting_at"] == "2026-12-03T13:00:00Z", r.text
    # No longer a meeting: its time and place go with the category.
    r = head.patch(f"/api/announcements/{a['id']}", json={"category": "notice"})
    assert r.status_code == 200, r.text
    assert (r.json()["category"], r.json()["meeting_at"], r.json()["meeting_place"]) == (
        "notice",
        None,
        None,
    )
    r = head.patch(f"/api/announcements/{a['id']}", json={"meeting_at": "2026-12-03T19:30"})
    assert refused(r).startswith("meeting_at: only a meeting has a meeting time")
    actions = web.hub.store.query(
        "SELECT action FROM audit_log WHERE target=? ORDER BY id", (a["id"],)
    )
    assert [r["action"] for r in actions] == ["announcement.create"] + ["announcement.update"] * 3


def test_what_a_meeting_needs_is_refused_with_a_reason(web: WebHub) -> None:
    meeting = {"title": "Họp", "category": "meeting", "start_at": "2026-12-01T18:00"}
    assert refused(post(web, **meeting)).startswith(
        "meeting_at: a meeting needs its own date and time"
    )
    news = {"title": "Tin", "category": "news", "start_at": "2026-12-01T18:00"}
    assert refused(post(web, **news, meeting_at="2026-12-03T19:30")).startswith(
        "meeting_at: only a meeting has a meeting time and place"
    )
    assert refused(post(web, **news, meeting_place="Sân đình")).startswith("meeting_place:")
    detail = refused(post(web, **meeting, meeting_at="2026-11-30T19:30"))
    assert detail == "meeting_at: 2026-11-30T19:30 has passed; give the meeting's time"
    late = meeting | {"start_at": "2026-12-04T08:00"}
    assert refused(post(web, **late, meeting_at="2026-12-03T19:30")) == (
        "start_at: the invitation would first be broadcast at 2026-12-04T08:00, after the "
        "meeting begins at 2026-12-03T19:30: broadcast it before"
    )
    long = refused(post(web, **meeting, meeting_at="2026-12-03T19:30", meeting_place="x" * 201))
    assert "meeting_place" in long and "200" in long
    assert web.hub.store.one("SELECT count(*) FROM announcements WHERE title='Họp'")[0] == 0  # type: ignore[index]


def test_an_invitation_left_in_the_default_category_is_guessed(web: WebHub) -> None:
    head = web.http("head")
    text = "Kính mời bà con dự họp thôn lúc 19h30 thứ Năm 10/12 tại nhà văn hóa thôn."
    a = made(web, title="Họp thôn cuối năm", text=text, start_at="2026-12-08T18:00")
    assert (a["category"], a["meeting_at"], a["meeting_place"]) == (
        "meeting",
        "2026-12-10T12:30:00Z",
        "Nhà văn hóa thôn",
    )
    guess = a["guess"]
    assert guess["applied"] is True and "reads as a meeting invitation" in guess["detail"]
    assert "guess" not in head.get(f"/api/announcements/{a['id']}").json()
    # Its time cannot be read: it stays a notice, and the answer says what to send.
    b = made(web, title="Họp thôn")
    assert b["category"] == "notice" and b["meeting_at"] is None
    assert b["guess"]["applied"] is False and "meeting_at" in b["guess"]["detail"]
    # A category given is the head's: never changed, nothing guessed.
    c = made(web, title="Họp thôn", text=text, category="notice", start_at="2026-12-08T18:00")
    assert c["category"] == "notice" and c["meeting_at"] is None and "guess" not in c
    # meeting_at with no category: a meeting.
    d = made(web, title="Họp tổ", meeting_at="2026-12-09T08:00", start_at="2026-12-08T18:00")
    assert (d["category"], d["guess"]["applied"]) == ("meeting", True)
    for aid in (a["id"], b["id"], c["id"], d["id"]):  # out of the next tests' lists
        assert head.delete(f"/api/announcements/{aid}").status_code == 200


def test_listed_by_meeting_time_with_the_page_feed_and_calendar(web: WebHub) -> None:
    # Broadcast on Tuesday at 18:00 for the meeting on Thursday 10/12 at 19:30.
    hall = made(
        web,
        title="Họp thôn cuối năm",
        category="meeting",
        start_at="2026-12-01T18:00",
        meeting_at="2026-12-10T19:30",
        meeting_place="Nhà văn hóa thôn",
    )
    # Reminded daily from Sunday: the calendar's event is still the one meeting.
    yard = made(
        web,
        title="Họp tổ tự quản",
        category="meeting",
        start_at="2026-12-06T18:00",
        rrule="FREQ=DAILY;COUNT=3",
        meeting_at="2026-12-08T19:00",
        meeting_place="Sân đình",
    )
    mine = {hall["id"]: "hall", yard["id"]: "yard"}
    shown = [(mine[aid], words) for aid, words in listed(web) if aid in mine]
    assert [name for name, _ in shown] == ["yard", "hall"]  # soonest meeting first
    assert "Thứ Ba" not in shown[1][1] and "18:00" not in shown[1][1]
    assert re.search(r"thứ Năm 10/12 19:30 Họp thôn cuối năm Nhà văn hóa thôn", shown[1][1])

    page = text_of(web.http().get(f"/a/{hall['id']}").text)
    assert AT_HALL in page

    feed = ET.fromstring(web.http().get("/feed.atom").content)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    contents = {
        e.findtext("a:id", namespaces=ns).rsplit("/", 1)[1]: e.findtext("a:content", namespaces=ns)  # type: ignore[union-attr]
        for e in feed.findall("a:entry", ns)
    }
    assert contents[hall["id"]].startswith(AT_HALL + ".\n\n" + TEXT)  # type: ignore[union-attr]

    cal = icalendar.Calendar.from_ical(web.http().get("/calendar.ics").content)
    events = [e for e in cal.walk("VEVENT") if str(e["UID"]).split("@")[0] in mine]
    assert sorted(mine[str(e["UID"]).split("@")[0]] for e in events) == ["hall", "yard"]
    tz = web.settings.tz
    for e in events:
        name = mine[str(e["UID"]).split("@")[0]]
        start, end = e.decoded("DTSTART"), e.decoded("DTEND")
        want = datetime(2026, 12, 10, 19, 30) if name == "hall" else datetime(2026, 12, 8, 19)
        assert start == want.replace(tzinfo=tz) and (end - start).total_seconds() == 7200
        assert str(e["LOCATION"]) == ("Nhà văn hóa thôn" if name == "hall" else "Sân đình")
        # The broadcasts are no event: no RRULE, and said in the description only.
        assert "RRULE" not in e and "DURATION" not in e
        assert "Lời mời phát trên loa:" in str(e["DESCRIPTION"])
        assert (str(e["TRANSP"]), str(e["STATUS"])) == ("OPAQUE", "CONFIRMED")


def test_the_compose_form_takes_a_meeting_and_says_what_is_missing(web: WebHub) -> None:
    head = web.sign_in("truong-thon", "head")
    try:
        csrf = form_value(head.get("/app/compose").text, "csrf")
        fields = {
            "csrf": csrf,
            "title": "Họp dân",
            "source": "text",
            "text": TEXT,
            "category": "meeting",
            "priority": "normal",
            "zones": "all",
            "when": "at",
            "date": "2026-12-01",
            "time": "18:00",
            "repeat": "1",
            "published": "yes",
            "meeting_time": "19:30",
        }
        r = head.post("/app/compose", data=fields)
        assert r.status_code == 422
        # Said next to the field, which is marked.
        assert re.search(r'id="meeting_date"[^>]*aria-invalid="true"', r.text)
        error = re.search(r'data-field-error="meeting_date">(.*?)</p>', r.text, re.S)
        assert error and "Hãy chọn ngày họp." in error.group(1)

        r = head.post("/app/compose", data=fields | {"meeting_date": "2026-11-30"})
        assert r.status_code == 422 and 'data-field-error="meeting_time"' in r.text
        assert "Giờ họp đã chọn (19:30 thứ Hai 30/11/2026) đã qua." in unescape(r.text)

        ok = fields | {"meeting_date": "2026-12-03", "meeting_place": "Hội trường"}
        r = head.post("/app/compose", data=ok)
        assert r.status_code == 303, r.text[:2000]
        aid = r.headers["location"].rsplit("#a-", 1)[1]
        a = web.http("head").get(f"/api/announcements/{aid}").json()
        assert (a["meeting_at"], a["meeting_place"]) == ("2026-12-03T12:30:00Z", "Hội trường")
        # The edit page has them back.
        edit = head.get(f"/app/announcements/{aid}/edit").text
        assert 'name="meeting_date" type="date" value="2026-12-03"' in edit
        assert 'value="Hội trường"' in edit

        # An invitation typed in the default category: the hint, and its button without
        # a script (the form again, made a meeting, with what was read filled in).
        said = "Kính mời bà con dự họp thôn lúc 19h30 thứ Năm 10/12 tại nhà văn hóa thôn."
        hint = head.get("/app/compose/meeting-hint", params={"title": "Họp", "text": said})
        assert hint.json()["show"] is True and AT_HALL in hint.json()["text"]
        notice = fields | {"category": "notice", "text": said, "meeting_time": ""}
        r = head.post("/app/compose", data=notice | {"take_meeting": "yes"})
        assert r.status_code == 200
        assert re.search(r'name="category" value="meeting" checked', r.text)
        assert 'name="meeting_date" type="date" value="2026-12-10"' in r.text
        assert 'name="meeting_time" type="time" value="19:30"' in r.text
        assert 'value="Nhà văn hóa thôn"' in r.text
        assert head.get(
            "/app/compose/meeting-hint", params={"title": "Thu gom rác", "text": TEXT[:4]}
        ).json() == {"show": False, "text": "", "date": "", "time": "", "place": ""}
    finally:
        head.close()


def test_a_meeting_stays_listed_after_its_broadcast_and_leaves_once_over(web: WebHub) -> None:
    # Broadcast now, for Saturday morning: once said, still a meeting to come.
    now = made(web, title="Họp chi hội", category="meeting", meeting_at="2026-12-05T08:00")
    web.run_until(
        lambda: web.http().get(f"/api/announcements/{now['id']}").json()["status"] == "done",
        step=2.0,
        what="the invitation broadcast",
    )
    assert now["id"] in dict(listed(web))
    soon = made(
        web,
        title="Họp khẩn ban cán sự",
        category="meeting",
        start_at="2026-12-01T08:00",
        meeting_at="2026-12-01T19:30",
    )
    # Under way at 20:00, it is still listed, marked; at 21:31 it is over.
    clock = web.clock
    assert isinstance(clock, FakeClock)
    clock.set(datetime(2026, 12, 1, 13, 0, tzinfo=UTC))
    words = dict(listed(web))
    assert "Đang họp" in words[soon["id"]] and "Đang họp" not in words[now["id"]]
    clock.set(datetime(2026, 12, 1, 14, 31, tzinfo=UTC))
    ids = [aid for aid, _ in listed(web)]
    assert soon["id"] not in ids and now["id"] in ids
