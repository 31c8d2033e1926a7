"""Notifications against real servers on 127.0.0.1: an HTTP receiver, a Bot API stand-in,
an SMTP server (aiosmtpd). Back-off waits run on a fake clock; nothing sleeps."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from pydantic import ValidationError

from hub.automation.channels import DeliveryError, deliver_now
from hub.automation.notification import Notification
from hub.automation.notify import JITTER, Delivery, Notifier
from hub.automation.notify_settings import NotifySettings
from hub.clock import FakeClock
from hub.store import Store
from hub.store.outbox import Outbox
from tests.broker import free_port
from tests.hubtest import wait_for

TOKEN = "123456:SECRET-bot-token_xyz"
PASSWORD = "mật-khẩu-bí-mật-42"
HEADER_SECRET = "Bearer hdr-secret-777"

TITLE = "Trạm wifi nhà văn hoá mất kết nối"
BODY = (
    "Điểm phát wifi ở nhà văn hoá thôn Đông không phản hồi từ 19:05. "
    "Đề nghị tổ công nghệ kiểm tra nguồn điện."
)


def note(incident: str = "ap-nvh-offline", state: str = "raised", **kw: Any) -> Notification:
    return Notification(
        incident=incident,
        title=kw.pop("title", TITLE),
        body=kw.pop("body", BODY),
        severity=kw.pop("severity", "critical"),
        state=state,  # type: ignore[arg-type]
        at=kw.pop("at", datetime(2026, 12, 1, 12, 5, tzinfo=UTC)),
        **kw,
    )


# -- a scripted HTTP receiver ---------------------------------------------------------------
@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Receiver:
    """Answers each POST with the next scripted (status, json, headers), then 200."""

    server: ThreadingHTTPServer
    hits: list[Hit] = field(default_factory=list)
    script: deque[tuple[int, dict[str, Any], dict[str, str]]] = field(default_factory=deque)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # server thread
            rec = holder["r"]
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            rec.hits.append(Hit(self.path, dict(self.headers), json.loads(raw.decode("utf-8"))))
            status, answer, headers = (
                rec.script.popleft() if rec.script else (200, {"ok": True}, {})
            )
            data = json.dumps(answer).encode()
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder["r"] = rec = Receiver(server)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()
    thread.join(5)


def settings(**channels: dict[str, Any]) -> NotifySettings:
    return NotifySettings.model_validate({"channels": channels})


class FakeWaits:
    """The worker's back-off wait on a fake clock: records each wait and moves time."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.waits: list[float] = []

    def __call__(self, seconds: float, wake: threading.Event) -> bool:
        self.waits.append(seconds)
        self.clock.advance(seconds)
        return wake.is_set()


@pytest.fixture
def results() -> list[Delivery]:
    return []


def notifier(s: NotifySettings, results: list[Delivery], **kw: Any) -> Notifier:
    n = Notifier(s, on_result=results.append, **kw)
    n.start()
    return n


# -- webhook ---------------------------------------------------------------------------------
def test_webhook_one_message_per_incident_and_state(
    receiver: Receiver, results: list[Delivery]
) -> None:
    s = settings(tech={"kind": "webhook", "url": receiver.url + "/hook", "headers": {"X-K": "v"}})
    n = notifier(s, results)
    try:
        for _ in range(20):
            n.send(note())
        wait_for(lambda: n.stats.sent == 1 and n.pending == 0, what="the raised message")
        n.send(note())  # already delivered: still a duplicate
        n.send(note(state="cleared", body="Đã có điện trở lại."))
        wait_for(lambda: n.stats.sent == 2 and n.pending == 0, what="the cleared message")
        n.send(note(state="cleared"))
    finally:
        n.stop()
    assert [h.body["state"] for h in receiver.hits] == ["raised", "cleared"]
    first = receiver.hits[0]
    assert first.path == "/hook"
    assert set(first.body) == {"incident", "title", "body", "severity", "state", "at", "data"}
    assert first.body["title"] == TITLE and first.body["body"] == BODY  # Vietnamese intact
    assert first.body["at"] == "2026-12-01T12:05:00Z"
    assert first.headers["Content-Type"] == "application/json; charset=utf-8"
    assert first.headers["X-K"] == "v"
    assert receiver.hits[1].body["body"] == "Đã có điện trở lại."
    st = n.stats
    assert (st.sent, st.deduped, st.failed, st.retried) == (2, 21, 0, 0)
    assert [r.outcome for r in results] == ["sent", "sent"]


def test_retry_503_twice_then_delivered_with_doubling_backoff(
    receiver: Receiver, results: list[Delivery]
) -> None:
    receiver.script.extend([(503, {}, {}), (503, {}, {})])
    fw = FakeWaits()
    s = settings(tech={"kind": "webhook", "url": receiver.url})
    n = notifier(s, results, clock=fw.clock, wait=fw, random=lambda: 1.0)
    try:
        n.send(note())
        wait_for(lambda: n.stats.sent == 1, what="delivery on the third attempt")
    finally:
        n.stop()
    assert len(receiver.hits) == 3
    # The same message each time, with the same idempotency key for the receiver.
    assert len({h.headers["Idempotency-Key"] for h in receiver.hits}) == 1
    assert fw.waits == pytest.approx([2 * (1 - JITTER), 4 * (1 - JITTER)])
    assert [(r.outcome, r.attempts) for r in results] == [("retry", 1), ("retry", 2), ("sent", 3)]
    assert (n.stats.retried, n.stats.failed) == (2, 0)


def test_backoff_doubles_within_jitter_bounds_up_to_the_cap() -> None:
    s = NotifySettings(retry_initial_s=2, retry_max_s=10)
    for r in (0.0, 0.37, 0.999):
        n = Notifier(s, random=lambda r=r: r)  # type: ignore[misc]
        for attempt, base in [(1, 2), (2, 4), (3, 8), (4, 10), (9, 10)]:
            assert base * (1 - JITTER) <= n.backoff(attempt) <= base


def test_4xx_is_permanent_and_not_retried(receiver: Receiver, results: list[Delivery]) -> None:
    receiver.script.append((400, {"error": "bad"}, {}))
    fw = FakeWaits()
    n = notifier(
        settings(tech={"kind": "webhook", "url": receiver.url}), results, clock=fw.clock, wait=fw
    )
    try:
        n.send(note())
        wait_for(lambda: n.stats.failed == 1)
    finally:
        n.stop()
    assert len(receiver.hits) == 1 and fw.waits == []
    assert results[-1].outcome == "failed" and "HTTP 400" in (results[-1].error or "")
    assert n.stats.retried == 0


def test_redirect_is_not_followed(receiver: Receiver) -> None:
    receiver.script.append((302, {}, {"Location": receiver.url + "/elsewhere"}))
    s = settings(tech={"kind": "webhook", "url": receiver.url + "/old"})
    with pytest.raises(DeliveryError) as e:
        deliver_now(note(), s.channels["tech"])
    assert e.value.permanent and "302" in e.value.reason
    assert [h.path for h in receiver.hits] == ["/old"]


def test_429_retry_after_header_is_honoured(receiver: Receiver, results: list[Delivery]) -> None:
    receiver.script.append((429, {}, {"Retry-After": "7"}))
    fw = FakeWaits()
    s = settings(tech={"kind": "webhook", "url": receiver.url})
    n = notifier(s, results, clock=fw.clock, wait=fw)
    try:
        n.send(note())
        wait_for(lambda: n.stats.sent == 1)
    finally:
        n.stop()
    assert fw.waits == [7.0]


def test_dead_endpoint_blocks_neither_caller_nor_other_channels(
    receiver: Receiver, results: list[Delivery]
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    s = NotifySettings.model_validate(
        {
            "channels": {
                "dead": {"kind": "webhook", "url": dead, "timeout_s": 2},
                "ok": {"kind": "webhook", "url": receiver.url},
            },
            "retry_initial_s": 60,  # real clock: the dead ones wait a minute
        }
    )
    n = notifier(s, results)
    try:
        t0 = time.perf_counter()
        for i in range(100):
            n.send(note(incident=f"dead-{i}", channels=("dead",)))
        elapsed = time.perf_counter() - t0
        assert elapsed < 0.05, f"100 sends took {elapsed * 1000:.1f} ms"
        n.send(note(incident="healthy", channels=("ok",)))
        wait_for(lambda: n.stats.sent == 1, what="the healthy channel's message")
        assert [h.body["incident"] for h in receiver.hits] == ["healthy"]
        assert n.stats.failed == 0 and n.pending == 100  # the dead ones wait their back-off
        t1 = time.perf_counter()
    finally:
        n.stop(timeout=5)
    assert time.perf_counter() - t1 < 1.0, "stop() must interrupt the back-off wait"


def test_dead_endpoint_is_given_up_after_max_attempts(results: list[Delivery]) -> None:
    dead = f"http://127.0.0.1:{free_port()}/"
    s = NotifySettings.model_validate(
        {"channels": {"dead": {"kind": "webhook", "url": dead}}, "max_attempts": 4}
    )
    fw = FakeWaits()
    n = notifier(s, results, clock=fw.clock, wait=fw, random=lambda: 0.0)
    try:
        n.send(note())
        wait_for(lambda: n.stats.failed == 1, what="giving up")
        assert n.pending == 0
        assert [r.outcome for r in results] == ["retry", "retry", "retry", "failed"]
        assert "unreachable" in (results[-1].error or "")
        assert fw.waits == [2.0, 4.0, 8.0]
        # Given up, so a later send of the same incident is tried afresh.
        n.send(note())
        wait_for(lambda: n.stats.failed == 2, what="the second give-up")
    finally:
        n.stop()
    assert n.stats.retried == 6 and n.stats.deduped == 0


def test_cleared_waits_for_its_raised(receiver: Receiver, results: list[Delivery]) -> None:
    receiver.script.append((503, {}, {}))
    fw = FakeWaits()
    n = notifier(
        settings(tech={"kind": "webhook", "url": receiver.url}), results, clock=fw.clock, wait=fw
    )
    try:
        n.send(note())
        n.send(note(state="cleared"))
        wait_for(lambda: n.stats.sent == 2)
    finally:
        n.stop()
    assert [h.body["state"] for h in receiver.hits] == ["raised", "raised", "cleared"]


def test_full_queue_drops_the_oldest(results: list[Delivery]) -> None:
    s = NotifySettings.model_validate(
        {"channels": {"t": {"kind": "webhook", "url": "http://127.0.0.1:9/"}}, "queue_max": 3}
    )
    n = Notifier(s, on_result=results.append)  # not started: nothing leaves the queue
    for i in range(5):
        n.send(note(incident=f"i{i}"))
    assert n.pending == 3 and n.stats.dropped == 2
    assert [(r.incident, r.outcome) for r in results] == [("i0", "dropped"), ("i1", "dropped")]
    n.send(note(incident="i0"))  # dropped, so not a duplicate
    assert n.stats.deduped == 0 and n.stats.dropped == 3


def test_unknown_channel_is_counted_not_raised() -> None:
    n = Notifier(settings(t={"kind": "webhook", "url": "http://127.0.0.1:9/"}))
    n.send(note(channels=("nope", "t")))
    assert n.stats.unknown_channel == 1 and n.pending == 1


def test_worker_survives_an_exception_in_delivery(results: list[Delivery]) -> None:
    calls: list[str] = []

    def flaky(n: Notification, ch: object) -> None:
        calls.append(n.incident)
        if n.incident == "boom":
            raise ZeroDivisionError("a bug")

    fw = FakeWaits()
    s = NotifySettings.model_validate(
        {"channels": {"t": {"kind": "webhook", "url": "http://127.0.0.1:9/"}}, "max_attempts": 2}
    )
    n = notifier(s, results, clock=fw.clock, wait=fw, deliver=flaky)
    try:
        n.send(note(incident="boom"))
        n.send(note(incident="fine"))
        wait_for(lambda: n.stats.sent == 1 and n.stats.failed == 1)
    finally:
        n.stop()
    assert calls.count("boom") == 2 and "ZeroDivisionError" in (results[-1].error or "")


# -- e-mail ------------------------------------------------------------------------------------
class MailBox:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, MailBox]]:
    box = MailBox()

    def auth(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"truongthon",
            PASSWORD.encode(),
        )
        return AuthResult(success=ok, handled=False)  # False: the server answers 535

    c = Controller(
        box, hostname="127.0.0.1", port=free_port(), authenticator=auth, auth_require_tls=False
    )
    c.start()
    yield c, box
    c.stop()


def test_email_one_mail_with_subject_body_and_headers(
    smtp_server: tuple[Controller, MailBox],
    results: list[Delivery],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    c, box = smtp_server
    s = settings(
        head={
            "kind": "email",
            "smtp_host": "127.0.0.1",
            "smtp_port": c.port,
            "starttls": False,
            "username": "truongthon",
            "password": PASSWORD,
            "sender": "hub@thon-dong.example",
            "to": ["truongthon@example.vn", "kythuat@example.vn"],
        }
    )
    n = notifier(s, results)
    try:
        for _ in range(5):
            n.send(note())
        wait_for(lambda: n.stats.sent == 1 and n.pending == 0)
    finally:
        n.stop()
    assert len(box.envelopes) == 1
    env = box.envelopes[0]
    assert env.mail_from == "hub@thon-dong.example"
    assert env.rcpt_tos == ["truongthon@example.vn", "kythuat@example.vn"]
    assert isinstance(env.original_content, bytes)
    mail = email.message_from_bytes(env.original_content, policy=email.policy.default)
    assert isinstance(mail, EmailMessage)
    assert mail["Subject"] == f"[Nghiêm trọng] {TITLE}"
    assert mail["X-Langso-Incident"] == "ap-nvh-offline"
    assert mail["X-Langso-State"] == "raised"
    assert mail["Message-ID"].startswith("<") and mail["Message-ID"].endswith("@thon-dong.example>")
    part = mail.get_body(("plain",))
    assert part is not None and part.get_content_charset() == "utf-8"
    text = part.get_content()
    assert TITLE in text and BODY in text
    assert PASSWORD not in caplog.text


def test_email_refused_password_is_permanent(smtp_server: tuple[Controller, MailBox]) -> None:
    c, box = smtp_server
    s = settings(
        head={
            "kind": "email",
            "smtp_host": "127.0.0.1",
            "smtp_port": c.port,
            "starttls": False,
            "username": "truongthon",
            "password": "wrong",
            "sender": "hub@thon-dong.example",
            "to": ["truongthon@example.vn"],
        }
    )
    with pytest.raises(DeliveryError) as e:
        deliver_now(note(), s.channels["head"])
    assert e.value.permanent and box.envelopes == []


def test_email_server_down_is_temporary() -> None:
    s = settings(
        head={
            "kind": "email",
            "smtp_host": "127.0.0.1",
            "smtp_port": free_port(),
            "sender": "hub@thon-dong.example",
            "to": ["truongthon@example.vn"],
        }
    )
    with pytest.raises(DeliveryError) as e:
        deliver_now(note(), s.channels["head"])
    assert not e.value.permanent


# -- Telegram --------------------------------------------------------------------------------
def telegram(receiver: Receiver) -> NotifySettings:
    return settings(
        tg={"kind": "telegram", "bot_token": TOKEN, "chat_id": -100123, "api_base": receiver.url}
    )


def test_telegram_send_message(
    receiver: Receiver, results: list[Delivery], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    n = notifier(telegram(receiver), results)
    try:
        n.send(note())
        n.send(note(state="cleared", body="Đã có điện trở lại."))
        wait_for(lambda: n.stats.sent == 2)
    finally:
        n.stop()
    assert [h.path for h in receiver.hits] == [f"/bot{TOKEN}/sendMessage"] * 2
    assert set(receiver.hits[0].body) == {"chat_id", "text"}
    assert receiver.hits[0].body["chat_id"] == -100123
    assert TITLE in receiver.hits[0].body["text"] and BODY in receiver.hits[0].body["text"]
    assert receiver.hits[1].body["text"].startswith("✅")
    assert TOKEN not in caplog.text


def test_telegram_429_retry_after_is_honoured(receiver: Receiver, results: list[Delivery]) -> None:
    receiver.script.append(
        (
            429,
            {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 13",
                "parameters": {"retry_after": 13},
            },
            {},
        )
    )
    fw = FakeWaits()
    n = notifier(telegram(receiver), results, clock=fw.clock, wait=fw)
    try:
        n.send(note())
        wait_for(lambda: n.stats.sent == 1)
    finally:
        n.stop()
    assert fw.waits == [13.0]
    assert results[0].outcome == "retry" and "retry after 13" in (results[0].error or "")


def test_telegram_chat_not_found_is_permanent(receiver: Receiver) -> None:
    receiver.script.append(
        (400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}, {})
    )
    with pytest.raises(DeliveryError) as e:
        deliver_now(note(), telegram(receiver).channels["tg"])
    assert e.value.permanent and "chat not found" in e.value.reason


# -- secrets -------------------------------------------------------------------------------------
def all_secret_settings() -> NotifySettings:
    return settings(
        hook={
            "kind": "webhook",
            "url": "https://hooks.example.com/services/T0/B0/url-secret-999?key=q-secret",
            "headers": {"Authorization": HEADER_SECRET},
        },
        mail={
            "kind": "email",
            "smtp_host": "mail.example.com",
            "username": "hub",
            "password": PASSWORD,
            "sender": "hub@example.com",
            "to": ["a@example.com"],
        },
        tg={"kind": "telegram", "bot_token": TOKEN, "chat_id": "@langso"},
    )


SECRETS = (TOKEN, PASSWORD, HEADER_SECRET, "url-secret-999", "q-secret")


def test_secrets_are_masked_in_repr_and_errors() -> None:
    s = all_secret_settings()
    for text in (repr(s), str(s), repr(s.channels["hook"]), str(s.channels["tg"])):
        for secret in SECRETS:
            assert secret not in text
    bad = [
        {"t": {"kind": "telegram", "bot_token": "not-a-token " + TOKEN, "chat_id": 1}},
        {"w": {"kind": "webhook", "url": "ftp://user:" + PASSWORD + "@example.com/"}},
        {
            "m": {
                "kind": "email",
                "smtp_host": "h",
                "password": PASSWORD,
                "sender": "a@b.c",
                "to": ["d@e.f"],
            }
        },
    ]
    for channels in bad:
        with pytest.raises(ValidationError) as e:
            NotifySettings.model_validate({"channels": channels})
        assert TOKEN not in str(e.value) and PASSWORD not in str(e.value)


def test_secrets_never_reach_logs_results_or_stats(
    caplog: pytest.LogCaptureFixture, results: list[Delivery]
) -> None:
    caplog.set_level(logging.DEBUG)

    def leaky(n: Notification, ch: object) -> None:
        # A library error that quotes the whole URL, token included.
        raise DeliveryError(
            f"bad URL https://api.telegram.org/bot{TOKEN}/sendMessage "
            f"(auth {HEADER_SECRET}, path /services/T0/B0/url-secret-999, pw {PASSWORD})"
        )

    fw = FakeWaits()
    s = all_secret_settings().model_copy(update={"max_attempts": 2})
    n = notifier(s, results, clock=fw.clock, wait=fw, deliver=leaky)
    try:
        n.send(note())
        wait_for(lambda: n.stats.failed == 3, what="every channel to give up")
    finally:
        n.stop()
    texts = [caplog.text, str(n.stats), *(str(r) for r in results)]
    texts += [str(r.args) for r in caplog.records]
    for text in texts:
        for secret in SECRETS:
            assert secret not in text
    assert any("***" in (r.error or "") for r in results)


def test_settings_validation() -> None:
    with pytest.raises(ValidationError, match="http:// or https://"):
        settings(w={"kind": "webhook", "url": "file:///etc/passwd"})
    with pytest.raises(ValidationError, match="lower-case"):
        settings(**{"Tech Hook": {"kind": "webhook", "url": "http://x/"}})
    with pytest.raises(ValidationError, match="extra"):
        settings(w={"kind": "webhook", "url": "http://x/", "retries": 3})
    with pytest.raises(ValidationError, match="retry_max_s"):
        NotifySettings(retry_initial_s=10, retry_max_s=5)
    with pytest.raises(ValidationError, match="one of ssl"):
        settings(m={"kind": "email", "smtp_host": "h", "ssl": True, "sender": "a@b", "to": ["c@d"]})
    for name, f in NotifySettings.model_fields.items():
        assert f.description, name
    with pytest.raises(ValueError, match="aware"):
        note(at=datetime(2026, 12, 1, 12, 5))


# -- the outbox: what a restart must not lose ---------------------------------------------------
def test_undelivered_messages_survive_a_restart_and_sent_ones_do_not_come_back(
    receiver: Receiver, results: list[Delivery], tmp_path: Path
) -> None:
    store = Store(tmp_path / "hub.db")
    s = settings(hook={"kind": "webhook", "url": receiver.url + "/hook"})
    # The endpoint is down (the Internet is, in a storm): 503 to every first attempt.
    receiver.script.extend([(503, {}, {})] * 2)
    first = Notifier(
        s, on_result=results.append, outbox=Outbox(store), wait=lambda s, w: w.wait(60)
    )
    first.start()
    try:
        first.send(note(incident="flood-1"))
        first.send(note(incident="flood-2"))
        wait_for(lambda: len(receiver.hits) == 2, what="both tried once")
        wait_for(lambda: [r.outcome for r in results] == ["retry", "retry"], what="both failed")
    finally:
        first.stop()  # the power goes out
    rows = store.query("SELECT channel, attempts FROM notify_outbox ORDER BY id")
    assert [(r["channel"], r["attempts"]) for r in rows] == [("hook", 1), ("hook", 1)]

    second = Notifier(s, on_result=results.append, outbox=Outbox(store))
    second.start()
    try:
        wait_for(lambda: second.stats.sent == 2, what="both delivered after the restart")
        assert [h.body["incident"] for h in receiver.hits[2:]] == ["flood-1", "flood-2"]
        wait_for(lambda: not store.query("SELECT 1 FROM notify_outbox"), what="an empty outbox")
        # The restarted notifier still knows what it sent: the same state is a duplicate.
        second.send(note(incident="flood-1"))
        assert second.stats.deduped == 1
    finally:
        second.stop()

    third = Notifier(s, outbox=Outbox(store))
    third.start()
    try:
        assert third.pending == 0  # sent means gone, also from disk
    finally:
        third.stop()
    assert len(receiver.hits) == 4
    store.close()


def test_an_outbox_row_for_a_channel_since_removed_is_dropped(tmp_path: Path) -> None:
    store = Store(tmp_path / "hub.db")
    Outbox(store).add(note(), "old-channel", 0.0)
    n = Notifier(
        settings(t={"kind": "webhook", "url": "http://127.0.0.1:9/"}), outbox=Outbox(store)
    )
    n.start()
    try:
        assert n.pending == 0 and not store.query("SELECT 1 FROM notify_outbox")
    finally:
        n.stop()
    store.close()
