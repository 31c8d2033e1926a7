"""What every GPIO part shares: its errors, the closing base class, timers, safe callbacks.

gpiozero's shape: each part is a noun with ``on()``/``off()``/``is_on``/``close()`` and a
context manager that closes (switches off). Pin numbers are BCM throughout.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from types import TracebackType
from typing import Protocol, Self

log = logging.getLogger(__name__)

# --- errors -----------------------------------------------------------------------------


class GpioError(Exception):
    """A GPIO part is misconfigured or misused."""


class PinConfigError(GpioError, ValueError):
    """A pin number is outside BCM 0..27, or one pin is wired to two parts."""


class UnknownZoneError(GpioError, ValueError):
    """A loudspeaker zone that has no relay was asked for."""


# --- timers and callbacks ---------------------------------------------------------------


class TimerLike(Protocol):
    """What a part needs of a timer: ``threading.Timer`` has it, a test fake too."""

    def start(self) -> None: ...

    def cancel(self) -> None: ...


#: ``timer_factory(interval_s, function)`` -> an unstarted timer (``threading.Timer``'s shape).
TimerFactory = Callable[[float, Callable[[], None]], TimerLike]


def daemon_timer(interval: float, function: Callable[[], None]) -> TimerLike:
    """``threading.Timer`` as a daemon: a pending 30-minute watchdog must not keep the
    interpreter alive after the hub has stopped (``close()`` cancels it anyway)."""
    timer = threading.Timer(interval, function)
    timer.daemon = True
    return timer


def call_safely(what: str, callback: Callable[[], None] | None) -> None:
    """Run a user callback from a hardware thread; an exception must not kill that thread
    (gpiozero's hold thread would never fire again: no more emergency button)."""
    if callback is None:
        return
    try:
        callback()
    except Exception:
        log.exception("%s callback failed", what)


class Part(ABC):
    """gpiozero's style: every part is a context manager that closes (switches off)."""

    @abstractmethod
    def close(self) -> None:
        """Switch off and release the pins; each part says how."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
