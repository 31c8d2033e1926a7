"""The on-air lamp on the PA box, lit by the playout while a broadcast plays.

Threads: ``on()``/``off()`` run on the asyncio loop; ``blink()`` blinks in gpiozero's thread.
"""

from __future__ import annotations

from typing import Any

from gpiozero import LED

from devices.parts import Part


class OnAirLed(Part):
    """The "đang phát" lamp on the PA box: lit while a broadcast plays, blinking on faults."""

    def __init__(self, pin: int, pin_factory: Any = None, *, active_high: bool = True) -> None:
        self._led = LED(pin, active_high=active_high, initial_value=False, pin_factory=pin_factory)
        self._closed = False

    @property
    def is_on(self) -> bool:
        return not self._closed and bool(self._led.is_lit)

    def on(self) -> None:
        self._led.on()

    def off(self) -> None:
        if not self._closed:
            self._led.off()

    def blink(
        self,
        on_time: float = 0.5,
        off_time: float = 0.5,
        n: int | None = None,
        *,
        background: bool = True,
    ) -> None:
        """Blink (in gpiozero's blink thread unless ``background=False``); on()/off() stop it."""
        self._led.blink(on_time=on_time, off_time=off_time, n=n, background=background)

    def close(self) -> None:
        if self._closed:
            return
        self._led.off()
        self._closed = True
        self._led.close()
