"""Switched outputs the automation rules pulse: a siren relay, a warning light.

Threads: ``pulse()`` runs in the caller's thread; the timer that switches an output off
runs in its own timer thread; ``close()`` is also an atexit handler.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from functools import partial
from typing import Any

from gpiozero import DigitalOutputDevice

from devices.parts import Part, TimerFactory, TimerLike, UnknownZoneError, daemon_timer


class SwitchedOutputs(Part):
    """Named relays the rules switch on for a while: a siren, a warning light.

    ``pulse(name, seconds)`` switches one on and arms a timer (from ``timer_factory``,
    so tests fire it deterministically) that switches it off; a second pulse while on
    extends it. ``close()`` switches everything off.
    """

    def __init__(
        self,
        pins: Mapping[str, int],
        *,
        active_high: bool = True,
        pin_factory: Any = None,
        timer_factory: TimerFactory = daemon_timer,
    ) -> None:
        self._lock = threading.RLock()
        self._timers: dict[str, TimerLike] = {}
        self._timer_factory = timer_factory
        self._devices: dict[str, DigitalOutputDevice] = {}
        self._closed = False
        try:
            for name, pin in pins.items():
                self._devices[name] = DigitalOutputDevice(
                    pin, active_high=active_high, initial_value=False, pin_factory=pin_factory
                )
        except BaseException:
            self.close()
            raise

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._devices)

    def is_on(self, name: str) -> bool:
        return bool(self._device(name).value)

    def _device(self, name: str) -> DigitalOutputDevice:
        try:
            return self._devices[name]
        except KeyError:
            known = ", ".join(sorted(self._devices)) or "none configured"
            raise UnknownZoneError(f"no output {name!r} (outputs: {known})") from None

    def pulse(self, name: str, seconds: float) -> None:
        device = self._device(name)
        with self._lock:
            old = self._timers.pop(name, None)
            if old is not None:
                old.cancel()
            device.on()
            timer = self._timer_factory(seconds, partial(self.off, name))
            self._timers[name] = timer
            timer.start()

    def off(self, name: str) -> None:
        with self._lock:
            timer = self._timers.pop(name, None)
            if timer is not None:
                timer.cancel()
            self._device(name).off()

    def close(self) -> None:
        """Everything off and released. Idempotent (it is also an atexit handler)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()
            for device in self._devices.values():
                try:
                    device.off()
                finally:
                    device.close()
