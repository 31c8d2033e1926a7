"""SMS: emergencies and critical alerts by text message, through a USB GSM modem, when the
Internet (and with it webhooks, e-mail and Telegram) is down.

Its place in the flow: :class:`EmergencySms` turns an emergency broadcast (the playout's
``PlayoutStateChanged`` "playing", or its ``BroadcastLogged`` when it failed before a word
was heard) into a :class:`Notification` for the SMS channels; the rules send critical
alerts to an SMS channel as to any other. The notifier's worker hands each to
:meth:`SmsGateway.deliver`, which picks the phones (the channel's technicians, or the
opted-in households of the broadcast's zones), holds back repeats and what is over the
rate limits, shapes the text (``hub/automation/sms_text.py``) and queues it for
gammu-smsd. The gateway's own thread ("sms-status") follows every message through
gammu-smsd's folders (sent, error) and the network's delivery reports (inbox) into
``sms_log``.

Why gammu-smsd's ``files`` backend and its ``gammu-smsd-inject``, not python-gammu:
python-gammu has no wheel (it needs libgammu-dev and a C compiler on the Pi) and Debian's
python3-gammu does not reach the hub's venv; gammu-smsd is Debian's packaged, supervised
daemon that owns the modem (PIN, reconnects, multipart), and its folders are a queue that
survives a restart of either side. The hub encodes each message with gammu's own encoder
(gammu-smsd-inject, into a staging folder inside the outbox that gammu-smsd ignores) and
then renames it into the outbox under a name of its own: gammu-smsd never reads a half
written file, and two messages never share a name.
"""

from __future__ import annotations

import configparser
import contextlib
import hashlib
import logging
import os
import re
import sqlite3
import subprocess
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Any, Protocol

from hub.automation.channels import DeliveryError
from hub.automation.notification import Notification, label
from hub.automation.notify_settings import NotifySettings, SmsChannel
from hub.automation.sms_text import (
    GSM7_SINGLE,
    fit_unicode,
    gsm7_chunks,
    unaccented,
    unicode_parts,
)
from hub.clock import Clock
from hub.events import BroadcastLogged, PlayoutStateChanged
from hub.store import Store
from hub.store import households as household_rows
from hub.store.outbox import SmsLog


class Sends(Protocol):
    """What the emergency relay needs of the notifier (hub/automation/notify.py imports
    this module for the gateway, so not the notifier itself)."""

    def send(self, n: Notification) -> None: ...


log = logging.getLogger(__name__)

#: The notification data that marks an emergency for the households.
AUDIENCE_HOUSEHOLDS = "households"
#: gammu-smsd-inject's answer: "Written message with ID /path/OUTC..._sms0.smsbackup".
_WRITTEN = re.compile(r"Written message with ID (\S+)")
#: Seconds one gammu-smsd-inject may take (it only encodes and writes a file).
INJECT_TIMEOUT_S = 30.0
STAGING = ".langso-staging"


def digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def sms_words(n: Notification) -> str:
    """What the phone shows: an emergency's own words; an alert's label, title and body."""
    if n.data.get("audience") == AUDIENCE_HOUSEHOLDS:
        return n.body
    return f"{label(n)}: {n.title}. {n.body}".strip()


class SmsGateway:
    """SMS channels' sender and their log. ``deliver`` runs in the notifier's worker; the
    status thread ("sms-status") is started and stopped with the notifier."""

    def __init__(
        self,
        settings: NotifySettings,
        store: Store,
        *,
        clock: Clock,
        tz: tzinfo = UTC,
        run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
    ) -> None:
        self.settings = settings
        self.store = store
        self.log = SmsLog(store)
        self.clock = clock
        self.tz = tz
        self._run = run
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._staging: dict[str, Path] = {}  # channel -> the inject config written for it

    @property
    def channels(self) -> dict[str, SmsChannel]:
        return {k: v for k, v in self.settings.channels.items() if isinstance(v, SmsChannel)}

    # -- the notifier's worker -------------------------------------------------------------
    def deliver(self, n: Notification, name: str, ch: SmsChannel) -> None:
        """Queue ``n`` for each of its phones. Raises :class:`DeliveryError` (to be retried)
        when gammu-smsd-inject failed for some: the others are not sent twice."""
        if n.data.get("audience") == AUDIENCE_HOUSEHOLDS:
            if not ch.households:
                return
            zones = n.data.get("zones")
            wanted = None if not isinstance(zones, list | tuple) or "all" in zones else zones
            phones = household_rows.phones_in(self.store.connection(), wanted)
        else:
            if n.severity not in ch.severities:
                return  # each SMS costs money: only the severities the channel names
            phones = list(ch.numbers)
        text = sms_words(n)
        errors: list[str] = []
        for phone in phones:
            reason = self._send_one(n, name, ch, phone, text)
            if reason is not None:
                errors.append(reason)
        if errors:
            raise DeliveryError(
                f"{len(errors)} of {len(phones)} SMS not queued: {errors[0]}",
                permanent=len(errors) == len(phones) and "not found" in errors[0],
            )

    def _send_one(
        self, n: Notification, name: str, ch: SmsChannel, phone: str, text: str
    ) -> str | None:
        now = self.clock.now().timestamp()
        if ch.parts == "unicode":
            shaped = [fit_unicode(text, ch.max_parts)]
            parts = unicode_parts(shaped[0])
        else:
            shaped = gsm7_chunks(unaccented(text), ch.max_parts)
            parts = len(shaped)
        body = "\n".join(shaped)
        key = digest(body)
        row: dict[str, Any] = {
            "at": now, "channel": name, "phone": phone, "incident": n.incident,
            "digest": key, "text": body, "parts": parts,
        }  # fmt: skip
        if self.log.has(n.incident, phone):
            return None  # a retry of this message: this phone has it
        if ch.dedupe_s and self.log.duplicate(phone, key, now - ch.dedupe_s):
            self.log.add(**row, files=[], status="duplicate", detail="same text sent lately")
            return None
        if self.log.sent_since(now - 3600, phone) >= ch.per_number_per_hour:
            detail = f"over {ch.per_number_per_hour} messages an hour to this phone"
            self.log.add(**row, files=[], status="limited", detail=detail)
            log.warning("SMS to %s held back: %s", phone, detail)
            return None
        if self.log.sent_since(now - 3600) >= ch.per_hour:
            detail = f"over {ch.per_hour} messages an hour through the modem"
            self.log.add(**row, files=[], status="limited", detail=detail)
            log.warning("SMS to %s held back: %s", phone, detail)
            return None
        try:
            files = [
                self._inject(name, ch, phone, chunk, i, urgent=n.severity == "emergency")
                for i, chunk in enumerate(shaped)
            ]
        except DeliveryError as e:
            self.log.add(**row, files=[], status="failed", detail=e.reason)
            return e.reason
        self.log.add(**row, files=files, status="queued")
        return None

    def _inject(
        self, name: str, ch: SmsChannel, phone: str, text: str, part: int, *, urgent: bool
    ) -> str:
        """One message into gammu-smsd's outbox; returns its file name there."""
        folders = self._folders(ch)
        config = self._staging_config(name, ch, folders)
        args = [ch.inject_command, "-c", str(config), "TEXT", phone]
        if ch.parts == "unicode":
            args += ["-unicode", "-len", str(max(1, len(text) * 2))]
        else:
            args += ["-len", str(GSM7_SINGLE)]
        if ch.delivery_reports:
            args.append("-report")
        args += ["-text", text]
        try:
            done = self._run(
                args, capture_output=True, text=True, timeout=INJECT_TIMEOUT_S, check=False
            )
        except FileNotFoundError:
            raise DeliveryError(
                f"{ch.inject_command} not found: install Debian's gammu-smsd", permanent=True
            ) from None
        except (OSError, subprocess.TimeoutExpired) as e:
            raise DeliveryError(f"{ch.inject_command} failed: {e}") from None
        m = _WRITTEN.search(done.stdout or "")
        if done.returncode != 0 or m is None:
            said = (done.stderr or done.stdout or "").strip().splitlines()
            raise DeliveryError(
                f"{ch.inject_command} exited {done.returncode}: {said[-1][:200] if said else ''}"
            )
        staged = Path(m.group(1))
        # OUT<priority><date>_<time>_<serial>_<number>_<note>: gammu-smsd sends the outbox in
        # name order, so priority A (emergencies) goes before B (alerts).
        stamp = self.clock.now().astimezone(self.tz).strftime("%Y%m%d_%H%M%S")
        final = f"OUT{'A' if urgent else 'B'}{stamp}_00_{phone}_hub{uuid.uuid4().hex[:12]}"
        final += f"p{part:02d}.smsbackup"
        try:
            os.replace(staged, folders["outbox"] / final)
        except OSError as e:
            raise DeliveryError(f"cannot move the message into gammu-smsd's outbox: {e}") from None
        return final

    def _folders(self, ch: SmsChannel) -> dict[str, Path]:
        try:
            return ch.folders()
        except ValueError as e:
            raise DeliveryError(str(e), permanent=True) from None

    def _staging_config(self, name: str, ch: SmsChannel, folders: Mapping[str, Path]) -> Path:
        """gammu-smsd's config with the outbox pointed at a hidden folder inside it (which
        gammu-smsd skips), so that gammu-smsd-inject writes where only the hub reads."""
        staging = folders["outbox"] / STAGING
        config = staging / f"{name}.smsdrc"
        if name in self._staging and config.exists():
            return config
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            with ch.smsd_config.open(encoding="utf-8") as f:
                parser.read_file(f)
            staging.mkdir(mode=0o750, exist_ok=True)
            if not parser.has_section("smsd"):
                raise DeliveryError(f"{ch.smsd_config}: no [smsd] section", permanent=True)
            parser.set("smsd", "outboxpath", f"{staging}/")
            parser.set("smsd", "outboxformat", "detail")
            parser.set("smsd", "logfile", os.devnull)  # inject's notes: not gammu-smsd's log
            for key, folder in (("sentsmspath", "sent"), ("errorsmspath", "error")):
                parser.set("smsd", key, f"{folders[folder]}/")
            with config.open("w", encoding="utf-8") as f:
                parser.write(f)
        except (OSError, configparser.Error) as e:
            raise DeliveryError(f"cannot prepare {config}: {e}") from None
        self._staging[name] = config
        return config

    # -- the status thread -------------------------------------------------------------------
    def start(self) -> None:
        if not self.channels or (self._thread is not None and self._thread.is_alive()):
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="sms-status", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        every = min(ch.poll_s for ch in self.channels.values())
        while not self.clock.sleep(every, self._stop):
            try:
                self.poll()
            except Exception:  # a full disk, a folder gone: said, and tried again next time
                log.exception("SMS status check failed")

    def poll(self) -> None:
        """Move each queued message on by where gammu-smsd put it; read delivery reports."""
        now = self.clock.now().timestamp()
        for name, ch in self.channels.items():
            try:
                folders = ch.folders()
            except ValueError as e:
                log.error("SMS channel %s: %s", name, e)
                continue
            for row in self.log.in_state("queued"):
                if row["channel"] == name:
                    self._follow(row, ch, folders, now)
            self._reports(name, folders, now)

    def _follow(
        self, row: Mapping[str, Any], ch: SmsChannel, folders: Mapping[str, Path], now: float
    ) -> None:
        files: Sequence[str] = row["files"]
        if any((folders["error"] / f).exists() for f in files):
            self.log.set_status(
                row["id"], "failed", at=now, detail="gammu-smsd could not send it (error folder)"
            )
            log.error("SMS %d to %s failed in gammu-smsd", row["id"], row["phone"])
        elif all((folders["sent"] / f).exists() for f in files):
            self.log.set_status(row["id"], "sent", at=now)
        elif now - row["at"] > ch.send_timeout_s:
            # Out of the outbox, so that it does not go out hours late after the fault.
            for f in files:
                with contextlib.suppress(OSError):  # gammu-smsd took it meanwhile, or gone
                    os.replace(folders["outbox"] / f, folders["error"] / f)
            detail = (
                f"not sent within {ch.send_timeout_s:.0f} s: is the modem plugged in, "
                "with signal, and gammu-smsd running?"
            )
            self.log.set_status(row["id"], "failed", at=now, detail=detail)
            log.error("SMS %d to %s: %s", row["id"], row["phone"], detail)

    def _reports(self, name: str, folders: Mapping[str, Path], now: float) -> None:
        """gammu-smsd (DeliveryReport = sms, InboxFormat = detail) stores each report in its
        inbox as a received message with ``PDU = Status_Report``: matched to the oldest
        message to that phone still waiting for one, then removed from the inbox."""
        try:
            names = sorted(p.name for p in folders["inbox"].iterdir() if p.name.startswith("IN"))
        except OSError:
            return
        for file in names[:500]:
            path = folders["inbox"] / file
            try:
                content = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            report = parse_report(content)
            if report is None:
                continue  # a resident's reply: not the hub's to touch
            phone, state = report
            if state == "Pending":
                continue  # the network is still trying: wait for the final report
            row = self.log.awaiting_report(phone, now)
            if row is not None and row["channel"] == name:
                status = "delivered" if state == "Delivered" else "undelivered"
                self.log.set_status(row["id"], status, at=now, detail=f"report: {state}")
            with contextlib.suppress(OSError):
                path.unlink()


def parse_report(content: str) -> tuple[str, str] | None:
    """(phone, Delivered | Failed | Pending | Unknown) of a delivery report file in gammu's
    backup format; None for anything else."""
    fields: dict[str, str] = {}
    for line in content.splitlines():
        key, sep, value = line.partition(" = ")
        if sep and not line.startswith(";"):
            fields.setdefault(key.strip(), value.strip())
    if fields.get("PDU") != "Status_Report":
        return None
    phone = fields.get("Number", "").strip('"')
    try:
        state = bytes.fromhex(fields.get("Text00", "")).decode("utf-16-be")
    except ValueError:
        state = "Unknown"
    return (phone, state) if phone else None


class EmergencySms:
    """Subscribed to the playout's events: every emergency broadcast, once it starts (or
    fails), becomes one SMS notification for the households of its zones. Runs in the
    playout's thread and only reads one row and queues (the notifier sends)."""

    def __init__(
        self,
        settings: NotifySettings,
        notifier: Sends,
        lookup: Callable[[str], sqlite3.Row | Mapping[str, Any] | None],
        *,
        clock: Clock,
        village: str,
    ) -> None:
        self.channels = tuple(
            name
            for name, ch in settings.channels.items()
            if isinstance(ch, SmsChannel) and ch.households
        )
        self.notifier = notifier
        self.lookup = lookup
        self.clock = clock
        self.village = village

    def on_playout_state(self, ev: PlayoutStateChanged) -> None:
        s = ev.state
        if s.state == "playing" and s.priority == "emergency" and s.announcement_id:
            self.send(s.announcement_id, s.zones)

    def on_broadcast_logged(self, ev: BroadcastLogged) -> None:
        b = ev.broadcast
        # A broadcast that failed before it played: the loudspeakers said nothing, so the
        # phones matter all the more. (One that played was sent when it started.)
        if b.priority == "emergency" and b.status == "failed" and b.started_at is None:
            self.send(b.announcement_id, b.zones)

    def send(self, announcement_id: str, zones: Sequence[str]) -> None:
        if not self.channels:
            return
        row = self.lookup(announcement_id)
        if row is None:
            return
        title, text = str(row["title"] or ""), str(row["text"] or "")
        words = text if text.startswith(title) else f"{title}: {text}" if text else title
        body = f"KHẨN CẤP - {self.village}: {words}"
        self.notifier.send(
            Notification(
                # The same words of the same announcement go out once (a replay after a
                # restart included); new words are a new message.
                incident=f"emergency:{announcement_id}:{digest(body)}",
                title=title,
                body=body,
                severity="emergency",
                state="raised",
                at=self.clock.now(),
                data={
                    "audience": AUDIENCE_HOUSEHOLDS,
                    "zones": list(zones) or ["all"],
                    "announcement_id": announcement_id,
                },
                channels=self.channels,
            )
        )
