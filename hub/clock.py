"""Time as a parameter: every clock the hub reads comes through a Clock."""

from __future__ import annotations

import functools
import threading
import time
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Protocol

#: The year this release was made: a clock before it, or more than SANE_YEARS after it,
#: is wrong (retention refuses to delete by it; the head's phone may not set it).
BUILD_YEAR = 2026
SANE_YEARS = 20
#: The instants a clock may sanely say, as epoch seconds: [EARLIEST_SANE, LATEST_SANE).
EARLIEST_SANE = datetime(BUILD_YEAR, 1, 1, tzinfo=UTC).timestamp()
LATEST_SANE = datetime(BUILD_YEAR + SANE_YEARS + 1, 1, 1, tzinfo=UTC).timestamp()


def sane_time(ts: float) -> bool:
    """Between the build year and SANE_YEARS after it (NaN is not)."""
    return EARLIEST_SANE <= ts < LATEST_SANE


class Clock(Protocol):
    def now(self) -> datetime:
        """Aware UTC wall-clock time (what is stored and shown)."""
        ...

    def monotonic(self) -> float:
        """Seconds for measuring durations (timeouts, tolerances); never jumps."""
        ...

    def sleep(self, seconds: float, wake: threading.Event) -> bool:
        """Wait ``seconds`` of this clock's time; True when ``wake`` was set first."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float, wake: threading.Event) -> bool:
        return wake.wait(max(0.0, seconds))


class FakeClock:
    """A clock that only moves when told to; safe to read from any thread."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
        self._mono = 1000.0
        self._lock = threading.Lock()
        self._moved = threading.Condition(self._lock)

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            self._mono += seconds
            self._moved.notify_all()

    def set(self, when: datetime) -> None:
        with self._lock:
            self._mono += (when - self._now).total_seconds()
            self._now = when
            self._moved.notify_all()

    def sleep(self, seconds: float, wake: threading.Event) -> bool:
        """Blocks until the test advances the clock past the deadline (or wake is set)."""
        with self._lock:
            deadline = self._mono + seconds
            while self._mono < deadline:
                if wake.is_set():
                    return True
                # Short real waits: ``wake`` is a plain Event that cannot notify us.
                self._moved.wait(0.005)
        return wake.is_set()


def utc_iso(dt: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, as every response carries it."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace(".000000Z", "Z")


def local_time(ts: float, tz: tzinfo) -> datetime:
    """Epoch seconds as an aware datetime in the village's zone (the pages, the rules)."""
    return datetime.fromtimestamp(ts, UTC).astimezone(tz)


def iso(ts: float | datetime | None) -> str | None:
    """Epoch seconds or an aware datetime as :func:`utc_iso`; None stays None. The one
    epoch-to-ISO helper: the API, the pages, the feeds and the mirror all use it."""
    if ts is None:
        return None
    return utc_iso(ts if isinstance(ts, datetime) else datetime.fromtimestamp(ts, UTC))


@functools.cache
def _libc() -> Any:
    """find_library() runs `ldconfig -p` in a subprocess (~1.5 ms, a fork of the hub):
    once per process, not once per /api/health."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name, use_errno=True) if name else None
    except OSError:
        return None


def clock_synced() -> bool | None:
    """Is the system clock synchronised (NTP/chrony/timesyncd)? None when it cannot tell.

    A Pi has no battery-backed clock: until NTP answers after boot it may think it is
    1970 or last week. The kernel knows: adjtimex() returns TIME_ERROR (5) while the
    clock is unsynchronised.
    """
    import ctypes
    import ctypes.util

    class _Timex(ctypes.Structure):
        # struct timex is 208 bytes on 64-bit Linux; only ``modes`` (0 = read) matters here.
        _fields_ = [("modes", ctypes.c_uint), ("_rest", ctypes.c_byte * 204)]

    libc = _libc()
    if libc is None:
        return None
    try:
        tx = _Timex()
        state = int(libc.adjtimex(ctypes.byref(tx)))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != 5  # TIME_ERROR
