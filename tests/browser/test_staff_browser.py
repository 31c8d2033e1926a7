"""The village head's pages in a real browser on a phone: compose with the recurrence picker,
listen to the text, see it in the schedule, watch the dashboard go on air live and stop it,
record in the browser and upload, the page in English; a screenshot of each step."""

from __future__ import annotations

import math
import re
import struct
import wave
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.web.forms import Fields, picker_rrule
from tests.broker import Broker
from tests.browser.phone import Phone as BasePhone
from tests.integration.test_staff_pages import staff_hub
from tests.integration.web_fixture import WebHub

pytestmark = pytest.mark.broker

LONG_TEXT = (
    "Thông báo của thôn. Mời bà con đến nhà văn hóa thôn dự họp tổng kết cuối năm, "
    "bàn việc làm đường liên xóm và kế hoạch sản xuất vụ đông xuân. Đề nghị mỗi hộ cử "
    "một người đi họp đúng giờ."
)


@pytest.fixture(scope="module")
def web(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebHub]:
    # The sink takes the audio's real length: long enough to see it on air and stop it.
    h = staff_hub(broker, tmp_path_factory.mktemp("staffui"), sink_speed=1)
    yield h
    h.stop()


class Phone(BasePhone):
    """A phone in Vietnamese and the village's time zone; warnings count as errors too."""

    def __init__(self, browser: Any, web: WebHub, **options: Any) -> None:
        super().__init__(
            browser,
            web,
            prefix="staff-",
            timeout_ms=8000,
            warnings=True,
            locale="vi-VN",
            timezone_id="Asia/Ho_Chi_Minh",
            **options,
        )


@pytest.fixture
def phone(media_browser: Any, web: WebHub) -> Iterator[Phone]:
    p = Phone(media_browser, web, permissions=["microphone"])
    try:
        yield p
    finally:
        p.close()


def hub_local(web: WebHub) -> datetime:
    return (web.clock.now() + timedelta(hours=7)).replace(tzinfo=None)


def rrule_shown(page: Any) -> str:
    return str(page.inner_text("[data-sched-rrule]")).strip()


# The picker as a person sets it, and the RRULE the server makes of the same fields.
PICKS: list[tuple[str, dict[str, Any]]] = [
    ("daily", {}),
    ("weekdays", {}),
    ("weekly", {"byday": ["MO", "TH"]}),
    ("monthly", {"monthday": "1"}),
    ("monthly", {"monthday": "-1", "ends": "count", "count": "6"}),
    ("weekly", {"byday": ["SU"], "ends": "until", "until": "2027-01-31"}),
]


def pick(page: Any, freq: str, extra: dict[str, Any]) -> None:
    # Days left ticked under another choice are hidden then; the server ignores them too.
    page.eval_on_selector_all("input[name=byday]", "boxes => boxes.forEach(b => b.checked = false)")
    page.select_option("#freq", freq)
    for day in extra.get("byday", []):
        page.check(f"input[name=byday][value={day}]")
    if "monthday" in extra:
        page.select_option("#monthday", extra["monthday"])
    page.check(f"input[name=ends][value={extra.get('ends', 'never')}]")
    if "count" in extra:
        page.fill("#count", extra["count"])
    if "until" in extra:
        page.fill("#until", extra["until"])


def test_compose_listen_schedule_then_on_air_live_and_stop(
    phone: Phone, web: WebHub, artifacts: Path
) -> None:
    page = phone.page
    phone.sign_in("truong-thon", "head")
    phone.tab("/app/compose")
    page.wait_for_selector("form[data-compose]")
    assert page.is_visible("[data-source-panel=text]")
    assert not page.is_visible("[data-source-panel=record]")
    assert not page.is_visible("[data-emergency-only]")
    page.fill("#title", "Họp tổng kết cuối năm")
    page.fill("#text", LONG_TEXT)

    # Listen: the API renders the text; the <audio> gets a source that loads.
    page.click("[data-listen]")
    page.wait_for_function(
        "() => { const a = document.querySelector('[data-listen-audio]');"
        " return a.src.startsWith('blob:') && a.readyState >= 1 && a.duration > 2; }",
        timeout=30_000,
    )
    # The line under the button says what the player does: ready, reading, read.
    page.wait_for_function(
        "() => { const a = document.querySelector('[data-listen-audio]');"
        " const s = document.querySelector('[data-listen-status]').innerText.trim();"
        " return (a.ended && s === 'Đã đọc xong. Bấm ▶ để nghe lại.')"
        " || (!a.ended && !a.paused && s === 'Đang đọc thử…')"
        " || (!a.ended && a.paused && s === 'Bấm ▶ để nghe.'); }"
    )

    # The picker: the page's RRULE is the server's, and said in words.
    page.check("input[name=when][value=repeat]")
    for freq, extra in PICKS:
        pick(page, freq, extra)
        items = [("freq", freq)] + [
            (k, x) for k, v in extra.items() for x in (v if isinstance(v, list) else [v])
        ]
        if "ends" not in extra:
            items.append(("ends", "never"))
        expected = picker_rrule(Fields(items))
        page.wait_for_function(
            "r => document.querySelector('[data-sched-rrule]').textContent.trim() === r",
            arg=expected,
        )
        assert rrule_shown(page) == expected, (freq, extra)
    pick(page, "weekly", {"byday": ["MO", "TH"]})
    page.fill("#time", "19:30")
    page.wait_for_function(
        "() => document.querySelector('[data-sched-words]').textContent"
        " === 'Thứ Hai và thứ Năm hằng tuần, lúc 19:30'"
    )
    assert "Thứ Năm 03/12, 19:30" in page.inner_text("[data-sched-next]")
    phone.shot(artifacts, "compose-picker")

    # At a time: one minute from now on the hub's (fake) clock.
    due = hub_local(web) + timedelta(minutes=1)
    page.check("input[name=when][value=at]")
    assert not page.is_visible("#freq")
    page.fill("#date", due.date().isoformat())
    page.fill("#time", f"{due:%H:%M}")
    page.wait_for_function(
        "t => document.querySelector('[data-sched-words]').textContent.includes(t)",
        arg=f"Một lần, lúc {due:%H:%M} thứ Ba",
    )
    page.check("input[name=zones][value=xom-dong]")
    assert not page.is_checked("input[name=zones][value=all]")
    phone.shot(artifacts, "compose")
    page.click("[data-submit]")
    page.wait_for_url(re.compile(r"/app/schedule\?ok=created"))
    card = page.locator(".ann", has_text="Họp tổng kết cuối năm")
    assert card.count() == 1
    assert f"Hôm nay, {due:%H:%M}" in card.inner_text()
    assert "Xóm Đông" in card.inner_text() and "xom-dong" not in card.inner_text()
    phone.shot(artifacts, "schedule")
    page.click(".segmented a[href='/app/schedule?view=week']")
    page.wait_for_selector(".day-col.is-today .occ")
    assert "Họp tổng kết cuối năm" in page.inner_text(".day-col.is-today")
    phone.shot(artifacts, "week")

    # The dashboard: it goes on air while we watch, with no reload.
    phone.tab("/app/")
    page.wait_for_selector("[data-live-indicator]:not([hidden]):not(.is-off)")
    assert page.is_hidden("[data-on-air]")
    assert "Họp tổng kết cuối năm" in page.inner_text("[data-fragment]")
    page.evaluate("window.__sameDocument = true")
    playout = web.hub.playout
    web.run_until(lambda: playout.state.state == "playing", step=0.5, what="on air")
    page.wait_for_selector("[data-on-air]:not([hidden])")
    assert page.inner_text("[data-on-air-title]") == "Họp tổng kết cuối năm"
    assert page.is_hidden("[data-on-air-quiet]")
    # It left the list of next broadcasts (one-off: nothing more to come).
    page.wait_for_function(
        "() => !document.querySelector('[data-fragment]').textContent"
        ".includes('Họp tổng kết cuối năm')"
    )
    assert page.evaluate("window.__sameDocument") is True
    phone.shot(artifacts, "dashboard-on-air")

    # Stop: a form with the CSRF token; the amplifier's tail then runs on the fake clock.
    page.click(".stop-form button")
    page.wait_for_url(re.compile(r"/app/\?ok=stopped"))
    assert "Đã dừng buổi phát." in page.inner_text("main")
    web.run_until(lambda: playout.state.state == "idle", what="idle again")
    page.wait_for_selector("[data-on-air]", state="hidden")
    assert page.is_visible("[data-on-air-quiet]")
    phone.shot(artifacts, "dashboard-stopped")
    [row] = web.hub.store.query(
        "SELECT b.status, b.detail FROM broadcasts b JOIN announcements a"
        " ON a.id = b.announcement_id WHERE a.title = 'Họp tổng kết cuối năm'"
    )
    assert row["status"] == "cancelled" and row["detail"] == "stopped by user:truong-thon"
    page.goto(web.url + "/app/history")
    assert "Đã hủy" in page.inner_text(".log")
    phone.shot(artifacts, "history")


def tone(path: Path, *, seconds: float) -> Path:
    """A 440 Hz tone as a 16-bit mono WAV, as a phone's recorder might leave it."""
    rate = 16_000
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(
            b"".join(
                struct.pack("<h", int(9000 * math.sin(2 * math.pi * 440 * i / rate)))
                for i in range(int(rate * seconds))
            )
        )
    return path


def test_record_listen_back_upload_and_schedule(
    phone: Phone, web: WebHub, artifacts: Path, tmp_path: Path
) -> None:
    page = phone.page
    phone.sign_in("truong-thon", "head")
    phone.go("/app/compose")
    page.fill("#title", "Lời trưởng thôn")
    page.check("input[name=source][value=record]")
    assert page.is_visible("[data-rec-start]") and not page.is_visible("#text")
    page.click("[data-rec-start]")
    page.wait_for_selector("[data-rec-stop]:not([hidden])")
    page.wait_for_function(
        "() => document.querySelector('[data-rec-time]').textContent >= '0:02'", timeout=10_000
    )
    phone.shot(artifacts, "recording")
    page.click("[data-rec-stop]")
    # Listen back before it leaves the phone.
    page.wait_for_function(
        "() => { const a = document.querySelector('[data-rec-audio]');"
        " return a.src.startsWith('blob:') && a.readyState >= 1; }"
    )
    assert page.is_visible("[data-rec-audio]")
    assert "Đã ghi xong" in page.inner_text("[data-audio-status]")
    page.click("[data-rec-upload]")
    page.wait_for_function(
        "() => /Đã tải lên/.test(document.querySelector('[data-audio-status]').textContent)",
        timeout=20_000,
    )
    status = page.inner_text("[data-audio-status]")
    assert re.search(r"Ghi âm 0:0[1-9]", status), status
    audio_id = page.input_value("[data-audio-id]")
    asset = web.hub.store.one("SELECT * FROM audio_assets WHERE id=?", (audio_id,))
    assert asset is not None and 1.5 <= asset["duration_s"] <= 6
    assert asset["created_by"] == "truong-thon"
    phone.shot(artifacts, "recorded")
    # Or a file from the phone: uploaded as soon as it is picked, and heard from the phone.
    page.check("input[name=source][value=upload]")
    page.set_input_files("#file", str(tone(tmp_path / "loa.wav", seconds=3)))
    page.wait_for_function(
        "id => document.querySelector('[data-audio-id]').value !== id"
        " && /Đã tải lên/.test(document.querySelector('[data-audio-status]').textContent)",
        arg=audio_id,
        timeout=20_000,
    )
    assert "Ghi âm 0:03" in page.inner_text("[data-audio-status]")
    page.wait_for_function("() => document.querySelector('[data-upload-audio]').readyState >= 1")
    uploaded = page.input_value("[data-audio-id]")
    page.check("input[name=source][value=record]")  # back to the recording, as it was
    page.evaluate("id => { document.querySelector('[data-audio-id]').value = id; }", audio_id)
    page.click("[data-submit]")
    page.wait_for_url(re.compile(r"/app/schedule\?ok=created"))
    card = page.locator(".ann", has_text="Lời trưởng thôn")
    assert re.search(r"Dài 0:\d\d", card.inner_text())
    a = web.hub.store.one("SELECT * FROM announcements WHERE title='Lời trưởng thôn'")
    assert a is not None and a["audio_id"] == audio_id and a["text"] is None
    assert web.hub.store.one("SELECT * FROM audio_assets WHERE id=?", (uploaded,))


def test_compose_in_english_and_the_emergency_box(
    phone: Phone, web: WebHub, artifacts: Path
) -> None:
    page = phone.page
    phone.sign_in("truong-thon", "head")
    phone.go("/app/compose")
    page.click(".langs a[lang=en]")
    page.wait_for_url(re.compile(r"lang=en"))
    assert page.get_attribute("html", "lang") == "en"
    assert page.inner_text("h1") == "New announcement"
    assert "Compose" in page.inner_text("nav.tabs")
    page.check("input[name=when][value=repeat]")
    page.select_option("#freq", "monthly")
    page.select_option("#monthday", "1")
    page.fill("#time", "08:00")
    page.wait_for_function(
        "() => document.querySelector('[data-sched-words]').textContent"
        " === 'On the 1st of every month at 08:00'"
    )
    assert rrule_shown(page) == "FREQ=MONTHLY;BYMONTHDAY=1"
    # Emergency: the confirmation box appears, and the form will not go without it.
    page.check("input[name=priority][value=emergency]")
    assert page.is_visible("[data-emergency-only]")
    assert page.is_checked("input[name=category][value=emergency]")
    assert page.is_checked("input[name=when][value=now]") and not page.is_visible("#freq")
    page.wait_for_function(
        "() => document.querySelector('[data-sched-words]').textContent"
        " === 'Plays as soon as it is saved.'"
    )
    page.fill("#title", "Storm")
    page.fill("#text", "Bão sắp đổ bộ, bà con ở trong nhà.")
    phone.shot(artifacts, "compose-en-emergency")
    page.click("[data-submit]")
    page.wait_for_selector("#form-error")
    assert "Emergency: tick the box to confirm." in page.inner_text("#form-error")
    assert page.input_value("#title") == "Storm"
    assert page.is_visible("[data-emergency-only]")
    phone.shot(artifacts, "compose-en-refused")
    phone.errors = [e for e in phone.errors if "status of 422" not in e]


def test_a_technician_keeps_the_rules(phone: Phone, web: WebHub, artifacts: Path) -> None:
    page = phone.page
    phone.sign_in("ky-thuat", "technician")
    phone.tab("/app/rules")
    card = page.locator("#r-ap-offline")
    assert "Điểm phát wifi mất kết nối" in card.inner_text()
    assert card.locator("[role=switch]").get_attribute("aria-checked") == "true"
    phone.shot(artifacts, "rules")
    card.locator("[role=switch]").click()
    page.wait_for_url(re.compile(r"ok=disabled"))
    assert "Đã tắt quy tắc." in page.inner_text(".notice")
    assert page.locator("#r-ap-offline [role=switch]").get_attribute("aria-checked") == "false"
    assert not web.hub.rules.rules["ap-offline"].enabled
    # A rule with a mistake: the hub's reason, word for word, and the text kept.
    page.click("#add summary")
    page.fill("#definition", 'id = "thu"\nname = "Thử"\ntrigger = { type = "button" }\n')
    page.click("#add button[type=submit]")
    page.wait_for_selector("#rule-error")
    assert "trigger.button.action: Field required" in page.inner_text("#rule-error")
    assert 'trigger = { type = "button" }' in page.input_value("#definition")
    phone.shot(artifacts, "rules-refused")
    phone.go("/app/rules/flood-level-3")
    assert "Bật siren trong 2 phút" in page.inner_text(".rule-words")
    page.click("#edit summary")
    assert 'id = "flood-level-3"' in page.input_value("#definition")
    phone.shot(artifacts, "rule")
    phone.errors = [e for e in phone.errors if "status of 422" not in e]


def test_compose_without_javascript(media_browser: Any, web: WebHub, artifacts: Path) -> None:
    """No script at all: the form still schedules a text read aloud, at a time, in words."""
    phone = Phone(media_browser, web, java_script_enabled=False)
    try:
        page = phone.page
        phone.sign_in("truong-thon", "head")
        phone.go("/app/compose")
        assert not page.is_visible("[data-listen]") and not page.is_visible("[data-rec-start]")
        # CSS alone shows what applies: the emergency box, the picker, the days of the week.
        assert not page.is_visible("[data-emergency-only]") and not page.is_visible("#freq")
        page.check("input[name=priority][value=emergency]")
        assert page.is_visible("[data-emergency-only]")
        page.check("input[name=priority][value=normal]")
        page.fill("#title", "Không cần JavaScript")
        page.fill("#text", "Thông báo thử.")
        page.check("input[name=when][value=repeat]")
        page.select_option("#freq", "weekly")
        assert page.is_visible("[data-freq-panel=weekly]")
        page.select_option("#freq", "weekdays")
        assert not page.is_visible("[data-freq-panel=weekly]")
        page.fill("#time", "06:30")
        phone.shot(artifacts, "compose-nojs")
        page.click("[data-submit]")
        page.wait_for_url(re.compile(r"/app/schedule\?ok=created"))
        card = page.locator(".ann", has_text="Không cần JavaScript")
        assert "Từ thứ Hai đến thứ Sáu, lúc 06:30" in card.inner_text()
    finally:
        phone.close()
