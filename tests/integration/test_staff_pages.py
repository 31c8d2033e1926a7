"""The staff's announcement pages over real HTTP (real hub, broker, espeak-ng, ffmpeg, SQLite;
a fake clock): compose without JavaScript, refusals that say why, the recurrence picker
and the schedule in words, cancel and approve, the as-run log and its CSV, the rules."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest

from audio.sinks.null import NullSink
from hub.api.deps import CSRF_HEADER
from hub.automation.rule_model import Rule, load_rules_file
from hub.clock import FakeClock
from hub.web.forms import Fields, picker_fields, picker_rrule
from hub.web.staff_rules import parse_rule_text, rule_toml
from hub.words import table
from hub.words.schedule import describe_schedule as describe_rrule
from tests.broker import Broker
from tests.hubtest import hub_settings, wait_for
from tests.integration.test_web import _Checker
from tests.integration.web_fixture import WebHub, form_value, publish_many

pytestmark = pytest.mark.broker

ROOT = Path(__file__).parents[2]
#: Tuesday 1 December 2026, 07:00 in the village (UTC+7).
T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)


def staff_hub(broker: Broker, data: Path, *, sink_speed: float = 0, **env: str) -> WebHub:
    """The web hub with what these pages need: the ready-made rules, no wait for NTP (the
    clock is fake), room for many broadcasts a day, and a sink that takes no time (or, with
    ``sink_speed=1``, the audio's own length in real time)."""
    settings = hub_settings(
        broker,
        data,
        LANGSO_ANNOUNCEMENTS__REQUIRE_CLOCK_SYNC="false",
        LANGSO_ANNOUNCEMENTS__DAILY_CAP="100",
        LANGSO_RULES_FILE=str(ROOT / "config" / "rules.toml"),
        LANGSO_HEALTH__CHECK_INTERVAL_S="3600",
        **env,
    )
    web = WebHub(settings, FakeClock(T0))
    web.hub.playout.sink = NullSink(speed=sink_speed, clock=web.clock.now)
    return web


@pytest.fixture(scope="module")
def web(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebHub]:
    h = staff_hub(broker, tmp_path_factory.mktemp("staff"))
    yield h
    h.stop()


def client(web: WebHub, name: str, role: str) -> Iterator[httpx.Client]:
    c = web.sign_in(name, role)
    yield c
    c.close()


@pytest.fixture
def head(web: WebHub) -> Iterator[httpx.Client]:
    yield from client(web, "truong-thon", "head")


@pytest.fixture
def tech(web: WebHub) -> Iterator[httpx.Client]:
    yield from client(web, "ky-thuat", "technician")


@pytest.fixture
def anon(web: WebHub) -> Iterator[httpx.Client]:
    c = web.browser_client()
    yield c
    c.close()


def csrf_of(c: httpx.Client, path: str = "/app/") -> str:
    page = c.get(path)
    assert page.status_code == 200, page.status_code
    return form_value(page.text, "csrf")


def local_now(web: WebHub) -> datetime:
    return (web.clock.now() + timedelta(hours=7)).replace(tzinfo=None)


def compose_fields(web: WebHub, **over: Any) -> dict[str, Any]:
    """The compose form as a person fills it in: a text read aloud, half an hour from now."""
    at = local_now(web) + timedelta(minutes=30)
    fields: dict[str, Any] = {
        "title": "Họp thôn",
        "source": "text",
        "text": "Mời bà con đến nhà văn hóa họp thôn.",
        "category": "meeting",
        "priority": "normal",
        "zones": ["all"],
        "when": "at",
        "date": at.date().isoformat(),
        "time": f"{at:%H:%M}",
        "freq": "daily",
        "monthday": "1",
        "ends": "never",
        "repeat": "1",
        "published": "yes",
        # A meeting has its own date and time (issue 11): two days on, in the evening.
        "meeting_date": (at + timedelta(days=2)).date().isoformat(),
        "meeting_time": "19:30",
    }
    fields.update(over)
    return fields


def post(c: httpx.Client, path: str, fields: dict[str, Any], csrf: str | None) -> httpx.Response:
    data = dict(fields)
    if csrf is not None:
        data["csrf"] = csrf
    return c.post(path, data=data)


def audit(web: WebHub, action: str, target: str | None = None) -> list[Any]:
    sql, args = "SELECT * FROM audit_log WHERE action=?", [action]
    if target is not None:
        sql += " AND target=?"
        args.append(target)
    return web.hub.store.query(sql, args)


def created_id(r: httpx.Response) -> str:
    assert r.status_code == 303, (r.status_code, r.text[:2000])
    m = re.search(r"#a-([0-9a-f]+)$", r.headers["location"])
    assert m, r.headers["location"]
    return m.group(1)


def text_of(html: str) -> str:
    """The page's text, tags out, entities decoded, spaces squeezed."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


# -- compose ------------------------------------------------------------------------------
def test_compose_a_text_announcement_without_javascript(
    web: WebHub, head: httpx.Client, anon: httpx.Client
) -> None:
    page = head.get("/app/compose")
    assert page.status_code == 200
    assert 'enctype="multipart/form-data"' in page.text and 'name="title"' in page.text
    for zone in ("all", *web.settings.gpio.zones):
        assert f'name="zones" value="{zone}"' in page.text
    # Labelled as people call them (gpio.zone_names).
    assert "<span>Xóm Đông</span>" in page.text and "<span>Xóm Tây</span>" in page.text
    # Multipart, as the page posts it (an accented text keeps about its own size).
    csrf = form_value(page.text, "csrf")
    fields = compose_fields(web, title="Họp thôn tháng 12", zones=["xom-dong"])
    files = [
        (k, (None, v)) for k, vs in fields.items() for v in (vs if isinstance(vs, list) else [vs])
    ]
    r = head.post("/app/compose", files=[*files, ("csrf", (None, csrf))])
    aid = created_id(r)
    assert r.headers["location"].startswith("/app/schedule?ok=created")
    schedule = head.get(r.headers["location"])
    assert schedule.status_code == 200
    words = text_of(schedule.text)
    assert "Đã lên lịch phát." in words and "Họp thôn tháng 12" in words
    at = datetime.fromisoformat(f"{fields['date']}T{fields['time']}")
    assert f"Hôm nay, {fields['time']}" in words
    assert f"Một lần, lúc {fields['time']} thứ Ba 01/12/2026" in words
    assert f'id="a-{aid}"' in schedule.text
    # The JSON API has it, as any resident sees it.
    listed = {a["id"]: a for a in anon.get("/api/announcements").json()}
    a = listed[aid]
    due = (at - timedelta(hours=7)).replace(tzinfo=UTC)
    assert (a["status"], a["zones"], a["category"]) == ("scheduled", ["xom-dong"], "meeting")
    assert a["next_run"] == due.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert a["text"] == fields["text"] and a["rrule"] is None
    [row] = audit(web, "announcement.create", aid)
    assert row["actor"] == "truong-thon"


def test_listen_and_upload_use_the_api_with_the_session_and_its_csrf_header(
    web: WebHub, head: httpx.Client
) -> None:
    """What staff.js does: POST /api/tts/preview and /api/audio with the session cookie."""
    body = {"text": "Xin chào bà con.", "voice": None}
    assert head.post("/api/tts/preview", json=body).status_code == 403
    r = head.post("/api/tts/preview", json=body, headers={CSRF_HEADER: csrf_of(head)})
    assert r.status_code == 200 and r.headers["content-type"].startswith("audio/")
    assert len(r.content) > 1000


def test_a_refused_form_says_why_and_keeps_what_was_typed(web: WebHub, head: httpx.Client) -> None:
    csrf = csrf_of(head, "/app/compose")
    before = len(web.hub.announcements.list_all(staff=True))
    # A zone the hub does not have: the service's reason, shown on the form.
    r = post(head, "/app/compose", compose_fields(web, title="Sai khu", zones=["xom-bac"]), csrf)
    assert r.status_code == 422
    assert "zones: unknown zone &#39;xom-bac&#39;" in r.text or "unknown zone 'xom-bac'" in r.text
    assert 'role="alert"' in r.text
    assert 'value="Sai khu"' in r.text and "Mời bà con đến nhà văn hóa họp thôn." in r.text
    # A time already past: said in words, the date and time kept.
    past = local_now(web) - timedelta(hours=1)
    r = post(
        head,
        "/app/compose",
        compose_fields(web, title="Quá giờ", date=past.date().isoformat(), time=f"{past:%H:%M}"),
        csrf,
    )
    assert r.status_code == 422
    assert f"Giờ đã chọn ({past:%H:%M} thứ Ba 01/12/2026) đã qua" in r.text
    assert f'value="{past:%H:%M}"' in r.text and 'value="Quá giờ"' in r.text
    assert 'id="time" name="time" type="time"' in r.text and 'aria-invalid="true"' in r.text
    # An emergency needs its box ticked (not only a JavaScript confirm()).
    r = post(head, "/app/compose", compose_fields(web, priority="emergency", when="now"), csrf)
    assert r.status_code == 422 and "hãy đánh dấu ô xác nhận" in r.text
    # Weekly without a day; no zone; in English.
    r = post(head, "/app/compose", compose_fields(web, when="repeat", freq="weekly"), csrf)
    assert r.status_code == 422 and "Hãy chọn ít nhất một ngày trong tuần." in r.text
    r = post(head, "/app/compose?lang=en", compose_fields(web, zones=[]), csrf)
    assert r.status_code == 422 and "Choose at least one zone." in r.text
    # The longest text (5000 letters, most of them accented) fits the staff pages' form
    # limit as multipart, the way the page posts it: read, refused for its zone, kept.
    long_text = ("Bà con chú ý: lịch cắt điện xóm Đông. " * 140)[:5000]
    fields = compose_fields(web, text=long_text, zones=["xom-bac"])
    files = [
        (k, (None, v)) for k, vs in fields.items() for v in (vs if isinstance(vs, list) else [vs])
    ]
    r = head.post("/app/compose", files=[*files, ("csrf", (None, csrf))])
    assert r.status_code == 422 and long_text in unescape(r.text)
    assert len(web.hub.announcements.list_all(staff=True)) == before


@pytest.mark.parametrize(
    ("picked", "rrule"),
    [
        ({"freq": "daily"}, "FREQ=DAILY"),
        ({"freq": "weekdays"}, "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"),
        ({"freq": "weekly", "byday": ["MO"]}, "FREQ=WEEKLY;BYDAY=MO"),
        ({"freq": "weekly", "byday": ["SU", "WE", "MO"]}, "FREQ=WEEKLY;BYDAY=MO,WE,SU"),
        ({"freq": "monthly", "monthday": "1"}, "FREQ=MONTHLY;BYMONTHDAY=1"),
        ({"freq": "monthly", "monthday": "-1"}, "FREQ=MONTHLY;BYMONTHDAY=-1"),
        ({"freq": "daily", "ends": "count", "count": "10"}, "FREQ=DAILY;COUNT=10"),
        (
            {"freq": "weekly", "byday": ["FR"], "ends": "until", "until": "2026-12-31"},
            "FREQ=WEEKLY;BYDAY=FR;UNTIL=20261231T235959",
        ),
        (
            {"freq": "custom", "rrule_custom": "rrule:freq=hourly;interval=2"},
            "FREQ=HOURLY;INTERVAL=2",
        ),
    ],
)
def test_the_recurrence_picker_makes_these_rrules(picked: dict[str, Any], rrule: str) -> None:
    items = [(k, x) for k, v in picked.items() for x in (v if isinstance(v, list) else [v])]
    assert picker_rrule(Fields(items)) == rrule
    # And back: editing shows the picker as it was (or the RRULE as written).
    again = picker_fields(rrule)
    items = [(k, x) for k, v in again.items() for x in (v if isinstance(v, list) else [v])]
    assert picker_rrule(Fields(items)) == rrule


def test_a_recurring_announcement_from_the_form(web: WebHub, head: httpx.Client) -> None:
    csrf = csrf_of(head, "/app/compose")
    tomorrow = (local_now(web) + timedelta(days=1)).date().isoformat()
    fields = compose_fields(
        web, title="Bản tin sáng", when="repeat", date=tomorrow, time="06:00", freq="weekdays"
    )
    aid = created_id(post(head, "/app/compose", fields, csrf))
    a = web.hub.announcements.get(aid, staff=True)
    assert a is not None and a["rrule"] == "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"
    assert "Từ thứ Hai đến thứ Sáu, lúc 06:00" in text_of(head.get("/app/schedule").text)
    # The live preview's words and next times come from the same code.
    q = {"when": "repeat", "date": tomorrow, "time": "06:00", "freq": "weekly", "byday": "MO"}
    d = head.get("/app/compose/describe", params=q).json()
    assert d["rrule"] == "FREQ=WEEKLY;BYDAY=MO" and d["words"] == "Thứ Hai hằng tuần, lúc 06:00"
    assert d["next"][0] == "Thứ Hai 07/12, 06:00" and d["error"] == ""
    en = head.get("/app/compose/describe", params={**q, "lang": "en"}).json()
    assert en["words"] == "Every Monday at 06:00"


VI_EN = [
    ("FREQ=DAILY", "Hằng ngày lúc 06:00", "Every day at 06:00"),
    (
        "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
        "Từ thứ Hai đến thứ Sáu, lúc 06:00",
        "Every weekday (Monday to Friday) at 06:00",
    ),
    ("FREQ=WEEKLY;BYDAY=MO", "Thứ Hai hằng tuần, lúc 06:00", "Every Monday at 06:00"),
    (
        "FREQ=WEEKLY;BYDAY=MO,WE,FR",
        "Thứ Hai, thứ Tư và thứ Sáu hằng tuần, lúc 06:00",
        "Every Monday, Wednesday and Friday at 06:00",
    ),
    ("FREQ=WEEKLY", "Thứ Ba hằng tuần, lúc 06:00", "Every Tuesday at 06:00"),
    ("FREQ=WEEKLY;BYDAY=SU", "Chủ nhật hằng tuần, lúc 06:00", "Every Sunday at 06:00"),
    (
        "FREQ=MONTHLY;BYMONTHDAY=1",
        "Ngày 1 hằng tháng, lúc 06:00",
        "On the 1st of every month at 06:00",
    ),
    (
        "FREQ=MONTHLY;BYMONTHDAY=22",
        "Ngày 22 hằng tháng, lúc 06:00",
        "On the 22nd of every month at 06:00",
    ),
    (
        "FREQ=MONTHLY;BYMONTHDAY=-1",
        "Ngày cuối cùng của tháng, lúc 06:00",
        "On the last day of every month at 06:00",
    ),
    ("FREQ=DAILY;COUNT=10", "Hằng ngày lúc 06:00, 10 lần", "Every day at 06:00, 10 times"),
    (
        "FREQ=WEEKLY;BYDAY=FR;UNTIL=20261231T235959",
        "Thứ Sáu hằng tuần, lúc 06:00, đến hết ngày 31/12/2026",
        "Every Friday at 06:00, until 31 Dec 2026",
    ),
    ("FREQ=DAILY;INTERVAL=2", "2 ngày một lần, lúc 06:00", "Every 2 days at 06:00"),
    # The rules page's schedule triggers are hourly more often than not.
    ("FREQ=HOURLY", "Mỗi giờ một lần, từ 06:00", "Every hour from 06:00"),
    ("FREQ=HOURLY;INTERVAL=3", "3 giờ một lần, từ 06:00", "Every 3 hours from 06:00"),
    ("FREQ=YEARLY", "Hằng năm vào ngày 01/12, lúc 06:00", "Every year on 1 Dec at 06:00"),
    (
        "FREQ=MONTHLY;BYDAY=1MO",
        "Lặp theo quy tắc FREQ=MONTHLY;BYDAY=1MO",
        "Repeats by the rule FREQ=MONTHLY;BYDAY=1MO",
    ),
]


@pytest.mark.parametrize(("rrule", "vi", "en"), VI_EN)
def test_describe_rrule_in_vietnamese_and_english(rrule: str, vi: str, en: str) -> None:
    start = datetime(2026, 12, 1, 6, 0)  # a Tuesday
    assert describe_rrule(rrule, start, "vi") == vi
    assert describe_rrule(rrule, start, "en") == en
    assert describe_rrule("rrule:" + rrule.lower(), start, "en") == en


def test_edit_shows_the_form_filled_in_and_saves_the_change(
    web: WebHub, head: httpx.Client
) -> None:
    csrf = csrf_of(head, "/app/compose")
    tomorrow = (local_now(web) + timedelta(days=1)).date().isoformat()
    fields = compose_fields(
        web,
        title="Thu gom rác",
        when="repeat",
        date=tomorrow,
        time="17:00",
        freq="weekly",
        byday=["TH", "MO"],
    )
    aid = created_id(post(head, "/app/compose", fields, csrf))
    page = head.get(f"/app/announcements/{aid}/edit")
    assert page.status_code == 200
    assert 'value="Thu gom rác"' in page.text
    assert re.search(r'name="byday" value="MO" checked', page.text)
    assert re.search(r'name="byday" value="TH" checked', page.text)
    assert not re.search(r'name="byday" value="TU" checked', page.text)
    assert re.search(r'<option value="weekly" selected>', page.text)
    changed = {**fields, "title": "Thu gom rác (đổi giờ)", "time": "17:30", "byday": ["SA"]}
    r = post(head, f"/app/announcements/{aid}/edit", changed, csrf)
    assert r.status_code == 303 and "ok=updated" in r.headers["location"]
    a = web.hub.announcements.get(aid, staff=True)
    assert a is not None
    assert (a["title"], a["rrule"]) == ("Thu gom rác (đổi giờ)", "FREQ=WEEKLY;BYDAY=SA")
    assert audit(web, "announcement.update", aid)


# -- cancel, approve, stop ---------------------------------------------------------------
def test_cancel_needs_the_csrf_token(web: WebHub, head: httpx.Client) -> None:
    csrf = csrf_of(head, "/app/compose")
    aid = created_id(post(head, "/app/compose", compose_fields(web, title="Sẽ hủy"), csrf))
    refused = post(head, f"/app/announcements/{aid}/cancel", {}, None)
    assert refused.status_code == 403 and refused.headers["x-refused"]
    assert web.hub.announcements.get(aid, staff=True)["status"] == "scheduled"  # type: ignore[index]
    r = post(head, f"/app/announcements/{aid}/cancel", {}, csrf)
    assert r.status_code == 303 and r.headers["location"] == "/app/schedule?ok=cancelled"
    assert web.hub.announcements.get(aid, staff=True)["status"] == "cancelled"  # type: ignore[index]
    assert f'id="a-{aid}"' not in head.get("/app/schedule").text
    assert audit(web, "announcement.cancel", aid)


def test_a_draft_is_approved_by_another_head(broker: Broker, tmp_path: Path) -> None:
    # Its own pins would clash with the module's hub on gpiozero's one mock factory.
    web = staff_hub(
        broker,
        tmp_path / "hub",
        LANGSO_ANNOUNCEMENTS__REQUIRE_APPROVAL="true",
        LANGSO_GPIO__ENABLED="false",
    )
    a, b = web.sign_in("truong-thon", "head"), web.sign_in("pho-thon", "head")
    try:
        csrf_a, csrf_b = csrf_of(a, "/app/compose"), csrf_of(b)
        assert "một trưởng thôn khác duyệt" in a.get("/app/compose").text
        r = post(a, "/app/compose", compose_fields(web, title="Cần duyệt"), csrf_a)
        aid = created_id(r)
        assert "ok=draft" in r.headers["location"]
        assert web.hub.announcements.get(aid, staff=True)["status"] == "draft"  # type: ignore[index]
        mine = a.get("/app/schedule").text
        assert "Chờ duyệt" in mine and f"/app/announcements/{aid}/approve" not in mine
        # The author may not approve it (the form is not even shown to them).
        r = post(a, f"/app/announcements/{aid}/approve", {}, csrf_a)
        assert r.status_code == 403 and "Người soạn không tự duyệt được" in r.text
        theirs = b.get("/app/schedule").text
        assert f"/app/announcements/{aid}/approve" in theirs
        assert post(b, f"/app/announcements/{aid}/approve", {}, None).status_code == 403
        r = post(b, f"/app/announcements/{aid}/approve", {}, csrf_b)
        assert r.status_code == 303 and r.headers["location"] == "/app/schedule?ok=approved"
        got = web.hub.announcements.get(aid, staff=True)
        assert got is not None and (got["status"], got["approved_by"]) == ("scheduled", "pho-thon")
        assert "Duyệt: pho-thon" in text_of(b.get("/app/schedule").text)
        assert audit(web, "announcement.approve", aid)[0]["actor"] == "pho-thon"
    finally:
        a.close()
        b.close()
        web.stop()


def test_the_stop_button_posts_with_csrf_and_is_audited(web: WebHub, head: httpx.Client) -> None:
    assert post(head, "/app/broadcasts/stop", {}, None).status_code == 403
    r = post(head, "/app/broadcasts/stop", {}, csrf_of(head))
    assert r.status_code == 303 and r.headers["location"] == "/app/?ok=idle"
    assert "Không có gì đang phát." in head.get(r.headers["location"]).text
    [row] = audit(web, "broadcast.stop")[-1:]
    assert row["actor"] == "truong-thon" and json.loads(row["detail"]) == {"stopped": False}


# -- history and the as-run report --------------------------------------------------------
def test_history_filters_and_the_csv_report(web: WebHub, head: httpx.Client) -> None:
    csrf = csrf_of(head, "/app/compose")
    fields = compose_fields(web, title="Loa thử, “đêm nay”", when="now", zones=["xom-tay"])
    aid = created_id(post(head, "/app/compose", fields, csrf))
    web.run_until(
        lambda: web.hub.store.one(
            "SELECT 1 FROM broadcasts WHERE announcement_id=? AND status='played'", (aid,)
        ),
        what="the broadcast played",
    )
    page = head.get("/app/history")
    assert page.status_code == 200
    words = text_of(page.text)
    assert "Loa thử, “đêm nay”" in words and "Đã phát" in words and "Khu: Xóm Tây" in words
    assert "Loa thử" not in head.get("/app/history?status=missed").text
    today = local_now(web).date()
    assert "Loa thử" in head.get(f"/app/history?from={today}&to={today}").text
    assert "Loa thử" not in head.get(f"/app/history?to={today - timedelta(days=1)}").text
    assert (
        f'href="/app/history.csv?status=played&amp;from={today}"'
        in head.get(f"/app/history?status=played&from={today}").text
    )
    # The report: UTF-8 with a BOM, a header row, the broadcast in village time.
    r = head.get("/app/history.csv", params={"status": "played", "from": str(today)})
    assert r.status_code == 200 and r.headers["content-type"] == "text/csv; charset=utf-8"
    assert (
        "attachment" in r.headers["content-disposition"]
        and ".csv" in r.headers["content-disposition"]
    )
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0] == [
        "Giờ theo lịch",
        "Bắt đầu",
        "Kết thúc",
        "Kết quả",
        "Tiêu đề",
        "Mức ưu tiên",
        "Khu vực",
        "Ghi chú",
    ]
    mine = [row for row in rows[1:] if row[4] == "Loa thử, “đêm nay”"]
    assert len(mine) == 1
    scheduled, started, ended, status, _, priority, zones, _ = mine[0]
    assert (status, priority, zones) == ("Đã phát", "Bình thường", "Xóm Tây")
    assert scheduled.startswith(today.isoformat()) and re.fullmatch(r"[\d-]{10} [\d:]{8}", started)
    assert ended >= started
    en = head.get("/app/history.csv?lang=en&status=missed").content.decode("utf-8-sig")
    assert en.splitlines()[0].startswith("Scheduled,Started,Ended,Outcome,Title")
    assert "Loa thử" not in en


# -- rules ----------------------------------------------------------------------------------
def test_the_rules_page_toggles_a_rule(web: WebHub, tech: httpx.Client) -> None:
    page = tech.get("/app/rules")
    assert page.status_code == 200
    words = text_of(page.text)
    assert "Mực nước vượt báo động 1" in words
    assert "Mực nước ≥ 180 cm liên tục 1 phút; hết khi xuống dưới 170 cm" in words
    assert "Nhắn tin tới tổ kỹ thuật và trưởng thôn" in words
    csrf = form_value(page.text, "csrf")
    off = {"enabled": "0", "next": "/app/rules"}
    assert post(tech, "/app/rules/flood-level-1/toggle", off, None).status_code == 403
    r = post(tech, "/app/rules/flood-level-1/toggle", off, csrf)
    assert (
        r.status_code == 303 and r.headers["location"] == "/app/rules?ok=disabled#r-flood-level-1"
    )
    api = web.http("technician").get("/api/rules/flood-level-1").json()
    assert api["enabled"] is False and api["source"] == "api"
    assert not web.hub.rules.rules["flood-level-1"].enabled  # reloaded
    [row] = audit(web, "rule.change", "flood-level-1")
    assert json.loads(row["detail"]) == {"enabled": False} and row["actor"] == "ky-thuat"
    assert 'aria-checked="false"' in tech.get("/app/rules/flood-level-1").text
    post(tech, "/app/rules/flood-level-1/toggle", {"enabled": "1"}, csrf)
    assert web.hub.rules.rules["flood-level-1"].enabled


BAD_RULE = """\
id = "nuoc-thu"
name = "Thử"
trigger = { type = "metric", metric = "water_level_cm", op = ">=", value = 100 }
actions = [{ type = "notify", to = ["technicians"], template = "Mực nước {khong_co}" }]
"""


def test_rules_are_added_edited_and_deleted_and_their_firings_shown(
    web: WebHub, head: httpx.Client, broker: Broker
) -> None:
    page = head.get("/app/rules")
    csrf = form_value(page.text, "csrf")
    # The example in the box is a rule the hub takes as it is.
    example = unescape(re.search(r'name="definition"[^>]*>([^<]*)</textarea>', page.text)[1])  # type: ignore[index]
    assert post(head, "/app/rules", {"definition": example}, csrf).status_code == 303
    r = post(head, "/app/rules", {"definition": BAD_RULE}, csrf)
    assert r.status_code == 422
    reason = "actions.0.template: unknown placeholder &#39;khong_co&#39;"
    assert reason in r.text or reason.replace("&#39;", "'") in r.text
    assert "Mực nước {khong_co}" in unescape(r.text)  # what was typed, kept
    r = post(head, "/app/rules", {"definition": "id = 'X'"}, csrf)
    assert r.status_code == 422 and "id: String should match pattern" in r.text
    good = BAD_RULE.replace("{khong_co}", "{value} cm tại {device.name}")
    r = post(head, "/app/rules", {"definition": good}, csrf)
    assert r.status_code == 303 and r.headers["location"] == "/app/rules?ok=added#r-nuoc-thu"
    assert post(head, "/app/rules", {"definition": good}, csrf).status_code == 409
    assert 'id="r-nuoc-thu"' in head.get("/app/rules").text
    assert audit(web, "rule.add", "nuoc-thu")[0]["actor"] == "truong-thon"
    # JSON is fine too.
    as_json = json.dumps(
        {
            **json.loads(Rule.model_validate(parse_rule_text(good)).model_dump_json()),
            "id": "nuoc-json",
        }
    )
    assert post(head, "/app/rules", {"definition": as_json}, csrf).status_code == 303
    # A reading over the limit fires it; the rule's page shows the cause and each result.
    site = web.settings.site
    publish_many(
        broker,
        [
            (f"village/{site}/sensor/cau-dong/status", "online", True),
            (f"village/{site}/sensor/cau-dong/state", json.dumps({"water_level_cm": 152}), False),
        ],
    )
    wait_for(
        lambda: web.hub.store.one("SELECT 1 FROM rule_firings WHERE rule_id='nuoc-thu'"),
        5,
        "firing",
    )
    page = head.get("/app/rules/nuoc-thu")
    words = text_of(page.text)
    assert "cau-dong" in words and "Bắt đầu" in words
    assert "Mực nước = 152 cm (≥ 100 cm)" in words
    assert "Nhắn tin: Không gửi được: chưa cấu hình kênh nhận tin" in words
    assert "Lần cuối: vừa xong" in text_of(head.get("/app/rules").text)
    # Edit: the box holds the rule as TOML; a rule keeps its id.
    assert 'name = "Thử"' in unescape(page.text)
    r = post(head, "/app/rules/nuoc-thu", {"definition": good.replace("nuoc-thu", "khac")}, csrf)
    assert r.status_code == 422 and "a rule keeps its id" in r.text
    r = post(head, "/app/rules/nuoc-thu", {"definition": good.replace("= 100", "= 120")}, csrf)
    assert r.status_code == 303
    assert web.hub.rules.rules["nuoc-thu"].trigger.value == 120  # type: ignore[union-attr]
    # Delete: only with the box ticked.
    r = post(head, "/app/rules/nuoc-thu/delete", {}, csrf)
    assert r.status_code == 422 and "Hãy đánh dấu ô xác nhận để xóa." in r.text
    r = post(head, "/app/rules/nuoc-thu/delete", {"confirm": "yes"}, csrf)
    assert r.status_code == 303 and "nuoc-thu" not in web.hub.rules.rules
    assert head.get("/app/rules/nuoc-thu").status_code == 404
    assert audit(web, "rule.delete", "nuoc-thu")


def test_every_ready_made_rule_reads_back_from_its_toml() -> None:
    for rule in load_rules_file(ROOT / "config" / "rules.toml"):
        assert Rule.model_validate(parse_rule_text(rule_toml(rule))) == rule


# -- roles, week view, the pages themselves -----------------------------------------------
def test_who_may_see_what(
    web: WebHub, head: httpx.Client, tech: httpx.Client, anon: httpx.Client
) -> None:
    # A technician reads the schedule and the log, keeps the rules, does not compose.
    assert tech.get("/app/compose").status_code == 403
    r = post(tech, "/app/compose", compose_fields(web), csrf_of(tech))
    assert r.status_code == 403
    schedule = tech.get("/app/schedule")
    assert schedule.status_code == 200 and "/edit" not in schedule.text
    assert tech.get("/app/history").status_code == 200
    assert tech.get("/app/history.csv").status_code == 200
    assert tech.get("/app/rules").status_code == 200
    nav = tech.get("/app/").text
    assert 'href="/app/rules"' in nav and 'href="/app/compose"' not in nav
    # The head composes and keeps the rules too; the inbox tab is theirs.
    nav = head.get("/app/").text
    for path in ("/app/compose", "/app/schedule", "/app/rules", "/app/feedback"):
        assert f'href="{path}"' in nav
    # Nobody signed in: to the sign-in page, and back after.
    for path in (
        "/app/compose",
        "/app/schedule",
        "/app/history.csv",
        "/app/rules/x",
        "/app/partials/upcoming",
    ):
        r = anon.get(path)
        assert r.status_code == 302 and r.headers["location"].startswith("/app/login?next=")
    r = anon.post("/app/compose", data={"title": "x"})
    assert r.status_code == 303 and r.headers["location"].startswith("/app/login")


def test_the_week_view(web: WebHub, head: httpx.Client) -> None:
    csrf = csrf_of(head, "/app/compose")
    tomorrow = local_now(web).date() + timedelta(days=1)
    fields = compose_fields(
        web, title="Tập thể dục", when="repeat", date=str(tomorrow), time="05:45", freq="daily"
    )
    created_id(post(head, "/app/compose", fields, csrf))
    page = head.get("/app/schedule?view=week")
    assert page.status_code == 200
    words = text_of(page.text)
    assert "Tuần 30/11 – 06/12/2026" in words and "Hôm nay" in words
    # Wednesday to Sunday: five mornings this week, seven the next.
    assert words.count("05:45 Tập thể dục") == 5
    nxt = text_of(head.get("/app/schedule?view=week&week=1").text)
    assert "Tuần 07/12 – 13/12/2026" in nxt and nxt.count("05:45 Tập thể dục") == 7
    assert "Week of 30 Nov – 6 Dec 2026" in head.get("/app/schedule?view=week&lang=en").text


def test_the_pages_are_well_formed_and_keep_to_the_csp(
    web: WebHub, head: httpx.Client, tech: httpx.Client
) -> None:
    pages = [
        (head, "/app/"),
        (head, "/app/compose"),
        (head, "/app/schedule"),
        (head, "/app/schedule?view=week"),
        (head, "/app/history"),
        (tech, "/app/rules"),
        (tech, "/app/rules/flood-level-3"),
        (head, "/app/compose?lang=en"),
    ]
    for c, path in pages:
        r = c.get(path)
        assert r.status_code == 200, path
        assert "script-src 'self'" in r.headers["content-security-policy"]
        checker = _Checker()
        checker.feed(r.text)
        assert checker.errors == [] and checker.stack == [], (path, checker.errors)
        assert not re.search(r"<script(?![^>]*\b(src|type=\"application/json\"))", r.text), path
        assert not re.search(r"\sstyle=", r.text), path
        assert not re.search(r"\son[a-z]+=", r.text), path
        assert "https://" not in r.text, path
    asset = head.get("/static/staff.js")
    assert asset.status_code == 200 and "X-CSRF-Token" in asset.text


def test_the_staff_catalogue() -> None:
    staff, common, public = table("staff"), table("common"), table("public")
    assert set(staff["vi"]) == set(staff["en"])
    assert not set(staff["vi"]) & set(common["vi"])
    assert not set(staff["vi"]) & set(public["vi"])
    for key, vi in staff["vi"].items():
        en = staff["en"][key]
        assert vi.strip() and en.strip(), key
        assert set(re.findall(r"{(\w+)}", vi)) == set(re.findall(r"{(\w+)}", en)), key
    dynamic = [
        *(f"bc.{s}" for s in ("played", "missed", "preempted", "failed", "cancelled")),
        *(f"wd.{d}" for d in ("MO", "TU", "WE", "TH", "FR", "SA", "SU")),
        *(f"freq.{f}" for f in ("daily", "weekdays", "weekly", "monthly", "custom")),
        *(f"hist.col.{c}" for c in ("scheduled", "started", "ended", "detail")),
        *(f"prio.{p}.hint" for p in ("normal", "high", "emergency")),
    ]
    for key in dynamic:
        assert key in staff["vi"], key
    assert date(2026, 12, 1).weekday() == 1  # the tests' T0 is a Tuesday
