"""The residents' side over real HTTP, with a real broker, espeak-ng, ffmpeg and SQLite:
the public page and an announcement's page (QR code), the Atom feed checked against RFC
4287, the iCalendar file parsed and its RRULEs expanded against the hub's own schedule,
and residents' feedback (rate limit, size limits, CSRF, the head's inbox, the audit)."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import feedparser
import httpx
import icalendar
import pytest
import segno
import uvicorn
from dateutil.rrule import rruleset, rrulestr
from gpiozero.pins.mock import MockFactory

import hub.services.feedback as feedback_api
from audio.sinks import Sink
from audio.sinks.file import FileSink
from hub.app import build_hub
from hub.broadcast.recurrence import Recurrence
from hub.clock import FakeClock
from hub.ratelimit import RateLimiter
from hub.server import create_app
from hub.settings import Settings
from hub.store.feedback import SALT_KEY
from hub.web import feed, feedback_form, poster, public_pages, staff_inbox
from hub.words import catalogue, table
from hub.words.schedule import describe_schedule
from tests.broker import Broker
from tests.hubtest import hub_settings, wait_for
from tests.integration.test_web import well_formed
from tests.integration.web_fixture import WebHub, form_value

pytestmark = pytest.mark.broker

T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)  # 07:00 in the village, a Tuesday
VN = ZoneInfo("Asia/Ho_Chi_Minh")
ATOM = "{http://www.w3.org/2005/Atom}"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
TRICKY = "Họp <chi bộ> & đoàn thanh niên; phí: 5,000đ"


class PublicHub(WebHub):
    """WebHub with an injected sink and a synchronised clock, so announcements play (on
    the fake clock) and the residents see them."""

    def __init__(
        self,
        settings: Settings,
        clock: FakeClock,
        *,
        sink: Callable[[FakeClock], Sink] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.pins = MockFactory()
        self.hub = build_hub(
            settings,
            clock=clock,
            pin_factory=self.pins,
            sink=sink(clock) if sink else None,
            synced=lambda: True,
        )
        self.url = f"http://127.0.0.1:{settings.http.port}"
        self.tokens: dict[str, str] = {}
        self._clients: dict[str, httpx.Client] = {}
        self.app = create_app(self.hub)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=settings.http.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, 10, "uvicorn to start")
        wait_for(lambda: self.hub.mqtt.connected, 10, "the hub to connect to the broker")


def instant_sink(out: Path) -> Callable[[FakeClock], Sink]:
    """The file sink copying at once: a broadcast is over as soon as it starts."""
    return lambda clock: FileSink(out, speed=0, clock=clock.now)


@dataclass
class Seeded:
    played: dict[str, Any]
    daily: dict[str, Any]
    weekly: dict[str, Any]
    unpublished: dict[str, Any]
    cancelled: dict[str, Any]
    draft: dict[str, Any]


@pytest.fixture(scope="module")
def web(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PublicHub]:
    data = tmp_path_factory.mktemp("public")
    h = PublicHub(hub_settings(broker, data), FakeClock(T0), sink=instant_sink(data / "out"))
    yield h
    h.stop()


@pytest.fixture(scope="module")
def seeded(web: PublicHub) -> Seeded:
    head = web.http("head")

    def create(**body: Any) -> dict[str, Any]:
        r = head.post("/api/announcements", json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    played = create(title="Thu gom rác", text="Sáng mai thu gom rác thải tại các xóm.")
    daily = create(
        title="Bản tin sáng",
        text="Bản tin phát thanh buổi sáng của thôn.",
        category="news",
        rrule="FREQ=DAILY",
        start_at="2026-12-02T06:00:00",
        exdates=["2026-12-05T06:00:00"],
    )
    weekly = create(
        title=TRICKY,
        text="Mời đoàn viên đến họp.\nĐịa điểm: nhà văn hóa, phòng 2; mang theo sổ.",
        # A weekly broadcast (a meeting's calendar event is the meeting: test_meetings.py).
        category="notice",
        rrule="FREQ=WEEKLY;BYDAY=MO",
        start_at="2026-12-07T19:30:00",
    )
    unpublished = create(
        title="Nội bộ ban cán sự",
        text="Không công bố.",
        published=False,
        start_at="2026-12-03T08:00",
    )
    cancelled = create(title="Lịch cũ đã hủy", text="Đã hủy.", start_at="2026-12-03T09:00")
    assert head.delete(f"/api/announcements/{cancelled['id']}").status_code == 200
    draft = create(title="Bản nháp chờ duyệt", text="Chờ duyệt.", start_at="2026-12-03T10:00")
    # A draft is what require_approval makes of a new announcement; set it here directly.
    with web.hub.store.transaction() as conn:
        conn.execute("UPDATE announcements SET status='draft' WHERE id=?", (draft["id"],))
    web.run_until(
        lambda: any(
            b["announcement_id"] == played["id"] and b["status"] == "played"
            for b in web.http().get("/api/broadcasts").json()
        ),
        what="the first announcement played",
    )
    return Seeded(played, daily, weekly, unpublished, cancelled, draft)


@pytest.fixture
def anon(web: PublicHub) -> Iterator[httpx.Client]:
    c = web.browser_client()
    yield c
    c.close()


def fresh_window(web: PublicHub) -> None:
    """Each feedback test starts with an empty rate-limit window (the hub's own clock)."""
    web.clock.advance(feedback_api.RATE_WINDOW_S + 1)


# -- the residents' pages -------------------------------------------------------------------
def test_the_public_page_lists_a_played_announcement_with_working_audio(
    web: PublicHub, seeded: Seeded, anon: httpx.Client
) -> None:
    r = anon.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    well_formed(r.text)
    html = r.text
    played = seeded.played
    assert played["title"] in html and "Đã phát" in html
    src = f'<source src="/api/announcements/{played["id"]}/audio" type="audio/'
    assert src in html and 'preload="none"' in html
    audio = anon.get(f"/api/announcements/{played['id']}/audio")
    assert audio.status_code == 200
    assert audio.headers["content-type"].split(";")[0] in ("audio/ogg", "audio/mpeg")
    assert len(audio.content) > 1000
    # The weekly one is listed, escaped; the links to the feeds are there.
    assert "Lịch họp sắp tới" in html and "Họp &lt;chi bộ&gt; &amp; đoàn" in html
    # Following, in words: a phone opening the .ics or the Atom XML would show raw text.
    assert 'href="/theo-doi#lich"' in html and 'href="/theo-doi#tin"' in html
    assert '<link rel="alternate" type="application/atom+xml" href="/feed.atom"' in html
    follow = anon.get("/theo-doi").text
    well_formed(follow)
    host = web.url.split("://", 1)[1]
    assert f'href="webcal://{host}/calendar.ics"' in follow
    assert f">{web.url}/calendar.ics</code>" in follow and f">{web.url}/feed.atom</code>" in follow
    assert "Google Lịch" in follow and 'href="/calendar.ics" download' in follow
    assert "data-village-only" in follow  # 127.0.0.1: Google's servers cannot fetch it
    assert 'href="/gop-y"' in html and "/app/login" in html
    for placeholder in ("coming soon", "sắp ra mắt", "TODO", "lorem"):
        assert placeholder.lower() not in html.lower()
    en = anon.get("/?lang=en").text
    assert '<html lang="en">' in en and "Latest announcements" in en and "Played" in en


def test_drafts_cancelled_and_unpublished_are_not_shown(
    web: PublicHub, seeded: Seeded, anon: httpx.Client
) -> None:
    home = anon.get("/").text
    feed = anon.get("/feed.atom").text
    ics = anon.get("/calendar.ics").text
    for hidden in (seeded.unpublished, seeded.cancelled, seeded.draft):
        assert hidden["title"] not in home and hidden["title"] not in feed
        assert anon.get(f"/a/{hidden['id']}").status_code == 404
    for hidden in (seeded.unpublished, seeded.draft):
        assert hidden["id"] not in ics
    # A calendar that already holds the cancelled item must learn that it is off.
    cal = icalendar.Calendar.from_ical(ics)
    [off] = [e for e in cal.walk("VEVENT") if str(e["UID"]).startswith(seeded.cancelled["id"])]
    assert str(off["STATUS"]) == "CANCELLED"
    missing = anon.get("/a/no-such-thing")
    assert missing.status_code == 404 and "Không có thông báo này" in missing.text
    well_formed(missing.text)


def _qr_modules(svg: str) -> list[list[bool]]:
    """The dark modules drawn by a segno SVG path ("M2 2.5h7m1 0h1…"), as a matrix."""
    d = re.search(r'<path[^>]*stroke="#000"[^>]*\sd="([^"]+)"', svg)
    assert d, svg[:200]
    size = int(re.search(r'viewBox="0 0 (\d+) \d+"', svg).group(1))  # type: ignore[union-attr]
    grid = [[False] * size for _ in range(size)]
    x = y = 0.0
    for op, a, b in re.findall(r"([MmHhVv])(-?[\d.]+)(?:\s+(-?[\d.]+))?", d.group(1)):
        if op == "M":
            x, y = float(a), float(b)
        elif op == "m":
            x, y = x + float(a), y + float(b)
        elif op == "h":
            for col in range(int(x), int(x + float(a))):
                grid[int(y)][col] = True
            x += float(a)
        else:
            raise AssertionError(f"unexpected path command {op}")
    return grid


def _matrix(url: str, border: int) -> list[list[bool]]:
    q = segno.make(url, **poster.QR_MAKE)
    return [[bool(v) for v in row] for row in q.matrix_iter(border=border)]


def test_an_announcement_page_has_its_schedule_and_a_qr_code_of_its_address(
    web: PublicHub, seeded: Seeded, anon: httpx.Client
) -> None:
    weekly = seeded.weekly
    r = anon.get(f"/a/{weekly['id']}")
    assert r.status_code == 200
    well_formed(r.text)
    assert "Thứ Hai hằng tuần lúc 19:30" in r.text
    assert "Họp &lt;chi bộ&gt;" in r.text and "<chi bộ>" not in r.text
    assert f'src="/api/announcements/{weekly["id"]}/audio"' in r.text
    svg = re.search(r"<svg[^>]*class=\"qr-code\".*?</svg>", r.text, re.S)
    assert svg, "no QR code on the page"
    url = f"{web.url}/a/{weekly['id']}"
    border = poster.QR_SVG["border"]
    assert _qr_modules(svg.group(0)) == _matrix(url, border)
    assert _qr_modules(svg.group(0)) != _matrix(f"{web.url}/a/{seeded.daily['id']}", border)
    en = anon.get(f"/a/{seeded.daily['id']}?lang=en").text
    assert "Every day at 06:00" in en
    played = anon.get(f"/a/{seeded.played['id']}?lang=vi").text
    assert "Các lần đã phát" in played and "Đã phát" in played


def test_the_poster_is_the_village_page_qr_without_navigation_in_print(
    web: PublicHub, anon: httpx.Client
) -> None:
    r = anon.get("/poster")
    assert r.status_code == 200
    well_formed(r.text)
    assert "Quét để nghe lại thông báo của thôn" in r.text
    svg = re.search(r"<svg[^>]*class=\"qr-code\".*?</svg>", r.text, re.S)
    assert svg and _qr_modules(svg.group(0)) == _matrix(f"{web.url}/", poster.QR_SVG["border"])
    assert web.url.split("://")[1] in r.text
    # Served at 127.0.0.1 with no public address: the QR code would open nothing on a phone.
    warning = re.search(
        r'<p class="notice notice--warn" role="alert" data-local-address>(.*?)</p>', r.text
    )
    assert warning and "127.0.0.1" in warning.group(1) and "http.public_url" in warning.group(1)
    css = anon.get("/static/public.css").text
    assert "@media print" in css and "size: A4" in css


def test_qr_codes_and_links_use_the_public_address_when_one_is_set(
    broker: Broker, tmp_path: Path
) -> None:
    public_url = "https://thon-dong.example.vn"
    settings = hub_settings(
        broker,
        tmp_path,
        LANGSO_SITE="public-url",
        LANGSO_HTTP__PUBLIC_URL=public_url + "/",
        LANGSO_VILLAGE_NAME="Thôn Đông, xã An Bình",
    )
    h = PublicHub(settings, FakeClock(T0), sink=instant_sink(tmp_path / "out"))
    try:
        c = h.browser_client()
        page = c.get("/poster").text  # printed on the Pi itself: not 127.0.0.1
        svg = re.search(r"<svg[^>]*class=\"qr-code\".*?</svg>", page, re.S)
        assert svg and _qr_modules(svg.group(0)) == _matrix(
            f"{public_url}/", poster.QR_SVG["border"]
        )
        assert "thon-dong.example.vn" in page and "127.0.0.1" not in page
        assert "data-local-address" not in page
        # The village's name where people read it; the site id only where machines do.
        for path in ("/", "/poster"):
            html = c.get(path).text
            assert '<span class="brand-site">Thôn Đông, xã An Bình</span>' in html
        assert "Thôn Đông, xã An Bình" in c.get("/poster").text.split("poster-brand", 1)[1][:300]
        atom = c.get("/feed.atom").text
        assert "<title>Thông báo của Thôn Đông, xã An Bình</title>" in atom
        assert "tag:public-url.langso" in atom  # ids keep the site id: readers key on them
        follow = c.get("/theo-doi").text  # on the internet: Google Calendar can fetch it
        assert "webcal://thon-dong.example.vn/calendar.ics" in follow
        assert "data-village-only" not in follow
        ics = icalendar.Calendar.from_ical(c.get("/calendar.ics").content)
        # TEXT escaping (RFC 5545 §3.3.11): icalendar leaves an X- property's "\\," as is.
        assert str(ics["X-WR-CALNAME"]) == "Lịch phát thanh Thôn Đông\\, xã An Bình"
        feed = ET.fromstring(c.get("/feed.atom").content)
        selfs = [link.get("href") for link in feed.findall(ATOM + "link")]
        assert f"{public_url}/feed.atom" in selfs
        c.close()
    finally:
        h.stop()


# -- the Atom feed (RFC 4287) ---------------------------------------------------------------
def _one(parent: ET.Element, tag: str) -> ET.Element:
    found = parent.findall(ATOM + tag)
    assert len(found) == 1, (tag, len(found))
    return found[0]


def test_the_feed_is_atom_1_0(web: PublicHub, seeded: Seeded, anon: httpx.Client) -> None:
    r = anon.get("/feed.atom")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/atom+xml; charset=utf-8"
    root = ET.fromstring(r.content)
    assert root.tag == ATOM + "feed"
    # atom:feed: exactly one id, title, updated (§4.1.1); an author here or in every entry.
    for tag in ("id", "title", "updated"):
        assert _one(root, tag).text
    assert RFC3339.match(_one(root, "updated").text or "")
    feed_author = root.findall(ATOM + "author")
    assert all(a.find(ATOM + "name") is not None for a in feed_author)
    selfs = [link for link in root.findall(ATOM + "link") if link.get("rel") == "self"]
    assert len(selfs) == 1 and selfs[0].get("href") == f"{web.url}/feed.atom"
    entries = root.findall(ATOM + "entry")
    shown = {seeded.played["id"], seeded.daily["id"], seeded.weekly["id"]}
    assert len(entries) == len(shown)
    ids = set()
    published = []
    for e in entries:
        # atom:entry: exactly one id, title, updated (§4.1.2); RFC 3339 dates (§3.3).
        for tag in ("id", "title", "updated"):
            assert _one(e, tag).text
        ids.add(_one(e, "id").text)
        assert RFC3339.match(_one(e, "updated").text or "")
        published.append(_one(e, "published").text or "")
        assert RFC3339.match(published[-1])
        assert feed_author or e.findall(ATOM + "author")
        content = _one(e, "content")
        assert content.get("type") == "text" and content.text
        links = {link.get("rel", "alternate"): link for link in e.findall(ATOM + "link")}
        alternate = links["alternate"]
        aid = (alternate.get("href") or "").rsplit("/a/", 1)[-1]
        assert aid in shown and alternate.get("href") == f"{web.url}/a/{aid}"
        enclosure = links["enclosure"]
        kind, length = enclosure.get("type"), enclosure.get("length")
        assert kind in ("audio/ogg", "audio/mpeg") and length and int(length) > 0
        audio = anon.get(enclosure.get("href") or "")
        assert audio.status_code == 200 and len(audio.content) == int(length)
        assert audio.headers["content-type"].startswith(kind)
    assert len(ids) == len(entries)
    assert published == sorted(published, reverse=True)  # newest first
    titles = [_one(e, "title").text for e in entries]
    assert TRICKY in titles  # escaped in the XML, whole once parsed
    assert "<chi bộ>" not in r.text and "&lt;chi bộ&gt; &amp;" in r.text
    parsed = feedparser.parse(r.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert {e.title for e in parsed.entries} == set(titles)
    assert all(e.enclosures for e in parsed.entries)
    # Readers poll: an unchanged feed is a 304.
    again = anon.get("/feed.atom", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


# -- the iCalendar schedule (RFC 5545) ------------------------------------------------------
def _unfold(text: str) -> list[str]:
    return text.replace("\r\n ", "").split("\r\n")


def test_the_calendar_is_icalendar_and_expands_like_the_hubs_schedule(
    web: PublicHub, seeded: Seeded, anon: httpx.Client
) -> None:
    r = anon.get("/calendar.ics")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/calendar; charset=utf-8"
    body = r.content
    assert body.endswith(b"\r\n") and b"\n" not in body.replace(b"\r\n", b"")
    assert all(len(line) <= 75 for line in body.split(b"\r\n")), "a line over 75 octets"
    assert body.decode().count("\r\n ") > 0  # long Vietnamese lines were folded
    cal = icalendar.Calendar.from_ical(body)
    assert str(cal["VERSION"]) == "2.0" and "Làng Số" in str(cal["PRODID"])
    assert str(cal["X-WR-TIMEZONE"]) == "Asia/Ho_Chi_Minh" and cal["X-WR-CALNAME"]
    [vtz] = cal.walk("VTIMEZONE")
    assert str(vtz["TZID"]) == "Asia/Ho_Chi_Minh"
    [std] = vtz.walk("STANDARD")
    assert std.to_ical().count(b"+0700") == 2 and not vtz.walk("DAYLIGHT")
    site = web.settings.site
    events = {str(e["UID"]): e for e in cal.walk("VEVENT")}
    ids = [seeded.played["id"], seeded.daily["id"], seeded.weekly["id"]]
    assert set(events) == {f"{aid}@{site}.langso" for aid in [*ids, seeded.cancelled["id"]]}
    assert {str(events[f"{aid}@{site}.langso"]["STATUS"]) for aid in ids} == {"CONFIRMED"}
    weekly = events[f"{seeded.weekly['id']}@{site}.langso"]
    assert str(weekly["SUMMARY"]) == TRICKY  # commas and semicolons escaped, then read back
    assert "phòng 2; mang theo sổ" in str(weekly["DESCRIPTION"])
    assert str(weekly["URL"]) == f"{web.url}/a/{seeded.weekly['id']}"
    assert weekly.decoded("DURATION") >= timedelta(minutes=5)
    assert "DTSTAMP" in weekly
    lines = _unfold(body.decode())
    for a in (seeded.daily, seeded.weekly):
        assert f"RRULE:{a['rrule']}" in lines  # kept exactly as stored
    assert "DTSTART;TZID=Asia/Ho_Chi_Minh:20261207T193000" in lines
    assert "EXDATE;TZID=Asia/Ho_Chi_Minh:20261205T060000" in lines
    assert "RRULE" not in events[f"{seeded.played['id']}@{site}.langso"]

    # The same occurrences as the hub's scheduler over a month, exdates included.
    after, before = T0, T0 + timedelta(days=31)
    for a in (seeded.daily, seeded.weekly):
        event = events[f"{a['id']}@{site}.langso"]
        start = event.decoded("DTSTART")
        assert start.tzinfo is not None and start.utcoffset() == timedelta(hours=7)
        rule_text = next(
            line for line in lines if line.startswith("RRULE:") and line[6:] == a["rrule"]
        )[6:]
        rules = rruleset()
        rules.rrule(rrulestr(rule_text, dtstart=start.replace(tzinfo=None)))  # type: ignore[arg-type]
        exdate = event.get("EXDATE")
        for group in exdate if isinstance(exdate, list) else [exdate] if exdate else []:
            for d in group.dts:
                rules.exdate(d.dt.astimezone(VN).replace(tzinfo=None))
        lo, hi = (
            after.astimezone(VN).replace(tzinfo=None),
            before.astimezone(VN).replace(tzinfo=None),
        )
        theirs = [d.replace(tzinfo=VN).astimezone(UTC) for d in rules.between(lo, hi)]
        row = web.hub.store.one(
            "SELECT start_local, rrule, exdates FROM announcements WHERE id=?", (a["id"],)
        )
        assert row is not None
        ours = Recurrence(
            datetime.fromisoformat(row["start_local"]),
            VN,
            row["rrule"],
            tuple(datetime.fromisoformat(d) for d in json.loads(row["exdates"])),
        ).between(after, before)
        assert theirs == ours and len(ours) >= 4


# -- feedback --------------------------------------------------------------------------------
def _post(client: httpx.Client, body: Any, **kw: Any) -> httpx.Response:
    return client.post("/api/feedback", json=body, **kw)


def audit(web: PublicHub, action: str, target: str) -> list[Any]:
    return web.hub.store.query(
        "SELECT * FROM audit_log WHERE action=? AND target=?", (action, target)
    )


def test_feedback_is_stored_hashed_listed_for_the_head_and_marked_with_an_audit(
    web: PublicHub, anon: httpx.Client
) -> None:
    fresh_window(web)
    r = _post(anon, {"message": "  Đèn đường xóm Bắc bị hỏng.  ", "category": "power", "name": ""})
    assert r.status_code == 201, r.text
    report = r.json()
    assert report["status"] == "new" and report["message"] == "Đèn đường xóm Bắc bị hỏng."
    assert report["name"] is None and report["category"] == "power"
    row = web.hub.store.one("SELECT * FROM feedback WHERE id=?", (report["id"],))
    assert row is not None
    salt = web.hub.store.get_meta(SALT_KEY)
    assert salt and len(salt) >= 32
    assert row["ip_hash"] == hashlib.sha256(f"{salt}\x00127.0.0.1".encode()).hexdigest()
    assert "127.0.0.1" not in json.dumps(dict(row))

    assert anon.get("/api/feedback").status_code == 401
    assert web.http("technician").get("/api/feedback").status_code == 403
    head = web.http("head")
    listed = head.get("/api/feedback").json()
    assert listed[0]["id"] == report["id"]  # newest first
    times = [x["received_at"] for x in listed]
    assert times == sorted(times, reverse=True)
    assert [x["id"] for x in head.get("/api/feedback", params={"status": "new"}).json()].count(
        report["id"]
    ) == 1
    assert head.get("/api/feedback", params={"status": "nope"}).status_code == 422

    r = head.patch(f"/api/feedback/{report['id']}", json={"status": "read"})
    assert r.status_code == 200 and r.json()["status"] == "read"
    assert r.json()["updated_by"] == "head1"
    [entry] = audit(web, "feedback.status", str(report["id"]))
    assert entry["actor"] == "head1"
    assert json.loads(entry["detail"]) == {"from": "new", "to": "read"}
    assert head.patch("/api/feedback/999999", json={"status": "done"}).status_code == 404
    assert head.patch(f"/api/feedback/{report['id']}", json={"status": "x"}).status_code == 422
    assert anon.patch(f"/api/feedback/{report['id']}", json={"status": "done"}).status_code == 401
    openapi = anon.get("/openapi.json").json()["paths"]["/api/feedback"]
    assert {"post", "get"} <= set(openapi)


def test_feedback_limits_size_length_and_rate(web: PublicHub, anon: httpx.Client) -> None:
    fresh_window(web)
    assert _post(anon, {"message": "x" * 2001}).status_code == 422
    assert _post(anon, {"message": "ab"}).status_code == 422
    assert _post(anon, {"message": "   a   "}).status_code == 422  # 1 character once trimmed
    assert _post(anon, {"message": "ổn cả", "name": "n" * 101}).status_code == 422
    assert _post(anon, {"message": "ổn cả", "contact": "c" * 101}).status_code == 422
    assert _post(anon, {"message": "ổn cả", "category": "ufo"}).status_code == 422
    assert _post(anon, {"message": "ổn cả", "admin": True}).status_code == 422
    big = _post(anon, {"message": "x" * 9000})
    assert big.status_code == 413 and "8192" in big.json()["detail"]
    streamed = anon.post(
        "/api/feedback",
        content=iter([b'{"message": "', b"y" * 5000, b"z" * 5000, b'"}']),
        headers={"Content-Type": "application/json"},
    )
    assert streamed.status_code == 413
    broken = anon.post(
        "/api/feedback", content=b'{"message": ', headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 422 and "JSON" in broken.json()["detail"]
    form = anon.post("/api/feedback", data={"message": "as a form"})
    assert form.status_code == 415  # JSON only: a cross-site form cannot post it
    # Vietnamese at the longest allowed length fits under the cap.
    assert _post(anon, {"message": "ệ" * 2000}).status_code == 201
    for i in range(feedback_api.RATE_LIMIT - 1):
        assert _post(anon, {"message": f"Phản ánh số {i}"}).status_code == 201
    refused = _post(anon, {"message": "Một lần nữa"})
    assert refused.status_code == 429
    wait = int(refused.headers["retry-after"])
    assert 0 < wait <= feedback_api.RATE_WINDOW_S
    assert "too many reports" in refused.json()["detail"]
    web.clock.advance(wait)
    assert _post(anon, {"message": "Sau khi chờ"}).status_code == 201


def test_the_rate_limiter_is_bounded() -> None:
    limiter = RateLimiter(2, 60, max_keys=3)
    for key in ("a", "b", "c", "d"):
        assert limiter.hit(key, 0.0) == 0.0
    assert len(limiter) == 3  # "a" was forgotten first
    assert limiter.hit("d", 1.0) == 0.0 and limiter.hit("d", 2.0) == pytest.approx(58.0)
    assert limiter.hit("d", 60.5) == 0.0  # the first hit left the window
    everyone = RateLimiter(5, 60, global_limit=2)
    assert everyone.hit("x", 0) == 0 and everyone.hit("y", 0) == 0
    assert everyone.hit("z", 10) == pytest.approx(50.0)


def test_the_feedback_form_needs_its_csrf_token_and_says_thank_you(
    web: PublicHub, anon: httpx.Client
) -> None:
    fresh_window(web)
    data = {
        "message": "Cống trước nhà văn hóa bị tắc.",
        "category": "environment",
        "name": "Ông Ba",
    }
    assert anon.post("/gop-y", data=data).status_code == 403  # no cookie, no token
    page = anon.get("/gop-y")
    assert page.status_code == 200
    well_formed(page.text)
    cookie = page.headers["set-cookie"]
    assert "langso_form_csrf=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    token = form_value(page.text, "csrf")
    refused = anon.post("/gop-y", data={**data, "csrf": "not-the-token"})
    assert refused.status_code == 403 and refused.headers["x-refused"]
    bad = anon.post("/gop-y", data={**data, "message": "a", "csrf": token})
    assert bad.status_code == 422 and "Hãy viết nội dung từ 3 đến 2.000 ký tự" in bad.text
    assert "Ông Ba" in bad.text  # what was typed is kept
    ok = anon.post("/gop-y", data={**data, "csrf": token})
    assert ok.status_code == 303 and re.fullmatch(
        r"/gop-y\?ok=1&ref=\d+\.[0-9a-f]{10}", ok.headers["location"]
    )
    thanks = anon.get(ok.headers["location"])
    assert "Cảm ơn bà con đã gửi phản ánh" in thanks.text
    row = web.hub.store.one("SELECT * FROM feedback ORDER BY id DESC LIMIT 1")
    assert row is not None and f"PA-{row['id']}</strong>" in thanks.text
    assert row is not None and row["message"] == data["message"] and row["lang"] == "vi"
    assert row["category"] == "environment" and row["name"] == "Ông Ba"
    en = anon.get("/gop-y?lang=en")
    assert "Feedback and reports" in en.text
    # The form shares the API's limit (same sender, same window).
    for _ in range(feedback_api.RATE_LIMIT - 1):
        assert _post(anon, {"message": "Thêm một phản ánh"}).status_code == 201
    slow = anon.post("/gop-y", data={**data, "csrf": token})
    assert slow.status_code == 429 and int(slow.headers["retry-after"]) > 0
    assert "Please try again in" in slow.text  # the cookie chose English above


def test_the_heads_inbox_lists_and_marks_reports(web: PublicHub, anon: httpx.Client) -> None:
    fresh_window(web)
    report = _post(anon, {"message": "Loa xóm Đông nghe không rõ.", "category": "loudspeaker"})
    fid = report.json()["id"]
    assert anon.get("/app/feedback").status_code == 302  # sign in first
    tech = web.sign_in("tech-inbox", "technician")
    head = web.sign_in("head-inbox", "head")
    try:
        assert tech.get("/app/feedback").status_code == 403
        page = head.get("/app/feedback")
        assert page.status_code == 200
        well_formed(page.text)
        assert "Loa xóm Đông nghe không rõ." in page.text and "Loa truyền thanh" in page.text
        csrf = form_value(page.text, "csrf")
        assert head.post(f"/app/feedback/{fid}", data={"status": "done"}).status_code == 403
        r = head.post(
            f"/app/feedback/{fid}", data={"csrf": csrf, "status": "done", "filter": "new"}
        )
        assert r.status_code == 303 and r.headers["location"].startswith("/app/feedback?ok=done")
        assert "status=new" in r.headers["location"]
        done = head.get("/app/feedback?status=done&ok=done")
        assert "Đã đánh dấu là đã xử lý." in done.text and "Loa xóm Đông" in done.text
        assert "Loa xóm Đông" not in head.get("/app/feedback?status=new").text
        [entry] = audit(web, "feedback.status", str(fid))
        assert entry["actor"] == "head-inbox"
        assert (
            head.post("/app/feedback/999999", data={"csrf": csrf, "status": "read"}).status_code
            == 404
        )
    finally:
        tech.close()
        head.close()


# -- words ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rule", "start", "vi", "en"),
    [
        (
            None,
            "2026-12-07T19:30",
            "Một lần, lúc 19:30 ngày 07/12/2026",
            "Once, at 19:30 on 7 Dec 2026",
        ),
        ("FREQ=DAILY", "2026-12-01T06:00", "Hằng ngày lúc 06:00", "Every day at 06:00"),
        (
            "FREQ=DAILY;INTERVAL=2",
            "2026-12-01T06:00",
            "2 ngày một lần, lúc 06:00",
            "Every 2 days at 06:00",
        ),
        (
            "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
            "2026-12-01T17:00",
            "Từ thứ Hai đến thứ Sáu, lúc 17:00",
            "Weekdays (Monday to Friday) at 17:00",
        ),
        (
            "FREQ=WEEKLY;BYDAY=MO",
            "2026-12-07T19:30",
            "Thứ Hai hằng tuần lúc 19:30",
            "Every Monday at 19:30",
        ),
        (
            "FREQ=WEEKLY",
            "2026-12-06T08:00",
            "Chủ nhật hằng tuần lúc 08:00",
            "Every Sunday at 08:00",
        ),
        (
            "FREQ=WEEKLY;BYDAY=MO,WE,FR",
            "2026-12-07T06:00",
            "Thứ Hai, thứ Tư và thứ Sáu hằng tuần lúc 06:00",
            "Every Monday, Wednesday and Friday at 06:00",
        ),
        (
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=SA",
            "2026-12-05T07:00",
            "Thứ Bảy, 2 tuần một lần, lúc 07:00",
            "Saturday, every 2 weeks, at 07:00",
        ),
        (
            "FREQ=MONTHLY;BYMONTHDAY=15",
            "2026-12-15T08:00",
            "Ngày 15 hằng tháng lúc 08:00",
            "On day 15 of every month at 08:00",
        ),
        (
            "FREQ=MONTHLY",
            "2026-12-10T08:00",
            "Ngày 10 hằng tháng lúc 08:00",
            "On day 10 of every month at 08:00",
        ),
        (
            "FREQ=MONTHLY;BYDAY=1MO",
            "2026-12-07T19:30",
            "Thứ Hai tuần đầu tiên của mỗi tháng lúc 19:30",
            "The first Monday of every month at 19:30",
        ),
        (
            "FREQ=MONTHLY;BYDAY=-1FR",
            "2026-12-25T19:30",
            "Thứ Sáu tuần cuối cùng của mỗi tháng lúc 19:30",
            "The last Friday of every month at 19:30",
        ),
        (
            "FREQ=YEARLY",
            "2026-12-22T07:00",
            "Hằng năm vào ngày 22/12 lúc 07:00",
            "Every year on 22 Dec at 07:00",
        ),
        (
            "FREQ=DAILY;COUNT=5",
            "2026-12-01T06:00",
            "Hằng ngày lúc 06:00; tổng cộng 5 lần",
            "Every day at 06:00; 5 times in all",
        ),
        (
            "FREQ=DAILY;UNTIL=20261231T235959Z",
            "2026-12-01T06:00",
            "Hằng ngày lúc 06:00; đến hết ngày 31/12/2026",
            "Every day at 06:00; until 31 Dec 2026",
        ),
        (
            "FREQ=DAILY;BYHOUR=6,18",
            "2026-12-01T06:00",
            "Theo quy tắc lặp: FREQ=DAILY;BYHOUR=6,18",
            "Repeat rule: FREQ=DAILY;BYHOUR=6,18",
        ),
        (
            "FREQ=MONTHLY;BYSETPOS=-1;BYDAY=MO,TU",
            "2026-12-01T06:00",
            "Theo quy tắc lặp: FREQ=MONTHLY;BYSETPOS=-1;BYDAY=MO,TU",
            "Repeat rule: FREQ=MONTHLY;BYSETPOS=-1;BYDAY=MO,TU",
        ),
    ],
)
def test_schedules_in_words(rule: str | None, start: str, vi: str, en: str) -> None:
    when = datetime.fromisoformat(start)
    assert describe_schedule(rule, when, "vi", voice="public") == vi
    assert describe_schedule(rule, when, "en", voice="public") == en


def test_calendar_lines_are_folded_on_utf8_boundaries_and_text_is_escaped() -> None:
    # The calendar's text goes through icalendar: its escaping and its folding.
    event = icalendar.Event()
    event.add("summary", "Thông báo, về; việc\\họp\nthôn " * 6)
    folded = event.to_ical().decode()
    start = folded.index("SUMMARY:")
    parts = folded[start : folded.index("\r\n", folded.rindex("\r\n ") + 1)].split("\r\n ")
    line = "".join(parts)
    assert len(parts) > 2 and line.startswith("SUMMARY:")
    assert all(len(p.encode()) <= (75 if i == 0 else 74) for i, p in enumerate(parts))
    assert "\\," in line and "\\;" in line and "\\\\" in line and "\\n" in line
    # A zone with daylight saving time.
    paris = feed.vtimezone("Europe/Paris", 2026).to_ical().decode().split("\r\n")
    assert "BEGIN:DAYLIGHT" in paris and "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU" in paris
    assert "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU" in paris


def test_the_residents_catalogue_is_complete() -> None:
    PUB_VI, PUB_EN = table("public")["vi"], table("public")["en"]
    assert set(PUB_VI) == set(PUB_EN)
    for key in PUB_VI:
        assert set(re.findall(r"{(\w+)}", PUB_VI[key])) == set(
            re.findall(r"{(\w+)}", PUB_EN[key])
        ), key
    assert not set(PUB_VI) & set(table("common")["vi"])
    dynamic = [
        *(f"pub.cat.{c}" for c in ("notice", "news", "meeting", "emergency")),
        *(f"pub.prio.{p}" for p in ("high", "emergency")),
        *(f"pub.bc.{s}" for s in ("played", "missed", "preempted", "failed", "cancelled")),
        *(f"pub.day.{d}" for d in ("mo", "tu", "we", "th", "fr", "sa", "su")),
        *(f"fb.cat.{c}" for c in feedback_api.CATEGORIES),
        *(f"fb.{k}.{s}" for k in ("status", "mark", "ok") for s in feedback_api.STATUSES),
    ]
    assert [k for k in dynamic if k not in PUB_VI] == []
    used: set[str] = set()
    web = Path(public_pages.__file__).parent
    for template in (web / "templates").glob("public*.html"):
        used |= set(re.findall(r"""\b_\(\s*["']([a-z0-9_.]+)["']\s*[,)]""", template.read_text()))
    for module in (public_pages, poster, feed, feedback_form, staff_inbox):
        used |= set(
            re.findall(
                r"""\bt\(\s*["']([a-z0-9_.]+)["']\s*[,)]""", Path(module.__file__).read_text()
            )
        )
    assert sorted(k for k in used if k not in catalogue("vi") or k not in catalogue("en")) == []


def test_the_calendar_ends_a_recurring_announcement_where_it_expires(
    web: PublicHub, seeded: Seeded, anon: httpx.Client
) -> None:
    # Last in this file: it adds an announcement the other tests do not expect.
    expires = datetime(2026, 12, 9, 23, 0, tzinfo=UTC)  # 06:00 on the 10th in the village
    r = web.http("head").post(
        "/api/announcements",
        json={
            "title": "Tiêm phòng cho gia súc",
            "text": "Đợt tiêm phòng kéo dài đến hết ngày mùng chín.",
            "rrule": "FREQ=DAILY",
            "start_at": "2026-12-03T06:00:00",
            "expires_at": expires.isoformat(),
        },
    )
    assert r.status_code == 201, r.text
    aid = r.json()["id"]
    cal = icalendar.Calendar.from_ical(anon.get("/calendar.ics").content)
    [event] = [e for e in cal.walk("VEVENT") if str(e["UID"]).startswith(aid)]
    rule = event["RRULE"].to_ical().decode()
    assert rule == "FREQ=DAILY;UNTIL=20261209T225959Z"
    start = event.decoded("DTSTART")
    days = list(rrulestr(rule, dtstart=start))
    # The 3rd to the 9th: the 10th at 06:00 is the expiry itself, and nothing plays then.
    assert [d.day for d in days] == list(range(3, 10))
    assert all(d < expires for d in days)


def test_the_calendar_starts_on_the_rules_first_date_and_calls_off_a_stopped_one_off(
    web: PublicHub, seeded: Seeded, anon: httpx.Client
) -> None:
    head = web.http("head")
    # Written on a Wednesday for "every Monday": the first occurrence is Monday the 14th.
    r = head.post(
        "/api/announcements",
        json={
            "title": "Họp tổ tự quản",
            "text": "Họp tổ tự quản mỗi thứ Hai.",
            "category": "notice",
            "rrule": "FREQ=WEEKLY;BYDAY=MO",
            "start_at": "2026-12-09T19:30:00",
        },
    )
    assert r.status_code == 201, r.text
    monday = r.json()["id"]
    r = head.post(
        "/api/announcements",
        json={
            "title": "Thông báo bị dừng",
            "text": "Dừng giữa chừng.",
            "start_at": "2026-12-20T08:00",
        },
    )
    assert r.status_code == 201, r.text
    stopped = r.json()["id"]
    # Stopped on air (the playout's own row, as the stop button leaves it).
    with web.hub.store.transaction() as conn:
        conn.execute(
            "INSERT INTO broadcasts(announcement_id, scheduled_for, started_at, ended_at, status,"
            " zones, priority) VALUES (?, 1.8e9, 1.8e9, 1.8e9 + 1, 'stopped', '[]', 'normal')",
            (stopped,),
        )
        conn.execute("UPDATE announcements SET status='done', next_run=NULL WHERE id=?", (stopped,))
    cal = icalendar.Calendar.from_ical(anon.get("/calendar.ics").content)
    events = {str(e["UID"]).split("@")[0]: e for e in cal.walk("VEVENT")}
    start = events[monday].decoded("DTSTART")
    assert (start.weekday(), start.day, start.hour, start.minute) == (0, 14, 19, 30)
    assert str(events[monday]["STATUS"]) == "CONFIRMED"
    assert str(events[stopped]["STATUS"]) == "CANCELLED"
    assert str(events[seeded.played["id"]]["STATUS"]) == "CONFIRMED"
