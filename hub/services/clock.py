"""Clock trust: is the hub's clock right? The scheduler, retention, health and the dashboard
ask here; the head's phone sets the clock through here.

A Pi has no battery-backed clock, and a village may have no internet. The clock is trusted
when, in this order:

- ``ntp``: the kernel says NTP synchronised it (adjtimex, :func:`hub.clock.clock_synced`);
- ``rtc``: a battery-backed RTC board (a DS3231 on the rtc-ds1307 driver) is there, its
  time is sane, and the system clock agrees with it (the kernel set it at boot,
  ``hctosys``, or Raspberry Pi OS's udev rule ran ``hwclock --hctosys``);
- ``phone``: the head set it from a phone during this boot (the boot id is kept with the
  mark, so it does not survive a reboot or a power cut).

fake-hwclock is the floor, never a source: its saved time, like the newest event the
store received, is a time a right clock is never behind; an RTC behind it is wrong.

Which threads: ``synced`` runs in the scheduler's thread (each tick), the writer's
(retention) and API workers (health, the pages); ``set_from_phone`` in an API worker.
Each reads through its own thread's connection.
"""

from __future__ import annotations

import logging
import math
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, Literal

from hub.clock import EARLIEST_SANE, LATEST_SANE, Clock, clock_synced, iso, sane_time
from hub.errors import Conflict, Forbidden, HubError, Invalid
from hub.services.clock_settings import ClockSettings
from hub.store import Store
from hub.store import clock as repo

log = logging.getLogger(__name__)

Source = Literal["ntp", "rtc", "phone", "none"]

#: A right clock may be this far behind the floor (the newest event's own clock, a
#: fake-hwclock saved a moment ahead) before it counts as known wrong.
FLOOR_SLACK_S = 120.0
#: fake-hwclock's file format (its own `date -u '+%Y-%m-%d %H:%M:%S'`).
FAKE_HWCLOCK_FORMAT = "%Y-%m-%d %H:%M:%S"


class ClockNotSettable(HubError, PermissionError):
    """The system refused to set the clock (no CAP_SYS_TIME): the API answers 503."""


@dataclass(frozen=True, slots=True)
class Rtc:
    """A real-time clock the kernel lists (``/sys/class/rtc/rtcN``)."""

    name: str  # rtc0
    chip: str  # "rtc-ds1307 1-0068", as its sysfs ``name`` says
    hctosys: bool  # the kernel set the system clock from it at boot
    time: float | None  # what it says now (``since_epoch``), None when unreadable

    @property
    def device(self) -> Path:
        return Path("/dev") / self.name


@dataclass(frozen=True, slots=True)
class ClockState:
    """What the hub knows about its clock, as health, GET /api/clock and the dashboard say."""

    source: Source
    now: datetime
    ntp: bool | None  # the kernel's word (None: cannot tell, or not asked)
    rtc: Rtc | None  # a trusted board's clock, trusted or not
    rtc_ok: bool
    phone_at: float | None  # set from a phone this boot: when (the new time)
    phone_by: str | None
    floor: float | None  # a right clock is never behind this
    can_set: bool
    why_not: str | None  # why the phone may not set it

    @property
    def synced(self) -> bool:
        return self.source != "none"

    @property
    def behind_floor(self) -> bool:
        return self.floor is not None and self.now.timestamp() < self.floor - FLOOR_SLACK_S

    @property
    def problem(self) -> str | None:
        """Why scheduled broadcasts wait, in words; None when the clock is trusted."""
        if self.synced:
            return None
        text = (
            "the clock is not trusted (no NTP, no RTC, not set from the head's phone since "
            "boot): scheduled broadcasts wait; the head can set it on the dashboard"
        )
        if self.behind_floor:
            text += f" (it is behind {iso(self.floor)}, a time it has already seen)"
        return text

    def brief(self) -> dict[str, Any]:
        """What the public health answer says: where the time comes from, and the time."""
        return {"source": self.source, "synced": self.synced, "now": iso(self.now)}

    def json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "synced": self.synced,
            "now": iso(self.now),
            "ntp": self.ntp,
            "rtc": (
                None
                if self.rtc is None
                else {
                    "name": self.rtc.name,
                    "chip": self.rtc.chip,
                    "hctosys": self.rtc.hctosys,
                    "time": iso(self.rtc.time),
                    "trusted": self.rtc_ok,
                }
            ),
            "phone_set_at": iso(self.phone_at),
            "phone_set_by": self.phone_by,
            "floor": iso(self.floor),
            "behind_floor": self.behind_floor,
            "can_set": self.can_set,
            "why_not": self.why_not,
        }


def set_system_clock(ts: float) -> None:
    """Set the system's wall clock (CAP_SYS_TIME, else PermissionError)."""
    time.clock_settime(time.CLOCK_REALTIME, ts)


def write_rtc(device: Path) -> None:
    """Copy the system clock into the RTC, in UTC, so the next boot starts right."""
    hwclock = shutil.which("hwclock") or "/usr/sbin/hwclock"
    subprocess.run(
        [hwclock, "--systohc", "--utc", "-f", str(device)],
        check=True,
        capture_output=True,
        timeout=15,
    )


class ClockTrust:
    """The one answer to "is the clock right?", and the phone's way to make it right."""

    def __init__(
        self,
        settings: ClockSettings,
        store: Store,
        clock: Clock,
        *,
        ntp: Callable[[], bool | None] = clock_synced,
        setter: Callable[[float], None] = set_system_clock,
        rtc_writer: Callable[[Path], None] = write_rtc,
    ) -> None:
        self.settings, self.store, self.clock = settings, store, clock
        self._ntp, self.setter, self.rtc_writer = ntp, setter, rtc_writer
        self._boot_id: str | None = None

    # -- reading ---------------------------------------------------------------------------
    def synced(self) -> bool:
        """Trusted now? What the scheduler (``clock_synced``, every turn) and retention ask.
        NTP first: when it answers yes, nothing else is read (no file, no query)."""
        if self.settings.ntp and self._ntp():
            return True
        return self.state().synced

    def state(self) -> ClockState:
        s = self.settings
        now = self.clock.now()
        ntp = self._ntp() if s.ntp else None
        floor = self._floor()
        rtc = self.rtc()
        rtc_ok = rtc is not None and self._rtc_vouches(rtc, now.timestamp(), floor)
        mark = self._phone_mark()
        source: Source = (
            "ntp" if ntp else "rtc" if rtc_ok else "phone" if mark is not None else "none"
        )
        why_not = (
            "setting the clock from a phone is switched off (clock.allow_phone_set = false)"
            if not s.allow_phone_set
            else "the clock is synchronised by NTP (internet time): it is right, and a phone "
            "may not change it"
            if ntp
            else None
        )
        return ClockState(
            source=source,
            now=now,
            ntp=ntp,
            rtc=rtc,
            rtc_ok=rtc_ok,
            phone_at=float(mark["at"]) if mark else None,
            phone_by=str(mark.get("by")) if mark else None,
            floor=floor,
            can_set=why_not is None,
            why_not=why_not,
        )

    def rtc(self) -> Rtc | None:
        """The first RTC of a trusted chip (``clock.rtc_chips``) the kernel lists; the one
        that set the clock at boot first."""
        root = self.settings.rtc_sysfs
        try:
            names = sorted(p.name for p in root.iterdir() if p.name.startswith("rtc"))
        except OSError:
            return None
        found = []
        for name in names:
            d = root / name
            chip = _read(d / "name")
            if chip is None or not any(c in chip for c in self.settings.rtc_chips):
                continue
            epoch = _read(d / "since_epoch")
            found.append(
                Rtc(
                    name=name,
                    chip=chip,
                    hctosys=_read(d / "hctosys") == "1",
                    time=float(epoch) if epoch and epoch.isdigit() else None,
                )
            )
        found.sort(key=lambda r: not r.hctosys)
        return found[0] if found else None

    def _rtc_vouches(self, rtc: Rtc, now: float, floor: float | None) -> bool:
        # A board whose battery died reads 2000-01-01 (or nothing): sane, not behind what
        # the hub has already seen, and the system clock agreeing with it.
        t = rtc.time
        return (
            t is not None
            and sane_time(t)
            and (floor is None or t >= floor - FLOOR_SLACK_S)
            and abs(t - now) <= self.settings.rtc_agree_s
        )

    def _floor(self) -> float | None:
        known = [t for t in (self._fake_hwclock(), self._newest_event()) if t is not None]
        return max(known, default=None)

    def _fake_hwclock(self) -> float | None:
        text = _read(self.settings.fake_hwclock_file)
        if not text:
            return None
        try:
            at = datetime.strptime(text, FAKE_HWCLOCK_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            return None
        return at.timestamp()

    def _newest_event(self) -> float | None:
        try:
            newest = repo.newest_event(self.store.connection())
        except sqlite3.Error:
            return None  # the scheduler asks every tick: a bad read never stops a broadcast
        # A clock that once ran ahead (a jump to 2036) stored events ahead: no floor.
        return newest if newest is not None and newest < LATEST_SANE else None

    def boot_id(self) -> str | None:
        if self._boot_id is None:
            self._boot_id = _read(self.settings.boot_id_file) or None
        return self._boot_id

    def _phone_mark(self) -> dict[str, Any] | None:
        """The phone's setting, when it was made during this boot."""
        boot = self.boot_id()
        try:
            mark = repo.phone_mark(self.store.connection())
        except sqlite3.Error:
            return None
        if boot is None or mark is None or mark.get("boot_id") != boot:
            return None
        return mark if isinstance(mark.get("at"), int | float) else None

    # -- setting from the head's phone -------------------------------------------------------
    def set_from_phone(self, phone_time: float, *, actor: str) -> ClockState:
        """Set the system clock (and the RTC, fake-hwclock's file) to the phone's time;
        audited. :class:`Forbidden` when switched off, :class:`Conflict` while NTP keeps the
        clock, :class:`Invalid` for an absurd time, :class:`ClockNotSettable` on EPERM."""
        state = self.state()
        if not self.settings.allow_phone_set:
            raise Forbidden(state.why_not or "setting the clock is switched off")
        if state.ntp:
            raise Conflict(state.why_not or "the clock is synchronised by NTP")
        if not sane_time(phone_time):
            raise Invalid(
                f"phone_time: {_when(phone_time)} is not a time this hub can have (between "
                f"{iso(EARLIEST_SANE)} and {iso(LATEST_SANE)}): check the phone's date and year"
            )
        old = self.clock.now()
        try:
            self.setter(phone_time)
        except PermissionError as e:
            raise ClockNotSettable(
                f"the hub may not set the clock (no CAP_SYS_TIME): {e.strerror or e}"
            ) from None
        except OSError as e:
            raise ClockNotSettable(f"the system refused the new time: {e.strerror or e}") from None
        rtc = state.rtc
        rtc_written = rtc is not None and self._write_rtc(rtc)
        saved = self._save_fake_hwclock(phone_time)
        new = self.clock.now().timestamp()
        detail = {
            "old": iso(old),
            "new": iso(phone_time),
            "rtc": rtc.name if rtc_written and rtc else None,
            "fake_hwclock": saved,
        }
        mark = {"boot_id": self.boot_id(), "at": phone_time, "by": actor}
        with self.store.transaction() as conn:
            repo.save_phone_mark(conn, mark)
            self.store.audit(
                conn, ts=new, actor=actor, action="clock.set", target="clock", detail=detail
            )
        log.warning("clock set from %s's phone: %s -> %s", actor, iso(old), iso(phone_time))
        return self.state()

    def _write_rtc(self, rtc: Rtc) -> bool:
        try:
            self.rtc_writer(rtc.device)
        except (OSError, subprocess.SubprocessError) as e:
            # The system clock is set; the next boot without internet starts wrong again.
            log.error("could not write the RTC %s (%s): %s", rtc.name, rtc.device, e)
            return False
        return True

    def _save_fake_hwclock(self, ts: float) -> bool:
        f = self.settings.fake_hwclock_file
        if not f.exists():
            return False  # fake-hwclock is not installed
        text = datetime.fromtimestamp(ts, UTC).strftime(FAKE_HWCLOCK_FORMAT) + "\n"
        try:
            f.write_text(text, encoding="ascii")
        except OSError as e:
            log.warning("could not save %s: %s", f, e)
            return False
        return True


def phone_seconds(value: int | float | str, tz: tzinfo) -> float:
    """Epoch milliseconds or ISO 8601 -> epoch seconds; :class:`Invalid` (422) otherwise."""
    try:
        return _seconds(value, tz)
    except Invalid:
        raise
    except (OverflowError, ValueError):  # 1e400 ms, year 99999
        raise Invalid("phone_time: out of range") from None


def _seconds(value: int | float | str, tz: tzinfo) -> float:
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text) / 1000
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise Invalid(
                "phone_time: not a time: give epoch milliseconds or ISO 8601 like "
                "2026-12-01T19:30:00+07:00"
            ) from None
        return (dt if dt.tzinfo else dt.replace(tzinfo=tz)).timestamp()
    seconds = value / 1000
    if not math.isfinite(seconds):
        raise Invalid("phone_time: not a number")
    return float(seconds)


def _when(ts: float) -> str:
    try:
        return iso(ts) or repr(ts)
    except (OverflowError, OSError, ValueError):
        return repr(ts)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
