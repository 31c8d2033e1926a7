"""What a device is called aloud and on its page: spoken names, template fields, page words."""

from __future__ import annotations

import pytest

from hub.automation.actions import DeviceView, Effects, perform
from hub.automation.rule_model import AnnounceAction, NotifyAction
from hub.automation.templates import check_template
from hub.web.device_text import duration_text, humanised, info_label, metric_text
from hub.words import Translator
from hub.words.devices import spoken_name

VI, EN = Translator("vi"), Translator("en")


@pytest.mark.parametrize(
    ("device_id", "kind", "display", "metrics", "said"),
    [
        ("wl-01", "sensor", None, (), "cảm biến mực nước số 1"),
        ("wl-01", "sensor", "wl-01", (), "cảm biến mực nước số 1"),  # its id as its name
        ("ws-12", "sensor", None, (), "trạm thời tiết số 12"),
        ("ap-nha-van-hoa", "ap", None, (), "điểm phát wifi"),
        ("btn-02", "button", None, (), "nút bấm số 2"),
        ("muc-nuoc-song", "sensor", None, ("battery_pct", "water_level_cm"), "cảm biến mực nước"),
        ("0x00158d0001a2b3c4", "sensor", None, (), "cảm biến"),  # a Zigbee address
        ("wl-01", "sensor", "Cầu Đông (wl-01)", (), "Cầu Đông"),
        ("wl-01", "sensor", "WL-01 - Cầu Đông", (), "Cầu Đông"),
        ("node", "speaker", None, (), "cụm loa"),
    ],
)
def test_an_unnamed_device_is_said_by_what_it_is_never_by_its_id(
    device_id: str, kind: str, display: str | None, metrics: tuple[str, ...], said: str
) -> None:
    assert spoken_name(device_id, kind, display=display, metrics=metrics) == said


def test_a_spoken_name_a_technician_set_wins() -> None:
    assert spoken_name("wl-01", "sensor", spoken="  cầu  Đông ", display="X") == "cầu Đông"


def _effects(out: list[tuple[str, str]]) -> Effects:
    return Effects(
        announce=lambda body, src: out.append(("announce", body["text"])) or "a1",  # type: ignore[func-returns-value]
        notify=lambda to, data: out.append(("notify", data["body"])) or ["hook"],  # type: ignore[func-returns-value]
        switch=lambda o, s: None,
        publish=lambda t, p, r, q: None,
    )


def test_announcements_read_the_spoken_name_notifications_the_display_name() -> None:
    view = DeviceView("wl-01", "Cầu Đông (wl-01)", "sensor", "xom-dong", location="bến đò")
    ctx = {
        "device": view.name,
        "device.name": view.name,
        "device.spoken": view.spoken_name,
        "location": view.location,
        "zone": "Xóm Đông",
    }
    out: list[tuple[str, str]] = []
    text = "Nước tại {device} ({location}, {zone}), {device.name}"
    for a in (
        AnnounceAction(type="announce", title="t", template=text),
        NotifyAction(type="notify", to=["hook"], title="t", template=text),
    ):
        perform(_effects(out), a, "r", "raised", incident="i", corrects=None, ctx=ctx)
    assert out == [
        ("announce", "Nước tại Cầu Đông (bến đò, Xóm Đông), Cầu Đông"),
        ("notify", "Nước tại Cầu Đông (wl-01) (bến đò, Xóm Đông), Cầu Đông (wl-01)"),
    ]


def test_a_rule_may_name_the_new_placeholders_with_any_sample_context() -> None:
    assert check_template("{device} {location} {zone} {device.spoken}", {}) == (
        "Cầu Đông bến đò Xóm Đông cầu Đông"
    )


def test_the_device_page_says_durations_and_keys_in_words() -> None:
    assert duration_text(VI, 11 * 86_400 + 8 * 3600 + 59) == "11 ngày 8 giờ"
    assert duration_text(VI, 3 * 3600) == "3 giờ"
    assert duration_text(VI, 42) == "42 giây"
    assert metric_text(VI, "uptime_s", 980_000) == "11 ngày 8 giờ"
    assert metric_text(VI, "clients", 13.9) == "14"  # a count, even averaged
    assert info_label(VI, "ssid") == "Tên mạng wifi" and info_label(EN, "fw") == "Firmware version"
    assert info_label(VI, "update.state") == "Update state"
    assert humanised("LinkQuality") == "Link quality" and humanised("RSSI") == "RSSI"
