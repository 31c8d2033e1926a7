"""Switched outputs the automation rules pulse (a siren relay, a warning light), and every
output driven off from outside the hub (``langso gpio off``).

Threads: ``pulse()`` runs in the caller's thread; the timer that switches an output off
runs in its own timer thread; ``close()`` is also an atexit handler.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class SwitchedOff:
    """One output driven to its off level by :func:`switch_off` (or why it could not be)."""

    what: str
    pin: int
    active_high: bool
    level: int | None  # the pin's level after (1 high, 0 low); None if it could not be opened
    error: str | None = None


def switch_off(
    wiring: Mapping[str, tuple[int, bool]], *, pin_factory: Any = None
) -> list[SwitchedOff]:
    """Drive each output (what → (BCM pin, active_high)) to its off level, on its own: a
    pin that cannot be opened does not keep the others on. For a process that does not
    own the PA box (``langso gpio off`` after the hub died): on a Pi an output keeps its
    level when the process that drove it is gone."""
    done: list[SwitchedOff] = []
    for what, (pin, active_high) in wiring.items():
        try:
            device = DigitalOutputDevice(
                pin, active_high=active_high, initial_value=False, pin_factory=pin_factory
            )
        except Exception as e:  # gpiozero's: pin busy, no pin library, not a Pi...
            done.append(SwitchedOff(what, pin, active_high, None, f"{type(e).__name__}: {e}"))
            continue
        try:
            device.off()
            level = int(device.pin.state)
        finally:
            device.close()
        done.append(SwitchedOff(what, pin, active_high, level))
    return done
