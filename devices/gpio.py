"""GPIO parts at the end of the flow, one module per device family, as gpiozero lays them out.

The only package that touches pins: :mod:`devices.amplifier` (the mains relay and its
watchdog), :mod:`devices.zones` (loudspeaker zone relays), :mod:`devices.led` (on-air
lamp), :mod:`devices.buttons` (emergency and stop), :mod:`devices.outputs` (siren relay,
warning light) and :mod:`devices.pa` (the PA box's wiring and the box as a whole), on
:mod:`devices.parts` (errors, the closing base, timers). This module names them in one
place for the composition root. Every part takes ``pin_factory=None`` (gpiozero's
default, or its ``MockFactory`` in tests and off the Pi); pin numbers are BCM.
"""

from __future__ import annotations

from devices.amplifier import Amplifier
from devices.buttons import PanelButtons
from devices.led import OnAirLed
from devices.outputs import SwitchedOutputs
from devices.pa import BCM_PINS, GpioConfig, PaHardware, check_pins
from devices.parts import (
    GpioError,
    Part,
    PinConfigError,
    TimerFactory,
    TimerLike,
    UnknownZoneError,
    daemon_timer,
)
from devices.zones import ZoneRelays

__all__ = [
    "BCM_PINS",
    "Amplifier",
    "GpioConfig",
    "GpioError",
    "OnAirLed",
    "PaHardware",
    "PanelButtons",
    "Part",
    "PinConfigError",
    "SwitchedOutputs",
    "TimerFactory",
    "TimerLike",
    "UnknownZoneError",
    "ZoneRelays",
    "check_pins",
    "daemon_timer",
]
