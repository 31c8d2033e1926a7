"""Notification settings: the channels (webhook, e-mail, Telegram, SMS) and who hears what.

A leaf of the settings: ``hub/settings.py`` nests :class:`NotifySettings` under
``[notify]``, so this module imports nothing of the hub (no cycle through the notifier).

Secrets (tokens, passwords, header values, webhook paths) never appear in a repr or a
validation error.
"""

from __future__ import annotations

import configparser
import re
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

_NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"
#: What a secret is replaced with wherever it would show.
MASK = "***"


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
    rest = "/" + MASK if (parts.path not in ("", "/") or parts.query) else ""
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
        yield "headers", {k: MASK for k in self.headers}
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


# Vietnamese mobile numbers: 0 or +84 (or 84), then 9 digits starting 3, 5, 7, 8 or 9.
_VN_MOBILE = re.compile(r"(?:\+?84|0)([35789]\d{8})")
_PHONE_SEPARATORS = re.compile(r"[\s.\-()]")


def normalise_phone(value: str) -> str:
    """A Vietnamese mobile number as ``+84xxxxxxxxx``; ValueError with what to write."""
    cleaned = _PHONE_SEPARATORS.sub("", value.strip())
    m = _VN_MOBILE.fullmatch(cleaned)
    if m is None:
        raise ValueError(
            "is not a Vietnamese mobile number: write 0xxxxxxxxx (10 digits) or +84xxxxxxxxx"
        )
    return "+84" + m.group(1)


#: The folders of gammu-smsd's ``files`` backend, by the key its config file names them.
SMSD_FOLDERS = {
    "outbox": "outboxpath",
    "sent": "sentsmspath",
    "error": "errorsmspath",
    "inbox": "inboxpath",
}


AlertSeverity = Literal["warning", "critical"]


def _critical_only() -> list[AlertSeverity]:
    return ["critical"]


class SmsChannel(_Model):
    kind: Literal["sms"] = Field(
        description="Text messages through a USB GSM modem: gammu-smsd (its files backend) "
        "sends what the hub puts in its outbox with gammu-smsd-inject."
    )
    smsd_config: Path = Field(
        description="gammu-smsd's config file (e.g. /etc/gammu-smsdrc): its [gammu] section "
        "names the modem, its [smsd] section must say service = files and the folders."
    )
    inject_command: str = Field(
        "gammu-smsd-inject", min_length=1, description="The program that queues a message."
    )
    outbox_dir: Path | None = Field(
        None, description="gammu-smsd's outbox folder; default its config's outboxpath."
    )
    sent_dir: Path | None = Field(
        None, description="Where gammu-smsd moves what it sent; default its sentsmspath."
    )
    error_dir: Path | None = Field(
        None, description="Where gammu-smsd moves what failed; default its errorsmspath."
    )
    inbox_dir: Path | None = Field(
        None, description="Where gammu-smsd keeps delivery reports; default its inboxpath."
    )
    parts: Literal["unicode", "unaccented"] = Field(
        "unicode",
        description="unicode: Vietnamese as written, in 67-character parts of one long "
        "message; unaccented: diacritics removed (đ -> d), sent as separate 160-character "
        "GSM-7 messages that every old phone shows (a third of the cost).",
    )
    max_parts: int = Field(
        4, ge=1, le=10, description="Parts per message at most; a longer text is cut (…)."
    )
    numbers: list[str] = Field(
        default_factory=list,
        description="Technicians' phones for the alerts the rules send here (0xxxxxxxxx or "
        "+84xxxxxxxxx).",
    )
    severities: list[AlertSeverity] = Field(
        default_factory=_critical_only,
        description="Which rule alerts go out by SMS (each one costs money).",
    )
    households: bool = Field(
        True,
        description="Emergency announcements go to the opted-in household phones of their "
        "zones through this channel.",
    )
    per_number_per_hour: int = Field(
        6, ge=1, le=100, description="Messages to one phone per hour at most."
    )
    per_hour: int = Field(
        300, ge=1, le=10_000, description="Messages through the modem per hour at most."
    )
    dedupe_s: float = Field(
        3600.0, ge=0, description="The same text to the same phone is sent once in this time."
    )
    delivery_reports: bool = Field(
        True, description="Ask the network for delivery reports (set DeliveryReport = sms)."
    )
    send_timeout_s: float = Field(
        600.0,
        gt=0,
        description="A message gammu-smsd has not sent in this time is logged failed and "
        "taken out of its outbox (modem unplugged, no network, gammu-smsd stopped).",
    )
    poll_s: float = Field(
        5.0, gt=0, le=300, description="How often the hub looks at gammu-smsd's folders."
    )

    @field_validator("numbers")
    @classmethod
    def _numbers(cls, v: list[str]) -> list[str]:
        out: list[str] = []
        for i, number in enumerate(v):
            try:
                phone = normalise_phone(number)
            except ValueError as e:
                raise ValueError(f"numbers[{i}] {e}") from None
            if phone not in out:
                out.append(phone)
        return out

    def folders(self) -> dict[str, Path]:
        """outbox, sent, error, inbox: as set here, else as gammu-smsd's config names them.
        ValueError names the file, the key and what is wrong."""
        given = {
            "outbox": self.outbox_dir,
            "sent": self.sent_dir,
            "error": self.error_dir,
            "inbox": self.inbox_dir,
        }
        parser: configparser.ConfigParser | None = None
        if any(p is None for p in given.values()):
            parser = configparser.ConfigParser(interpolation=None, strict=False)
            try:
                with self.smsd_config.open(encoding="utf-8") as f:
                    parser.read_file(f)
            except (OSError, UnicodeDecodeError, configparser.Error) as e:
                raise ValueError(f"smsd_config: cannot read {self.smsd_config}: {e}") from None
        out: dict[str, Path] = {}
        for name, path in given.items():
            if path is None:
                assert parser is not None
                key = SMSD_FOLDERS[name]
                value = parser.get("smsd", key, fallback="").strip()
                if not value:
                    raise ValueError(
                        f"smsd_config: {self.smsd_config} has no {key} in [smsd] "
                        f"(or set {name}_dir)"
                    )
                path = Path(value)
            out[name] = path
        return out

    @model_validator(mode="after")
    def _check_folders(self) -> SmsChannel:
        self.folders()
        return self


AnyChannel = WebhookChannel | EmailChannel | TelegramChannel | SmsChannel
Channel = Annotated[AnyChannel, Field(discriminator="kind")]


class NotifySettings(_Model):
    channels: dict[str, Channel] = Field(
        default_factory=dict,
        description="Notification channels by name (rules name them), each with its kind: "
        "webhook, email, telegram or sms.",
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
