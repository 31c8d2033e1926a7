"""The PA amplifier's mains relay at the end of the playout, with a watchdog on its on-time.

Threads: the playout calls ``on()``/``off()`` from the asyncio loop (quick pin writes,
safe there); the watchdog runs in its own timer thread; ``close()`` may run in a signal
handler on the main thread, hence the re-entrant lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, Self

from gpiozero import DigitalOutputDevice

from devices.parts import GpioError, Part, TimerFactory, TimerLike, call_safely, daemon_timer

log = logging.getLogger(__name__)


class Amplifier(Part):
    """The PA amplifier's mains relay (or its standby input), with a hard on-time cap.

    ``on()`` is idempotent and keeps the first switch-on time; ``off()`` always writes
    the pin. If the amplifier stays on longer than ``max_on_s`` (a stuck playout, a
    forgotten test) the watchdog switches it off and calls ``when_capped``: a village
    must not hear a hissing amplifier all night.

    ``lead_in_s`` and ``tail_s`` are for the playout: relays and the amplifier's
    soft-start need about a second before the first sample is audible, and the last
    syllable must leave the speakers before the relay cuts it (and clicks).
    """

    def __init__(
        self,
        pin: int,
        *,
        active_high: bool = True,
        lead_in_s: float = 1.5,
        tail_s: float = 2.0,
        max_on_s: float = 1800.0,
        pin_factory: Any = None,
        clock: Callable[[], float] = time.monotonic,
        timer_factory: TimerFactory = daemon_timer,
    ) -> None:
        if lead_in_s < 0 or tail_s < 0:
            raise ValueError("amplifier lead_in_s and tail_s must be ≥ 0 seconds")
        if max_on_s <= 0:
            raise ValueError("amplifier max_on_s must be > 0 seconds")
        self.lead_in_s = float(lead_in_s)
        self.tail_s = float(tail_s)
        self.max_on_s = float(max_on_s)
        #: Called (in the watchdog's timer thread) after the cap switched the amplifier off.
        self.when_capped: Callable[[], None] | None = None
        self._clock = clock
        self._timer_factory = timer_factory
        self._lock = threading.RLock()
        self._on_since: float | None = None
        self._watchdog: TimerLike | None = None
        self._session = 0  # bumped at each switch-on, so a stale watchdog does nothing
        self._closed = False
        self._pin = pin
        self._device = DigitalOutputDevice(
            pin, active_high=active_high, initial_value=False, pin_factory=pin_factory
        )

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("on" if self.is_on else "off")
        return f"<Amplifier pin={self.pin} {state}>"

    @property
    def pin(self) -> int:
        """The BCM number of the relay's pin."""
        return self._pin

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def is_on(self) -> bool:
        """Whether the relay's pin is driven on now (read from the pin, not remembered)."""
        with self._lock:
            return not self._closed and bool(self._device.is_active)

    @property
    def on_since(self) -> float | None:
        """The clock's reading when the amplifier was switched on, ``None`` when off."""
        return self._on_since

    @property
    def on_for(self) -> float | None:
        """Seconds on so far (by the injected clock), ``None`` when off."""
        since = self._on_since
        return None if since is None else self._clock() - since

    def on(self) -> None:
        """Switch the amplifier on; does nothing if it is on already (the cap keeps running)."""
        with self._lock:
            if self._closed:
                raise GpioError("the amplifier is closed")
            if self._on_since is not None and self._device.is_active:
                return
            self._device.on()
            self._on_since = self._clock()
            self._session += 1
            self._arm(self.max_on_s)

    def off(self) -> None:
        """Switch the amplifier off (always writes the pin; harmless when already off)."""
        with self._lock:
            self._disarm()
            self._on_since = None
            if not self._closed:
                self._device.off()

    @contextmanager
    def hold(self, sleep: Callable[[float], object] | None = None) -> Iterator[Self]:
        """Keep the amplifier on for a block; off afterwards if this block switched it on.

        With ``sleep`` (blocking callers such as a speaker node's thread) the block waits
        ``lead_in_s`` after switching on and ``tail_s`` before switching off. The asyncio
        playout awaits those itself and calls ``on()``/``off()``. After an exception the
        amplifier goes off at once, without the tail.
        """
        was_on = self.is_on
        self.on()
        if sleep is not None and not was_on:
            sleep(self.lead_in_s)
        try:
            yield self
        except BaseException:
            if not was_on:
                self.off()
            raise
        if not was_on:
            if sleep is not None:
                sleep(self.tail_s)
            self.off()

    def close(self) -> None:
        """Switch off, stop the watchdog and release the pin. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self.off()
            self._closed = True
            self._device.close()

    # The watchdog ----------------------------------------------------------------------

    def _arm(self, delay: float) -> None:
        self._disarm()
        timer = self._timer_factory(delay, partial(self._watchdog_fired, self._session))
        self._watchdog = timer
        timer.start()

    def _disarm(self) -> None:
        timer, self._watchdog = self._watchdog, None
        if timer is not None:
            timer.cancel()

    def _watchdog_fired(self, session: int) -> None:
        # Runs in the watchdog's timer thread. The session check drops a timer that
        # fired just as off()/on() replaced it (cancel() cannot stop a running timer).
        with self._lock:
            if self._closed or session != self._session or self._on_since is None:
                return
            elapsed = self._clock() - self._on_since
            if elapsed < self.max_on_s:
                # The injected clock is the judge; a timer that woke early waits the rest.
                self._arm(self.max_on_s - elapsed)
                return
            self._watchdog = None
            self._on_since = None
            self._device.off()
            callback = self.when_capped
        log.warning(
            "amplifier on for %.0f s (cap %.0f s): switched off by the watchdog",
            elapsed,
            self.max_on_s,
        )
        call_safely("when_capped", callback)
