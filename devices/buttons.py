"""The emergency and stop buttons on the PA box: the start of a flow, pressed by hand.

Threads: the callbacks run in gpiozero's threads and must only hand work over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from gpiozero import Button

from devices.parts import Part, call_safely

log = logging.getLogger(__name__)


class PanelButtons(Part):
    """The emergency and stop buttons on the PA box in the cultural house.

    ``when_emergency`` fires only after the emergency button has been held down for
    ``hold_time`` seconds (2 s by default): the box hangs in a public room, and an
    emergency broadcast must not start because someone brushed past it or a child
    tapped it. ``when_stop`` fires on a plain press: stopping must be immediate.

    Both callbacks run in gpiozero's threads (the hold thread for the emergency button,
    the pin's edge-callback thread for stop), not on the asyncio loop: keep them short
    and hand over with ``loop.call_soon_threadsafe``.
    """

    def __init__(
        self,
        emergency_pin: int | None,
        stop_pin: int | None,
        *,
        pull_up: bool = True,
        bounce_time: float | None = 0.05,
        hold_time: float = 2.0,
        pin_factory: Any = None,
    ) -> None:
        if hold_time <= 0:
            raise ValueError("the emergency hold_time must be > 0 seconds")
        self.when_emergency: Callable[[], None] | None = None
        self.when_stop: Callable[[], None] | None = None
        self._emergency: Any = None
        self._stop: Any = None
        try:
            if emergency_pin is not None:
                self._emergency = Button(
                    emergency_pin,
                    pull_up=pull_up,
                    bounce_time=bounce_time,
                    hold_time=hold_time,
                    hold_repeat=False,
                    pin_factory=pin_factory,
                )
                self._emergency.when_held = self._emergency_held
            if stop_pin is not None:
                self._stop = Button(
                    stop_pin, pull_up=pull_up, bounce_time=bounce_time, pin_factory=pin_factory
                )
                self._stop.when_pressed = self._stop_pressed
        except BaseException:
            self.close()
            raise

    @property
    def hold_time(self) -> float | None:
        return None if self._emergency is None else float(self._emergency.hold_time)

    @property
    def emergency_pressed(self) -> bool:
        return self._emergency is not None and bool(self._emergency.is_pressed)

    @property
    def stop_pressed(self) -> bool:
        return self._stop is not None and bool(self._stop.is_pressed)

    def _emergency_held(self) -> None:
        # gpiozero's hold thread, hold_time after the press, only if still pressed.
        log.warning("emergency button held for %.1f s", self.hold_time or 0.0)
        call_safely("when_emergency", self.when_emergency)

    def _stop_pressed(self) -> None:
        # gpiozero's edge-callback thread (the pin driver's; the caller's with MockFactory).
        log.info("stop button pressed")
        call_safely("when_stop", self.when_stop)

    def close(self) -> None:
        for button in (self._emergency, self._stop):
            if button is not None:
                button.close()
        self._emergency = self._stop = None
