"""Channels: one attempt to deliver a notification by webhook, e-mail or Telegram (SMS goes
through :class:`hub.automation.sms.SmsGateway`, which keeps a log and limits per phone).

Its place in the flow: the notifier's worker thread (``hub/automation/notify.py``) calls
:func:`deliver_now` for each queued message and judges the :class:`DeliveryError` it may
raise: ``permanent`` when trying again cannot help, ``retry_after`` when the server said how
long to wait. Nothing here queues, retries or sleeps; a test may call it in its own thread.

Secrets (tokens, passwords, header values, webhook paths) are scrubbed from every reason
with :func:`scrub` before it reaches a log line or a stats field.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from datetime import UTC, tzinfo
from email.message import EmailMessage
from email.utils import format_datetime
from http.client import HTTPException, HTTPMessage
from typing import IO, TYPE_CHECKING, Any

from hub import __version__
from hub.automation.notification import (
    Notification,
    json_default,
    label,
    render_text,
    webhook_json,
)
from hub.automation.notify_settings import (
    MASK,
    AnyChannel,
    EmailChannel,
    SmsChannel,
    TelegramChannel,
    WebhookChannel,
)
from hub.errors import HubError

if TYPE_CHECKING:
    import smtplib

log = logging.getLogger(__name__)

#: Telegram refuses longer texts (Bot API, sendMessage: 1-4096 characters).
TELEGRAM_TEXT_MAX = 4096


class DeliveryError(HubError, RuntimeError):
    """One attempt failed. ``permanent``: trying again cannot help (fix the settings)."""

    def __init__(
        self, reason: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after


# -- the forms a channel sends ----------------------------------------------------------------
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
    msg["Subject"] = f"[{label(n)}] {_one_line(n.title)}"
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


# -- HTTP ---------------------------------------------------------------------------------------
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
    body = json.dumps(payload, ensure_ascii=False, default=json_default).encode("utf-8")
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


# -- SMTP ---------------------------------------------------------------------------------------
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
    # smtplib is imported at the first mail sent, not at start-up (the notifier starts with
    # the hub): a hub without an e-mail channel never needs it (about 0.1 MB).
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


# -- one attempt ------------------------------------------------------------------------------
def deliver_now(n: Notification, channel: AnyChannel, *, tz: tzinfo = UTC) -> None:
    """One attempt, in this thread. Raises :class:`DeliveryError` (``permanent`` when a
    retry cannot help, ``retry_after`` when the server said how long to wait)."""
    if isinstance(channel, WebhookChannel):
        _send_webhook(n, channel)
    elif isinstance(channel, EmailChannel):
        _send_email(n, channel, tz)
    elif isinstance(channel, SmsChannel):
        # Stateful (its log, its limits, the modem's folders): the notifier routes SMS to
        # its gateway; reaching this means a notifier built without a database.
        raise DeliveryError("SMS needs the hub's database for its log and limits", permanent=True)
    else:
        _send_telegram(n, channel, tz)


def channel_secrets(channel: AnyChannel) -> list[str]:
    """Strings that must never reach a log line or a stats field. An SMS channel has none:
    phone numbers are not secrets, and the modem's PIN stays in gammu-smsd's own file."""
    out: list[str] = []
    if isinstance(channel, WebhookChannel):
        out += list(channel.headers.values())
        parts = urllib.parse.urlsplit(channel.url)
        out += [p for p in (parts.path, parts.query, parts.password or "") if len(p) > 1]
    elif isinstance(channel, EmailChannel):
        if channel.password is not None:
            out.append(channel.password.get_secret_value())
    elif isinstance(channel, TelegramChannel):
        out.append(channel.bot_token.get_secret_value())
    return [s for s in out if s]


def scrub(text: str, secrets: Iterable[str]) -> str:
    for s in sorted(secrets, key=len, reverse=True):
        text = text.replace(s, MASK)
    return text
