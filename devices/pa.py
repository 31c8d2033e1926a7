"""The whole PA box from its wiring: amplifier, zone relays, on-air LED, panel buttons.

Threads: ``safe_shutdown()`` may run in a signal handler on the main thread while the
asyncio loop is inside a part's ``on()`` or ``select()``: every lock is re-entrant.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from devices.amplifier import Amplifier
from devices.buttons import PanelButtons
from devices.led import OnAirLed
from devices.parts import Part, PinConfigError, TimerFactory, daemon_timer
from devices.zones import ZoneRelays

log = logging.getLogger(__name__)

#: BCM numbers of the GPIO pins on the Raspberry Pi's 40-pin header.
BCM_PINS = range(28)


def check_pins(uses: Mapping[str, int | None]) -> None:
    """Refuse a pin outside BCM 0..27 and a pin wired to two parts.

    ``uses`` maps what a pin does (``"amplifier"``, ``"zone 'xom-dong'"``) to its BCM
    number; ``None`` means the part is not fitted.
    """
    seen: dict[int, str] = {}
    for use, pin in uses.items():
        if pin is None:
            continue
        if isinstance(pin, bool) or not isinstance(pin, int) or pin not in BCM_PINS:
            raise PinConfigError(f"{use}: {pin!r} is not a BCM GPIO pin number (0..27)")
        if pin in seen:
            raise PinConfigError(f"GPIO{pin} is used twice: by the {seen[pin]} and the {use}")
        seen[pin] = use


@dataclass(frozen=True, slots=True)
class GpioConfig:
    """How the PA box is wired (BCM numbers) and timed. Checked when built."""

    amplifier_pin: int
    zones: Mapping[str, int] = field(default_factory=dict)
    on_air_led_pin: int | None = None
    emergency_button_pin: int | None = None
    stop_button_pin: int | None = None
    amplifier_active_high: bool = True
    zones_active_high: bool = True
    buttons_pull_up: bool = True
    lead_in_s: float = 1.5
    tail_s: float = 2.0
    max_on_s: float = 1800.0
    emergency_hold_s: float = 2.0
    bounce_s: float = 0.05

    def __post_init__(self) -> None:
        object.__setattr__(self, "zones", MappingProxyType(dict(self.zones)))
        check_pins(self.pin_uses())

    def pin_uses(self) -> dict[str, int | None]:
        """Every pin with what it does, for :func:`check_pins` and for messages."""
        uses: dict[str, int | None] = {"amplifier": self.amplifier_pin}
        uses.update({f"zone {name!r}": pin for name, pin in self.zones.items()})
        uses["on-air LED"] = self.on_air_led_pin
        uses["emergency button"] = self.emergency_button_pin
        uses["stop button"] = self.stop_button_pin
        return uses

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> GpioConfig:
        """Build from a plain mapping (a TOML table); unknown keys are refused by name."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise PinConfigError(f"unknown GPIO key {unknown[0]!r}; keys are {', '.join(known)}")
        if "amplifier_pin" not in data:
            raise PinConfigError("amplifier_pin is required")
        zones = data.get("zones", {})
        if not isinstance(zones, Mapping) or not all(isinstance(k, str) for k in zones):
            raise PinConfigError("zones must be a table of zone name = BCM pin")
        for key, value in data.items():
            if key.endswith("_s") and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise PinConfigError(f"{key} must be a number of seconds, not {value!r}")
            if key.endswith(("_active_high", "_pull_up")) and not isinstance(value, bool):
                raise PinConfigError(f"{key} must be true or false, not {value!r}")
        return cls(**{**data, "zones": dict(zones)})  # type: ignore[arg-type]


class PaHardware(Part):
    """The whole PA box: amplifier, zone relays, on-air LED and panel buttons.

    Built from a :class:`GpioConfig`; :meth:`close` switches the amplifier off first
    (cutting the sound before relays move avoids a loud click in the speakers), then
    the zones, then the LED, then releases the buttons.
    """

    def __init__(
        self,
        config: GpioConfig,
        *,
        pin_factory: Any = None,
        clock: Callable[[], float] = time.monotonic,
        timer_factory: TimerFactory = daemon_timer,
    ) -> None:
        self.config = config
        self._lock = threading.RLock()
        self._closed = False
        self.led: OnAirLed | None = None
        self.buttons: PanelButtons | None = None
        self.amplifier = Amplifier(
            config.amplifier_pin,
            active_high=config.amplifier_active_high,
            lead_in_s=config.lead_in_s,
            tail_s=config.tail_s,
            max_on_s=config.max_on_s,
            pin_factory=pin_factory,
            clock=clock,
            timer_factory=timer_factory,
        )
        try:
            self.zones = ZoneRelays(
                config.zones, active_high=config.zones_active_high, pin_factory=pin_factory
            )
            if config.on_air_led_pin is not None:
                self.led = OnAirLed(config.on_air_led_pin, pin_factory)
            self.buttons = PanelButtons(
                config.emergency_button_pin,
                config.stop_button_pin,
                pull_up=config.buttons_pull_up,
                bounce_time=config.bounce_s,
                hold_time=config.emergency_hold_s,
                pin_factory=pin_factory,
            )
        except BaseException:
            self.safe_shutdown()
            raise

    @property
    def closed(self) -> bool:
        return self._closed

    def _parts(self) -> list[tuple[str, Callable[[], None]]]:
        # The order is the point: amplifier, zones, LED, buttons.
        parts: list[tuple[str, Callable[[], None]]] = [("amplifier", self.amplifier.close)]
        zones = getattr(self, "zones", None)
        if zones is not None:
            parts.append(("zone relays", zones.close))
        if self.led is not None:
            parts.append(("on-air LED", self.led.close))
        if self.buttons is not None:
            parts.append(("panel buttons", self.buttons.close))
        return parts

    def close(self) -> None:
        """Amplifier off first, then zones, LED and buttons; every part is tried, the
        first failure is raised afterwards. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            first: BaseException | None = None
            for what, close in self._parts():
                try:
                    close()
                except Exception as exc:
                    log.exception("closing the %s failed", what)
                    first = first or exc
            if first is not None:
                raise first

    def safe_shutdown(self) -> None:
        """:meth:`close` that never raises: for signal handlers and ``finally`` blocks.

        The locks are re-entrant, so a signal arriving while the main thread is inside
        ``on()`` or ``select()`` still gets the amplifier off.
        """
        try:
            self.close()
        except Exception:
            log.exception("GPIO shutdown was incomplete")
