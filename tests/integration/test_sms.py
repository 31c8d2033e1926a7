"""SMS through the real gammu-smsd with Gammu's dummy phone driver (``model = dummy``: the
"modem" is a folder), against a hub in this process (fake clock, real broker, real HTTP).

An emergency announcement goes on air -> the SMS files reach gammu-smsd's sent folder in
Unicode parts; a long technician alert goes out as unaccented 160-character GSM-7
messages; the rate limit and the dedupe hold; a modem that never answers gives a failed
message, moved out of the outbox; a delivery report (a status report on the dummy phone)
marks the message delivered. The households API with its roles and audit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hub.automation.notification import Notification
from hub.automation.sms_text import unaccented
from hub.clock import FakeClock
from hub.settings import load_settings
from hub.store.outbox import SmsLog
from tests.broker import Broker, free_port
from tests.hubtest import InProcessHub, wait_for

T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
EMERGENCY = (
    "Nước sông Hồng đang lên rất nhanh. Đề nghị bà con xóm Đông chuyển đồ đạc lên cao, "
    "đưa người già và trẻ em đến nhà văn hoá thôn ngay bây giờ."
)


def _need_gammu() -> None:
    if shutil.which("gammu-smsd") and shutil.which("gammu-smsd-inject"):
        return
    reason = "SMS tests need Debian's gammu-smsd (apt-get install gammu gammu-smsd)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason + ": the Makefile must install it on CI")
    pytest.skip(reason)


@dataclass
class Modem:
    """One gammu-smsd over the dummy driver, and its folders."""

    root: Path
    proc: subprocess.Popen[bytes]

    @property
    def config(self) -> Path:
        return self.root / "smsdrc"

    def folder(self, name: str) -> Path:
        return self.root / name

    def files(self, name: str) -> list[Path]:
        return sorted(p for p in self.folder(name).iterdir() if p.is_file())


def start_modem(root: Path, *, device: Path) -> Modem:
    for name in ("inbox", "outbox", "sent", "error"):
        (root / name).mkdir(parents=True)
    if device.parent.is_dir():
        device.mkdir()  # the dummy phone's folder (it makes what it needs inside)
    # LoopSleep 1 and CommTimeout 1: gammu-smsd looks at its outbox every second (its
    # default is 30 s). Status checks off: the dummy phone has no battery or network.
    (root / "smsdrc").write_text(
        f"""[gammu]
device = {device}
model = dummy
connection = none

[smsd]
service = files
inboxpath = {root}/inbox/
outboxpath = {root}/outbox/
sentsmspath = {root}/sent/
errorsmspath = {root}/error/
inboxformat = detail
logfile = {root}/smsd.log
loopsleep = 1
commtimeout = 1
receivefrequency = 1
statusfrequency = 0
checkbattery = 0
checksignal = 0
checknetwork = 0
checksecurity = 0
deliveryreport = sms
""",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        ["gammu-smsd", "-c", str(root / "smsdrc")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return Modem(root, proc)


@dataclass
class SmsVillage:
    hub: InProcessHub
    modem: Modem
    dead: Modem

    @property
    def log(self) -> SmsLog:
        return SmsLog(self.hub.hub.store)

    def rows(self, channel: str) -> list[dict[str, Any]]:
        return [r for r in self.log.recent(500) if r["channel"] == channel]


@pytest.fixture(scope="module")
def village(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmsVillage]:
    _need_gammu()
    root = tmp_path_factory.mktemp("sms")
    modem = start_modem(root / "modem", device=root / "modem" / "phone")
    # A modem that is not there: the dummy driver cannot open a device under a file.
    (root / "unplugged").write_text("not a folder", encoding="utf-8")
    dead = start_modem(root / "dead", device=root / "unplugged" / "phone")
    data = root / "hub"
    toml = root / "hub.toml"
    toml.write_text(
        f"""
[notify.channels.sms]
kind = "sms"
smsd_config = "{modem.config}"
parts = "unicode"
max_parts = 4
poll_s = 1

[notify.channels.sms-tech]
kind = "sms"
smsd_config = "{modem.config}"
parts = "unaccented"
max_parts = 3
households = false
numbers = ["0987 654 321"]
per_number_per_hour = 2
poll_s = 1

[notify.channels.sms-dead]
kind = "sms"
smsd_config = "{dead.config}"
households = false
numbers = ["+84901111111"]
send_timeout_s = 30
poll_s = 1
""",
        encoding="utf-8",
    )
    env = {
        "LANGSO_SITE": f"sms-{os.getpid()}",
        "LANGSO_VILLAGE_NAME": "Thôn Đông",
        "LANGSO_DATA_DIR": str(data),
        "LANGSO_MQTT__HOST": broker.host,
        "LANGSO_MQTT__PORT": str(broker.port),
        "LANGSO_MQTT__CLIENT_ID": f"hub-sms-{os.getpid()}",
        "LANGSO_HTTP__PORT": str(free_port()),
        "LANGSO_AUDIO__SINK": "null",
    }
    h = InProcessHub(load_settings(toml, env=env), FakeClock(T0))
    try:
        yield SmsVillage(h, modem, dead)
    finally:
        h.stop()
        for m in (modem, dead):
            m.proc.terminate()
            m.proc.wait(10)


def decode_parts(path: Path) -> list[tuple[str, str]]:
    """(coding, text) of each part of a message file in gammu's backup format, once each:
    gammu-smsd 1.42 writes a part's message reference by copying its section again."""
    parts: dict[str, tuple[str, str]] = {}
    section, coding, hexes = "", "", list[str]()
    # The comment lines are in gammu-smsd's locale: only the hex Text fields are read.
    for line in [*path.read_text(encoding="utf-8", errors="replace").splitlines(), "[end]"]:
        if line.startswith("["):
            if hexes:
                raw = bytes.fromhex("".join(hexes))
                parts.setdefault(section, (coding, raw.decode("utf-16-be")))
            section, coding, hexes = line, "", []
        key, _, value = line.partition(" = ")
        if key.startswith("Text") and key[4:].isdigit():
            hexes.append(value.strip())
        elif key == "Coding":
            coding = value.strip()
    return [parts[k] for k in sorted(parts)]


def test_emergency_announcement_reaches_the_zone_households_in_unicode_parts(
    village: SmsVillage,
) -> None:
    h = village.hub
    head = h.http("head")
    for name, phone, zone in (
        ("Nhà ông Ba", "0912 345 678", "xom-dong"),
        ("Nhà bà Tư", "+84 987 000 111", "xom-dong"),
        ("Nhà chú Năm", "0933333333", "xom-tay"),
    ):
        r = head.post("/api/households", json={"name": name, "phone": phone, "zone": zone})
        assert r.status_code == 201, r.text
    made = head.post(
        "/api/announcements",
        json={
            "title": "Báo động lũ",
            "text": EMERGENCY,
            "category": "emergency",
            "priority": "emergency",
            "zones": ["xom-dong"],
        },
    )
    assert made.status_code == 201, made.text

    def sent() -> list[dict[str, Any]]:
        rows = village.rows("sms")
        return rows if len(rows) == 2 and all(r["status"] == "sent" for r in rows) else []

    rows = h.run_until(sent, step=1.0, limit=120, what="both SMS sent by gammu-smsd")
    assert sorted(r["phone"] for r in rows) == ["+84912345678", "+84987000111"]  # not xóm Tây
    body = f"KHẨN CẤP - Thôn Đông: Báo động lũ: {EMERGENCY}"
    for r in rows:
        (file,) = r["files"]
        parts = decode_parts(village.modem.folder("sent") / file)
        assert [c for c, _ in parts] == ["Unicode_No_Compression"] * len(parts)
        assert len(parts) == r["parts"] == 3  # 171 characters: 67 + 67 + 37
        assert all(len(text) <= 67 for _, text in parts)
        assert "".join(text for _, text in parts) == body  # Vietnamese as written


def test_technician_alert_goes_unaccented_in_160_character_messages(
    village: SmsVillage,
) -> None:
    h = village.hub
    long_body = (
        "Trạm bơm thoát nước ở cống Đồng Sâu không phản hồi từ 19:05, mực nước kênh đã "
        "vượt mức báo động hai. Đề nghị tổ công nghệ số cộng đồng kiểm tra nguồn điện, "
        "cầu dao và bộ điều khiển ngay; nếu cần thì báo cho trưởng thôn để huy động "
        "người dân hỗ trợ. Đây là tin tự động của hệ thống, xin đừng trả lời tin này."
    )
    h.hub.notifier.send(alert("pump-down", "Trạm bơm mất kết nối", long_body))
    rows = h.run_until(
        lambda: [r for r in village.rows("sms-tech") if r["status"] == "sent"],
        step=1.0,
        limit=120,
        what="the alert sent",
    )
    (row,) = rows
    assert row["phone"] == "+84987654321" and row["parts"] == 3
    texts = []
    for file in row["files"]:
        ((coding, text),) = decode_parts(village.modem.folder("sent") / file)
        assert coding == "Default_No_Compression"  # GSM-7: 160 characters a message
        assert len(text) <= 160
        texts.append(text)
    assert all(len(t) > 140 for t in texts[:-1])
    assert " ".join(texts) == unaccented(f"Nghiêm trọng: Trạm bơm mất kết nối. {long_body}")
    assert "Tram bom mat ket noi" in texts[0] and "đ" not in "".join(texts)


def test_rate_limit_and_dedupe_hold(village: SmsVillage) -> None:
    h = village.hub
    before = len(village.rows("sms-tech"))
    h.hub.notifier.send(alert("gate-1", "Cửa cống mở", "Cửa cống số 1 mở."))
    h.hub.notifier.send(alert("gate-1-again", "Cửa cống mở", "Cửa cống số 1 mở."))  # same words
    h.hub.notifier.send(alert("gate-2", "Cửa cống mở", "Cửa cống số 2 mở."))
    h.hub.notifier.send(alert("warn", "Pin yếu", "Pin cảm biến 20%.", severity="warning"))
    rows = h.run_until(
        lambda: (lambda r: r if len(r) == before + 3 else None)(village.rows("sms-tech")),
        step=1.0,
        limit=60,
        what="three more log lines",
    )
    newest = {r["incident"]: r["status"] for r in rows[:3]}
    # 2 an hour to this phone: the long alert and gate-1 took them.
    assert newest == {"gate-1": "queued", "gate-1-again": "duplicate", "gate-2": "limited"}
    assert "warn" not in {r["incident"] for r in rows}  # warnings are not for SMS here


def test_a_modem_that_never_sends_gives_a_failed_message(village: SmsVillage) -> None:
    h = village.hub
    h.hub.notifier.send(alert("dead-1", "Mất điện", "Nhà văn hoá mất điện.", channel="sms-dead"))
    (queued,) = h.run_until(lambda: village.rows("sms-dead"), step=1.0, limit=10, what="queued")
    assert queued["status"] == "queued"
    assert [p.name for p in village.dead.files("outbox")] == queued["files"]
    (failed,) = h.run_until(
        lambda: [r for r in village.rows("sms-dead") if r["status"] == "failed"],
        step=2.0,
        limit=120,
        what="the failure logged",
    )
    assert "not sent within 30 s" in failed["detail"]
    assert village.dead.files("outbox") == []  # it will not go out hours late
    assert [p.name for p in village.dead.files("error")] == queued["files"]
    log = h.http("technician").get("/api/households/sms", params={"limit": 100}).json()
    assert {"phone": "+84901111111", "status": "failed"}.items() <= log[0].items()


def test_a_delivery_report_marks_the_message_delivered(village: SmsVillage) -> None:
    h = village.hub
    waiting = [r for r in village.rows("sms") if r["status"] == "sent"]
    phone = waiting[-1]["phone"]  # the oldest message to a phone is matched first
    # The network's status report, as the dummy phone holds a received message.
    (village.modem.root / "phone" / "sms" / "1" / "1").write_text(
        f"""[SMSBackup000]
SMSC = "+84900000000"
PDU = Status_Report
DateTime = 20261201T030500Z
SMSCDateTime = 20261201T030400Z
State = UnRead
Number = "{phone}"
Coding = Default_No_Compression
Folder = 1
Class = -1
MessageReference = 255
Text00 = {"Delivered".encode("utf-16-be").hex().upper()}
""",
        encoding="utf-8",
    )
    h.run_until(
        lambda: [r for r in village.rows("sms") if r["status"] == "delivered"],
        step=1.0,
        limit=120,
        what="the report read",
    )
    wait_for(lambda: not village.modem.files("inbox"), 5, "the report taken out of the inbox")


def test_households_api_checks_roles_numbers_and_audits(village: SmsVillage) -> None:
    h = village.hub
    head, tech = h.http("head"), h.http("technician")
    bad = head.post("/api/households", json={"name": "A", "phone": "12345", "zone": "xom-dong"})
    assert bad.status_code == 422 and "Vietnamese mobile number" in bad.json()["detail"]
    zone = head.post("/api/households", json={"name": "A", "phone": "0911111111", "zone": "x"})
    assert zone.status_code == 422 and "zone" in zone.json()["detail"]
    dup = head.post(
        "/api/households", json={"name": "B", "phone": "+84912345678", "zone": "xom-tay"}
    )
    assert dup.status_code == 409
    assert (
        tech.post(
            "/api/households", json={"name": "C", "phone": "0911111112", "zone": "xom-tay"}
        ).status_code
        == 403
    )
    listed = tech.get("/api/households", params={"zone": "xom-dong"}).json()
    assert [x["name"] for x in listed] == ["Nhà bà Tư", "Nhà ông Ba"]  # by name
    assert tech.get("/api/households/zones").json() == {"xom-dong": 2, "xom-tay": 1}
    assert tech.delete(f"/api/households/{listed[0]['id']}").status_code == 403
    assert head.delete(f"/api/households/{listed[0]['id']}").status_code == 204
    assert head.delete(f"/api/households/{listed[0]['id']}").status_code == 404
    actions = [
        r["action"]
        for r in h.hub.store.query("SELECT action FROM audit_log WHERE action LIKE 'household.%'")
    ]
    assert actions.count("household.add") == 3 and actions.count("household.remove") == 1


def alert(
    incident: str,
    title: str,
    body: str,
    *,
    severity: str = "critical",
    channel: str = "sms-tech",
) -> Notification:
    return Notification(
        incident=incident,
        title=title,
        body=body,
        severity=severity,
        state="raised",
        at=T0,
        channels=(channel,),
    )
