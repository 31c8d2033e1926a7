"""Notify: tell technicians and the village head, by webhook, e-mail or Telegram.

Its place in the flow: ``hub/monitor`` raises and clears alerts and ``hub/rules``
decides who hears of what; both hand a :class:`Notification` to
:meth:`Notifier.send`, which only queues it. One worker thread delivers each
message per channel, retries with exponential back-off and finally gives up. A
channel that is down never blocks the caller, and never holds back the other
channels' messages.

One message per incident and state: sending the same ``(incident, state)`` again
for a channel while it is queued or after it was delivered does nothing, so a rule
may call ``send`` on every sample while a condition holds.

Threads: ``send``, ``stats`` and ``pending`` may be used from any thread (ingest
writer, rules, API) and never touch the network; :func:`deliver_now` runs in the
worker thread (or in a test). ``on_result`` is called in the worker thread, and in
the caller's thread for a message dropped from a full queue.

Secrets (tokens, passwords, header values, webhook paths) never appear in a repr,
a validation error or a log line.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import random as _random
import re
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from email.message import EmailMessage
from email.utils import format_datetime
from http.client import HTTPException, HTTPMessage
from types import MappingProxyType
from typing import IO, TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from hub import __version__
from hub.clock import Clock, SystemClock, utc_iso
from hub.errors import HubError

if TYPE_CHECKING:
    import smtplib

    # hub.monitor imports hub.settings, which imports this module
    from hub.events import AlertChange
    from hub.store import Store

log = logging.getLogger(__name__)

_NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"
_MASK = "***"
#: Back-off jitter: each wait is shortened by up to this fraction, so that many
#: messages failing together do not all retry in the same second.
JITTER = 0.1
#: A server's own Retry-After is honoured, up to this many seconds.
RETRY_AFTER_MAX_S = 6 * 3600.0
#: Telegram refuses longer texts (Bot API, sendMessage: 1-4096 characters).
TELEGRAM_TEXT_MAX = 4096


# -- settings ------------------------------------------------------------------------------
class _Model(BaseModel):
    # hide_input_in_errors: the rejected value may be a token, a password or a URL
    # with a key in it; errors then say which key and why, never what was written.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


def _http_url(v: str) -> str:
    parts = urllib.parse.urlsplit(v)
    if parts.scheme not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    if not parts.hostname:
        raise ValueError("has no host name")
    return v


def mask_url(url: str) -> str:
    """``scheme://host[:port]`` and ``/***`` for the rest: webhook paths often hold a key."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    if parts.port:
        host = f"{host}:{parts.port}"
    rest = "/" + _MASK if (parts.path not in ("", "/") or parts.query) else ""
    return f"{parts.scheme}://{host}{rest}"


class WebhookChannel(_Model):
    kind: Literal["webhook"] = Field(description="An HTTP endpoint that receives JSON.")
    url: str = Field(
        description="Where the JSON is POSTed (http or https); shown masked, as such URLs "
        "often carry a key."
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Extra HTTP headers, e.g. Authorization; values are masked in logs.",
    )
    timeout_s: float = Field(5.0, gt=0, le=120, description="Seconds to wait for an answer.")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _http_url(v)

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        yield "kind", self.kind
        yield "url", mask_url(self.url)
        yield "headers", {k: _MASK for k in self.headers}
        yield "timeout_s", self.timeout_s


class EmailChannel(_Model):
    kind: Literal["email"] = Field(description="E-mail through an SMTP server.")
    smtp_host: str = Field(min_length=1, description="SMTP server host name or address.")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP port (587 submission).")
    starttls: bool = Field(True, description="Upgrade the connection with STARTTLS.")
    ssl: bool = Field(False, description="TLS from the first byte (SMTPS, port 465).")
    username: str | None = Field(None, description="SMTP user name; none for no login.")
    password: SecretStr | None = Field(None, description="SMTP password (never logged).")
    sender: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", description="From address.")
    to: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = Field(
        min_length=1, description="Recipient addresses."
    )
    timeout_s: float = Field(15.0, gt=0, le=300, description="Seconds per SMTP exchange.")

    @model_validator(mode="after")
    def _check(self) -> EmailChannel:
        if self.ssl and self.starttls:
            raise ValueError("choose one of ssl (port 465) and starttls (port 587)")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        return self


class TelegramChannel(_Model):
    kind: Literal["telegram"] = Field(description="A Telegram bot writing to a chat.")
    bot_token: SecretStr = Field(description="The bot's token from @BotFather (never logged).")
    chat_id: int | str = Field(description="Chat id (a number) or @channelname.")
    api_base: str = Field(
        "https://api.telegram.org", description="Bot API server (a local one in tests)."
    )
    timeout_s: float = Field(10.0, gt=0, le=120, description="Seconds to wait for an answer.")

    @field_validator("api_base")
    @classmethod
    def _api(cls, v: str) -> str:
        return _http_url(v)

    @field_validator("bot_token")
    @classmethod
    def _token(cls, v: SecretStr) -> SecretStr:
        if not re.fullmatch(r"\d+:[A-Za-z0-9_-]+", v.get_secret_value()):
            raise ValueError("is not a bot token (digits:letters, as @BotFather gives it)")
        return v


Channel = Annotated[WebhookChannel | EmailChannel | TelegramChannel, Field(discriminator="kind")]


class NotifySettings(_Model):
    channels: dict[str, Channel] = Field(
        default_factory=dict,
        description="Notification channels by name (rules name them), each with its kind: "
        "webhook, email or telegram.",
    )
    groups: dict[str, list[str]] = Field(
        default_factory=lambda: {"technicians": list[str](), "head": list[str]()},
        description="Who rules notify: group name -> channel names (an empty group sends "
        "nothing; the firing log says so).",
    )
    retry_initial_s: float = Field(
        2.0, gt=0, description="First wait before a failed message is tried again."
    )
    retry_max_s: float = Field(
        300.0, gt=0, description="Longest wait between tries (the wait doubles up to it)."
    )
    max_attempts: int = Field(8, ge=1, le=100, description="Tries per message before giving up.")
    queue_max: int = Field(
        1000, ge=1, description="Messages held at most; beyond it the oldest is dropped."
    )
    dedupe_window: int = Field(
        10_000,
        ge=1,
        description="How many (incident, channel) pairs are remembered to send each state once.",
    )

    @field_validator("channels")
    @classmethod
    def _names(cls, v: dict[str, Channel]) -> dict[str, Channel]:
        for name in v:
            if not re.match(_NAME, name):
                raise ValueError(
                    f"channel name {name[:40]!r}: lower-case letters, digits and '-' only"
                )
        return v

    @model_validator(mode="after")
    def _cross(self) -> NotifySettings:
        if self.retry_max_s < self.retry_initial_s:
            raise ValueError("retry_max_s must be ≥ retry_initial_s")
        for group, members in self.groups.items():
            bad = [m for m in members if m not in self.channels]
            if bad:
                raise ValueError(f"groups.{group}: no channel {bad[0][:40]!r}")
        return self

    def resolve(self, names: Iterable[str]) -> list[str]:
        """Group and channel names -> channel names, in order, once each."""
        out: list[str] = []
        for name in names:
            for ch in self.groups.get(name, [name] if name in self.channels else []):
                if ch not in out:
                    out.append(ch)
        return out


# -- messages ------------------------------------------------------------------------------
State = Literal["raised", "cleared"]
Outcome = Literal["sent", "retry", "failed", "dropped"]


@dataclass(frozen=True, slots=True)
class Notification:
    """One thing to tell people. ``incident`` names the incident from raise to clear
    (an alert id, or rule + device) and is the de-duplication key with ``state``.

    ``channels`` empty means every configured channel. ``data`` goes into the
    webhook's JSON as it is (datetimes become ISO 8601 UTC).
    """

    incident: str
    title: str
    body: str
    severity: str
    state: State
    at: datetime
    data: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    channels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.incident:
            raise ValueError("a notification needs an incident key")
        if self.state not in ("raised", "cleared"):
            raise ValueError(f"state must be raised or cleared, not {self.state!r}")
        if self.at.tzinfo is None:
            raise ValueError("'at' must be an aware datetime (UTC)")
        object.__setattr__(self, "data", MappingProxyType(dict(self.data)))
        object.__setattr__(self, "channels", tuple(self.channels))


@dataclass(frozen=True, slots=True)
class Delivery:
    """What became of one message on one channel (handed to ``on_result``)."""

    incident: str
    state: State
    channel: str
    outcome: Outcome
    attempts: int
    error: str | None = None
    retry_in_s: float | None = None


@dataclass(slots=True)
class NotifyStats:
    sent: int = 0
    failed: int = 0  # gave up: permanent refusal or max_attempts reached
    retried: int = 0  # failed attempts that will be tried again
    dropped: int = 0  # pushed out of a full queue
    deduped: int = 0
    unknown_channel: int = 0
    internal_errors: int = 0
    last_error: str | None = None


class DeliveryError(HubError, RuntimeError):
    """One attempt failed. ``permanent``: trying again cannot help (fix the settings)."""

    def __init__(
        self, reason: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after


def alert_notification(c: AlertChange, *, site: str, channels: Iterable[str] = ()) -> Notification:
    """A monitor alert as a notification, in Vietnamese; the alert id is the incident."""
    if c.rule == "offline":
        what = "mất kết nối" if c.state == "raised" else "đã kết nối lại"
    else:
        what = f"vượt ngưỡng {c.rule}" if c.state == "raised" else f"hết vượt ngưỡng {c.rule}"
    at = c.raised_at if c.cleared_at is None else c.cleared_at
    return Notification(
        incident=c.id,
        title=f"{c.device_id} {what}",
        body=c.message,
        severity=c.severity,
        state=c.state,
        at=datetime.fromtimestamp(at, UTC),
        data={"site": site, "device_id": c.device_id, "rule": c.rule, "alert_id": c.id},
        channels=tuple(channels),
    )


# -- rendering -----------------------------------------------------------------------------
def _label(n: Notification) -> str:
    if n.state == "cleared":
        return "Đã khắc phục"
    return "Nghiêm trọng" if n.severity == "critical" else "Cảnh báo"


def render_text(n: Notification, tz: tzinfo = UTC) -> str:
    """The plain text of an e-mail or a Telegram message (local time of the village)."""
    when = n.at.astimezone(tz).strftime("%H:%M %d/%m/%Y")
    return f"{n.title}\n\n{n.body}\n\n— {_label(n)} · {when} · mã sự cố {n.incident}"


def webhook_json(n: Notification) -> dict[str, Any]:
    return {
        "incident": n.incident,
        "title": n.title,
        "body": n.body,
        "severity": n.severity,
        "state": n.state,
        "at": utc_iso(n.at),
        "data": dict(n.data),
    }


def _json_default(o: object) -> object:
    if isinstance(o, datetime):
        return utc_iso(o)
    if isinstance(o, set | frozenset | tuple):
        return list(o)
    if isinstance(o, Mapping):
        return dict(o)
    return str(o)


def _one_line(s: str) -> str:
    # Header values may not carry CR/LF (header injection; EmailMessage refuses them).
    return " ".join(s.split())


def _digest(s: str) -> str:
    return hashlib.blake2b(s.encode(), digest_size=8).hexdigest()


def build_email(n: Notification, ch: EmailChannel, tz: tzinfo = UTC) -> EmailMessage:
    """The mail for one notification. Every mail of an incident names the same thread
    root in ``References``, so mail readers show raised and cleared together; the
    ``Message-ID`` is stable across retries of the same message."""
    domain = ch.sender.rpartition("@")[2] or "langso-hub.invalid"
    root = f"<{_digest(n.incident)}@{domain}>"
    msg = EmailMessage()
    msg["Subject"] = f"[{_label(n)}] {_one_line(n.title)}"
    msg["From"] = ch.sender
    msg["To"] = ", ".join(ch.to)
    msg["Date"] = format_datetime(n.at.astimezone(UTC))
    msg["Message-ID"] = f"<{_digest(n.incident)}.{n.state}.{int(n.at.timestamp())}@{domain}>"
    msg["References"] = root
    msg["X-Langso-Incident"] = _one_line(n.incident)
    msg["X-Langso-State"] = n.state
    msg["X-Langso-Severity"] = _one_line(n.severity)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
    # base64: Vietnamese is mostly multi-byte letters, which quoted-printable triples.
    msg.set_content(render_text(n, tz), charset="utf-8", cte="base64")
    return msg


def telegram_text(n: Notification, tz: tzinfo = UTC) -> str:
    icon = "✅" if n.state == "cleared" else ("🔴" if n.severity == "critical" else "🟠")
    text = f"{icon} {render_text(n, tz)}"
    return text if len(text) <= TELEGRAM_TEXT_MAX else text[: TELEGRAM_TEXT_MAX - 1] + "…"


# -- delivery ------------------------------------------------------------------------------
class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """urllib would follow a 301/302 by re-sending the POST as a GET without its body:
    the message would vanish with a 200. A redirect is an error to fix in the URL."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return float(value.strip())
    return None  # an HTTP-date: the normal back-off applies


def _post_json(
    url: str, payload: Mapping[str, Any], headers: Mapping[str, str], timeout: float, what: str
) -> tuple[int, bytes, float | None]:
    """POST JSON; (status, body, Retry-After seconds). Network trouble is a temporary
    DeliveryError; HTTP errors come back as a status for the caller to judge."""
    body = json.dumps(payload, ensure_ascii=False, default=_json_default).encode("utf-8")
    req = urllib.request.Request(url, data=body, method="POST")
    req.add_header("Content-Type", "application/json; charset=utf-8")
    req.add_header("User-Agent", f"langso-hub/{__version__}")
    for k, v in headers.items():
        req.add_header(k, v)
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            return int(resp.status), resp.read(65_536), None
    except urllib.error.HTTPError as e:
        with e:  # an HTTPError holds the connection open until closed
            return e.code, e.read(65_536), _retry_after(e.headers.get("Retry-After"))
    except urllib.error.URLError as e:
        raise DeliveryError(f"{what} unreachable: {e.reason}") from None
    except (OSError, HTTPException) as e:  # timeouts, resets, malformed answers
        raise DeliveryError(f"{what} failed: {type(e).__name__}: {e}") from None


def _judge(status: int, what: str, retry_after: float | None, detail: str = "") -> None:
    if 200 <= status < 300:
        return
    reason = f"{what} answered HTTP {status}{': ' + detail if detail else ''}"
    if status in (408, 429) or status >= 500:
        raise DeliveryError(reason, retry_after=retry_after)
    if 300 <= status < 400:
        reason += " (a redirect: put the new address in the settings)"
    raise DeliveryError(reason, permanent=True)


def _send_webhook(n: Notification, ch: WebhookChannel) -> None:
    headers = {"Idempotency-Key": _digest(f"{n.incident}\0{n.state}"), **ch.headers}
    status, _, retry_after = _post_json(ch.url, webhook_json(n), headers, ch.timeout_s, "webhook")
    _judge(status, "webhook", retry_after)


def _send_telegram(n: Notification, ch: TelegramChannel, tz: tzinfo) -> None:
    url = f"{ch.api_base.rstrip('/')}/bot{ch.bot_token.get_secret_value()}/sendMessage"
    payload = {"chat_id": ch.chat_id, "text": telegram_text(n, tz)}
    status, raw, retry_after = _post_json(url, payload, {}, ch.timeout_s, "telegram")
    try:
        answer = json.loads(raw) if raw else {}
    except ValueError:
        answer = {}
    if not isinstance(answer, dict):
        answer = {}
    params = answer.get("parameters")
    if isinstance(params, dict) and isinstance(params.get("retry_after"), int | float):
        retry_after = float(params["retry_after"])  # Bot API: wait this long on a 429
    detail = str(answer.get("description", ""))[:200]
    _judge(status, "telegram", retry_after, detail)
    if answer.get("ok") is not True:
        raise DeliveryError(f"telegram said not ok: {detail or raw[:200]!r}", permanent=True)


def _login(smtp: smtplib.SMTP, user: str, password: str) -> None:
    """smtplib encodes credentials as ASCII, so a Vietnamese password fails before it is
    sent. AUTH PLAIN is UTF-8 (RFC 4616): send it ourselves when needed."""
    import smtplib

    if (user + password).isascii():
        smtp.login(user, password)
        return
    smtp.ehlo_or_helo_if_needed()
    if "PLAIN" not in smtp.esmtp_features.get("auth", "").upper().split():
        raise smtplib.SMTPNotSupportedError("AUTH PLAIN, needed for a non-ASCII password")
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode("ascii")
    code, resp = smtp.docmd("AUTH", "PLAIN " + token)
    if code not in (235, 503):  # 503: already authenticated
        raise smtplib.SMTPAuthenticationError(code, resp)


def _send_email(n: Notification, ch: EmailChannel, tz: tzinfo) -> None:
    # smtplib is imported at the first mail sent, not at start-up (this module comes with
    # the settings): a hub without an e-mail channel never needs it (about 0.1 MB).
    import smtplib

    msg = build_email(n, ch, tz)
    context = ssl.create_default_context()
    try:
        smtp = (
            smtplib.SMTP_SSL(ch.smtp_host, ch.smtp_port, timeout=ch.timeout_s, context=context)
            if ch.ssl
            else smtplib.SMTP(ch.smtp_host, ch.smtp_port, timeout=ch.timeout_s)
        )
        with smtp:
            if ch.starttls:
                smtp.starttls(context=context)
            if ch.username is not None and ch.password is not None:
                _login(smtp, ch.username, ch.password.get_secret_value())
            refused = smtp.send_message(msg)
    except smtplib.SMTPAuthenticationError:
        raise DeliveryError(
            "the mail server refused the user name or password", permanent=True
        ) from None
    except smtplib.SMTPNotSupportedError as e:
        raise DeliveryError(f"the mail server does not support it: {e}", permanent=True) from None
    except smtplib.SMTPRecipientsRefused as e:
        codes = [code for code, _ in e.recipients.values()]
        raise DeliveryError(
            f"the mail server refused every recipient ({codes})",
            permanent=all(500 <= c < 600 for c in codes),
        ) from None
    except smtplib.SMTPResponseException as e:
        text = e.smtp_error.decode("utf-8", "replace") if isinstance(e.smtp_error, bytes) else ""
        raise DeliveryError(
            f"the mail server answered {e.smtp_code} {text[:200]}",
            permanent=500 <= e.smtp_code < 600,
        ) from None
    except (smtplib.SMTPException, OSError) as e:  # connection refused, timeout, TLS…
        raise DeliveryError(f"mail server unreachable: {type(e).__name__}: {e}") from None
    if refused:
        # Delivered to the others; a retry would send them a second copy.
        log.warning("mail for %s: %d recipient(s) refused", n.incident, len(refused))


def deliver_now(
    n: Notification,
    channel: WebhookChannel | EmailChannel | TelegramChannel,
    *,
    tz: tzinfo = UTC,
) -> None:
    """One attempt, in this thread. Raises :class:`DeliveryError` (``permanent`` when a
    retry cannot help, ``retry_after`` when the server said how long to wait)."""
    if isinstance(channel, WebhookChannel):
        _send_webhook(n, channel)
    elif isinstance(channel, EmailChannel):
        _send_email(n, channel, tz)
    else:
        _send_telegram(n, channel, tz)


def channel_secrets(channel: WebhookChannel | EmailChannel | TelegramChannel) -> list[str]:
    """Strings that must never reach a log line or a stats field."""
    out: list[str] = []
    if isinstance(channel, WebhookChannel):
        out += list(channel.headers.values())
        parts = urllib.parse.urlsplit(channel.url)
        out += [p for p in (parts.path, parts.query, parts.password or "") if len(p) > 1]
    elif isinstance(channel, EmailChannel):
        if channel.password is not None:
            out.append(channel.password.get_secret_value())
    else:
        out.append(channel.bot_token.get_secret_value())
    return [s for s in out if s]


def scrub(text: str, secrets: Iterable[str]) -> str:
    for s in sorted(secrets, key=len, reverse=True):
        text = text.replace(s, _MASK)
    return text


# -- the queue and its worker -----------------------------------------------------------------
@dataclass(slots=True)
class _Job:
    n: Notification
    channel: str
    seq: int
    due: float
    attempts: int = 0
    row: int | None = None  # its notify_outbox row


class Outbox:
    """The undelivered messages on disk (table ``notify_outbox``): a message is written
    when queued and deleted once sent, given up or dropped; a restart sends the rest.
    Each thread uses its own connection (``Store.transaction``)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, n: Notification, channel: str, at: float) -> int:
        # The webhook's JSON holds all of a message (the channel is the row's own).
        body = json.dumps(webhook_json(n), ensure_ascii=False, default=_json_default)
        with self.store.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO notify_outbox(channel, notification, queued_at) VALUES (?,?,?)",
                (channel, body, at),
            )
            return int(cur.lastrowid or 0)

    def attempted(self, row: int, attempts: int) -> None:
        with self.store.transaction() as conn:
            conn.execute("UPDATE notify_outbox SET attempts=? WHERE id=?", (attempts, row))

    def remove(self, row: int) -> None:
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM notify_outbox WHERE id=?", (row,))

    def load(self) -> list[tuple[int, str, Notification, int]]:
        """(row, channel, message, attempts so far), oldest first."""
        out = []
        for r in self.store.query("SELECT * FROM notify_outbox ORDER BY id"):
            d = json.loads(r["notification"])
            n = Notification(
                incident=d["incident"],
                title=d["title"],
                body=d["body"],
                severity=d["severity"],
                state=d["state"],
                at=datetime.fromisoformat(d["at"]),
                data=MappingProxyType(d["data"]),
                channels=(r["channel"],),
            )
            out.append((int(r["id"]), str(r["channel"]), n, int(r["attempts"])))
        return out


Deliver = Callable[[Notification, WebhookChannel | EmailChannel | TelegramChannel], None]


class Notifier:
    """A bounded queue of messages and the one thread that delivers them.

    Scheduling is by next-attempt time: a message waiting out its back-off holds
    back nothing but later messages of the same incident on the same channel (so a
    ``cleared`` never arrives before its ``raised``). Among messages that are due,
    channels whose last attempt failed come last, so a dead endpoint's backlog does
    not delay a healthy channel.
    """

    def __init__(
        self,
        settings: NotifySettings,
        *,
        clock: Clock | None = None,
        wait: Callable[[float, threading.Event], bool] | None = None,
        random: Callable[[], float] = _random.random,
        on_result: Callable[[Delivery], None] | None = None,
        tz: tzinfo = UTC,
        deliver: Deliver | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        self.settings = settings
        self._outbox = outbox
        self._loaded = False
        self._clock = clock or SystemClock()
        # The back-off wait: returns early (True) when woken by send() or stop().
        self._wait = wait or self._clock.sleep
        self._random = random
        self._on_result = on_result
        self._tz = tz
        self._deliver: Deliver = deliver or (lambda n, ch: deliver_now(n, ch, tz=tz))
        # Every channel's secrets are scrubbed from every error: cheap, and sure.
        self._secrets = sorted(
            {s for ch in settings.channels.values() for s in channel_secrets(ch)},
            key=len,
            reverse=True,
        )
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._jobs: dict[int, _Job] = {}  # insertion order = age
        self._seq = 0
        self._in_flight: int | None = None
        # Last state accepted per (incident, channel): a repeat of it is a duplicate.
        self._last: OrderedDict[tuple[str, str], State] = OrderedDict()
        self._failing: set[str] = set()
        self._stats = NotifyStats()
        self._thread: threading.Thread | None = None

    # -- any thread ------------------------------------------------------------------------
    def send(self, n: Notification) -> None:
        """Queue ``n`` for its channels and return at once: no network, a short lock (and,
        with an outbox, one small insert per channel under it)."""
        names = n.channels or tuple(self.settings.channels)
        dropped: list[Delivery] = []
        gone: list[int | None] = []
        unknown: list[str] = []
        with self._lock:
            now = self._clock.monotonic()
            for ch in names:
                if ch not in self.settings.channels:
                    self._stats.unknown_channel += 1
                    unknown.append(ch)
                    continue
                key = (n.incident, ch)
                if self._last.get(key) == n.state:
                    self._stats.deduped += 1
                    continue
                self._last[key] = n.state
                self._last.move_to_end(key)
                while len(self._last) > self.settings.dedupe_window:
                    self._last.popitem(last=False)
                self._seq += 1
                # On disk before the worker can see it (a short insert, under the lock).
                row = self._save(n, ch)
                self._jobs[self._seq] = _Job(n, ch, self._seq, due=now, row=row)
                if len(self._jobs) > self.settings.queue_max:
                    old = next(s for s in self._jobs if s != self._in_flight)
                    job = self._jobs.pop(old)
                    self._forget(job)
                    self._stats.dropped += 1
                    dropped.append(self._result(job, "dropped", "queue full"))
                    gone.append(job.row)
        self._wake.set()
        for r in gone:
            self._unsave(r)
        for ch in unknown:
            log.warning("notification %s names unknown channel %r", n.incident, ch)
        for d in dropped:
            log.warning("notify queue full: dropped %s (%s) for %s", d.incident, d.state, d.channel)
            self._report(d)

    @property
    def stats(self) -> NotifyStats:
        with self._lock:
            return replace(self._stats)

    @property
    def pending(self) -> int:
        """Messages not yet delivered nor given up (including the one being tried)."""
        with self._lock:
            return len(self._jobs)

    # -- lifecycle (main thread) ---------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        if not self._loaded:
            self._loaded = True
            self._reload()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="notify", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker. The back-off wait wakes at once; an attempt in progress may
        take up to its channel's timeout, and then the thread is left behind (daemon)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("notify worker still busy with an attempt after %.1f s", timeout)
        left = self.pending
        if left:
            kept = " (kept on disk for the next start)" if self._outbox is not None else ""
            log.warning("notify stopped with %d message(s) undelivered%s", left, kept)

    # -- worker thread ---------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()  # before looking: a send() from now on wakes the wait below
            if self._stopping.is_set():  # stop() may have set the wake just cleared
                break
            with self._lock:
                job, wait_s = self._pick(self._clock.monotonic())
            if job is None:
                if wait_s is None:
                    self._wake.wait()
                else:
                    self._wait(wait_s, self._wake)
                continue
            try:
                self._attempt(job)
            except Exception as e:  # never let the worker die (nor loop on one message)
                with self._lock:
                    self._in_flight = None
                    if self._jobs.pop(job.seq, None) is not None:
                        self._forget(job)
                    self._stats.internal_errors += 1
                    self._stats.last_error = f"internal: {type(e).__name__}"
                log.exception("notify worker failed on %s", job.n.incident)
                self._unsave(job.row)

    def _pick(self, now: float) -> tuple[_Job | None, float | None]:
        best: _Job | None = None
        best_rank: tuple[bool, float, int] | None = None
        soonest: float | None = None
        heads: set[tuple[str, str]] = set()
        for job in self._jobs.values():  # oldest first
            key = (job.n.incident, job.channel)
            if key in heads:
                continue  # an older message of this incident on this channel goes first
            heads.add(key)
            if job.due > now:
                soonest = job.due if soonest is None else min(soonest, job.due)
                continue
            rank = (job.channel in self._failing, job.due, job.seq)
            if best_rank is None or rank < best_rank:
                best, best_rank = job, rank
        if best is not None:
            self._in_flight = best.seq
            return best, None
        return None, None if soonest is None else max(0.0, soonest - now)

    def _attempt(self, job: _Job) -> None:
        channel = self.settings.channels[job.channel]
        job.attempts += 1
        err: DeliveryError | None = None
        try:
            self._deliver(job.n, channel)
        except DeliveryError as e:
            err = e
        except Exception as e:  # a library surprise: treated as a passing fault
            err = DeliveryError(f"{type(e).__name__}: {e}")
        reason = scrub(err.reason, self._secrets) if err else None
        with self._lock:
            self._in_flight = None
            if err is None:
                self._jobs.pop(job.seq, None)
                self._failing.discard(job.channel)
                self._stats.sent += 1
                result = self._result(job, "sent")
            elif err.permanent or job.attempts >= self.settings.max_attempts:
                self._jobs.pop(job.seq, None)
                self._forget(job)
                if not err.permanent:
                    self._failing.add(job.channel)
                self._stats.failed += 1
                self._stats.last_error = f"{job.channel}: {reason}"
                result = self._result(job, "failed", reason)
            else:
                if err.retry_after is not None:
                    delay = min(max(0.0, err.retry_after), RETRY_AFTER_MAX_S)
                else:
                    delay = self.backoff(job.attempts)
                job.due = self._clock.monotonic() + delay
                self._failing.add(job.channel)
                self._stats.retried += 1
                self._stats.last_error = f"{job.channel}: {reason}"
                result = self._result(job, "retry", reason, delay)
        if result.outcome == "retry":
            self._saved_attempts(job)
        else:
            self._unsave(job.row)
        if result.outcome == "sent":
            log.info("notified %s via %s (%s)", job.n.incident, job.channel, job.n.state)
        elif result.outcome == "retry":
            log.warning(
                "notify %s via %s failed (attempt %d): %s; again in %.0f s",
                job.n.incident,
                job.channel,
                job.attempts,
                reason,
                result.retry_in_s,
            )
        else:
            log.error(
                "notify %s via %s given up after %d attempt(s): %s",
                job.n.incident,
                job.channel,
                job.attempts,
                reason,
            )
        self._report(result)

    def backoff(self, attempts: int) -> float:
        """The wait after the ``attempts``-th failure: doubling from retry_initial_s up to
        retry_max_s, shortened by up to JITTER at random."""
        s = self.settings
        base = min(s.retry_max_s, s.retry_initial_s * 2.0 ** min(attempts - 1, 60))
        return base * (1.0 - JITTER * self._random())

    # -- the outbox on disk: its faults are logged, the message stays queued in memory ----------
    def _save(self, n: Notification, channel: str) -> int | None:
        if self._outbox is None:
            return None
        try:
            return self._outbox.add(n, channel, self._clock.now().timestamp())
        except Exception:
            log.exception("notify outbox: could not save %s; it is queued in memory", n.incident)
            return None

    def _unsave(self, row: int | None) -> None:
        if self._outbox is not None and row is not None:
            try:
                self._outbox.remove(row)
            except Exception:
                log.exception("notify outbox: could not delete row %d", row)

    def _saved_attempts(self, job: _Job) -> None:
        if self._outbox is not None and job.row is not None:
            try:
                self._outbox.attempted(job.row, job.attempts)
            except Exception:
                log.exception("notify outbox: could not update row %d", job.row)

    def _reload(self) -> None:
        """At the first start: what the last run left undelivered, oldest first."""
        if self._outbox is None:
            return
        try:
            saved = self._outbox.load()
        except Exception:
            log.exception("notify outbox: could not read what the last run left")
            return
        stale: list[int] = []
        with self._lock:
            now = self._clock.monotonic()
            for row, channel, n, attempts in saved:
                if channel not in self.settings.channels:
                    stale.append(row)  # a channel since removed from the settings
                    continue
                self._seq += 1
                self._jobs[self._seq] = _Job(n, channel, self._seq, now, attempts, row)
                self._last[(n.incident, channel)] = n.state
        for row in stale:
            self._unsave(row)
        if saved:
            log.info("notify: %d message(s) from the last run to deliver", len(saved) - len(stale))

    # -- helpers (lock held where noted) ------------------------------------------------------
    def _forget(self, job: _Job) -> None:
        """Lock held. A message given up or dropped may be sent again later."""
        key = (job.n.incident, job.channel)
        if self._last.get(key) == job.n.state:
            del self._last[key]

    @staticmethod
    def _result(
        job: _Job, outcome: Outcome, error: str | None = None, retry_in: float | None = None
    ) -> Delivery:
        return Delivery(
            job.n.incident, job.n.state, job.channel, outcome, job.attempts, error, retry_in
        )

    def _report(self, d: Delivery) -> None:
        if self._on_result is None:
            return
        try:
            self._on_result(d)
        except Exception:
            log.exception("notify on_result callback failed")
