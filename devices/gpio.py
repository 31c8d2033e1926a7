"""GPIO parts at the end of the flow: amplifier relay, zone relays, on-air LED, panel buttons.

The only module that touches pins. Each part wraps a gpiozero device, takes
``pin_factory=None`` (gpiozero's default, or its ``MockFactory`` in tests and off
the Pi) and follows gpiozero's shape: nouns with ``on()``/``off()``/``is_on``/
``close()``, context managers and ``when_*`` callbacks. Pin numbers are BCM.

Threads: the playout calls ``on()``/``off()``/``select()`` from the asyncio loop
(they are quick pin writes, safe there); the amplifier's watchdog runs in its own
timer thread; button callbacks run in gpiozero's threads; ``safe_shutdown()`` may
run in a signal handler on the main thread. Shared state is guarded by re-entrant
locks so that a signal handler arriving while the main thread holds one cannot
deadlock.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from functools import partial
from types import MappingProxyType, TracebackType
from typing import Any, Protocol, Self

from gpiozero import LED, Button, DigitalOutputDevice

log = logging.getLogger(__name__)

#: BCM numbers of the GPIO pins on the Raspberry Pi's 40-pin header.
BCM_PINS = range(28)


# --- errors -----------------------------------------------------------------------------


class GpioError(Exception):
    """A GPIO part is misconfigured or misused."""


class PinConfigError(GpioError, ValueError):
    """A pin number is outside BCM 0..27, or one pin is wired to two parts."""


class UnknownZoneError(GpioError, ValueError):
    """A loudspeaker zone that has no relay was asked for."""


# --- amplifier --------------------------------------------------------------------------


class TimerLike(Protocol):
    """What the amplifier needs of a timer: ``threading.Timer`` has it, a test fake too."""

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


def _call_safely(what: str, callback: Callable[[], None] | None) -> None:
    """Run a user callback from a hardware thread; an exception must not kill that thread
    (gpiozero's hold thread would never fire again: no more emergency button)."""
    if callback is None:
        return
    try:
        callback()
    except Exception:
        log.exception("%s callback failed", what)


class _Closing(ABC):
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


class Amplifier(_Closing):
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
        _call_safely("when_capped", callback)


# --- zone relays ------------------------------------------------------------------------


class ZoneRelays(_Closing):
    """One relay per loudspeaker zone (hamlet); ``select()`` routes the amplifier's output.

    Zone names are the ones announcements use (``"xom-dong"``); ``"all"`` means every
    zone. A mapping without zones is a single-line PA: ``"all"`` selects nothing.
    """

    ALL = "all"

    def __init__(
        self,
        pins: Mapping[str, int],
        *,
        active_high: bool = True,
        pin_factory: Any = None,
    ) -> None:
        for name in pins:
            if not name or name == self.ALL:
                raise PinConfigError(f"zone name {name!r} is reserved or empty")
        self._lock = threading.RLock()
        self._relays: dict[str, Any] = {}
        try:
            for name, pin in pins.items():
                self._relays[name] = DigitalOutputDevice(
                    pin, active_high=active_high, initial_value=False, pin_factory=pin_factory
                )
        except BaseException:
            for relay in self._relays.values():
                relay.close()
            raise
        self._closed = False

    def __repr__(self) -> str:
        return f"<ZoneRelays {', '.join(self._relays) or '(none)'} active={sorted(self.active)}>"

    @property
    def zones(self) -> tuple[str, ...]:
        """The zone names, in configuration order."""
        return tuple(self._relays)

    @property
    def active(self) -> frozenset[str]:
        """The zones whose relay is on now (read from the pins)."""
        with self._lock:
            if self._closed:
                return frozenset()
            return frozenset(name for name, relay in self._relays.items() if relay.is_active)

    def resolve(self, zones: Iterable[str]) -> frozenset[str]:
        """The zone names meant by ``zones`` (``"all"`` expanded); raises on an unknown one."""
        if isinstance(zones, str):  # one name, not its letters
            zones = (zones,)
        wanted: set[str] = set()
        for zone in zones:
            if zone == self.ALL:
                wanted.update(self._relays)
            elif zone in self._relays:
                wanted.add(zone)
            else:
                valid = ", ".join((self.ALL, *self._relays))
                raise UnknownZoneError(f"unknown zone {zone!r}; zones are: {valid}")
        return frozenset(wanted)

    def select(self, zones: Iterable[str]) -> frozenset[str]:
        """Switch exactly ``zones`` on and every other zone off; returns the zones on.

        Names are checked before any relay moves. Relays switch off before others
        switch on, so a zone that was not chosen never hears the start of a message.
        """
        wanted = self.resolve(zones)
        with self._lock:
            if self._closed:
                raise GpioError("the zone relays are closed")
            for name, relay in self._relays.items():
                if name not in wanted:
                    relay.off()
            for name, relay in self._relays.items():
                if name in wanted:
                    relay.on()
        return wanted

    def release(self) -> None:
        """Every zone relay off."""
        with self._lock:
            if self._closed:
                return
            for relay in self._relays.values():
                relay.off()

    def close(self) -> None:
        """Every relay off, then release the pins. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self.release()
            self._closed = True
            for relay in self._relays.values():
                relay.close()


# --- switched outputs (siren relay, warning light) -------------------------------------


class SwitchedOutputs(_Closing):
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


# --- on-air LED -------------------------------------------------------------------------


class OnAirLed(_Closing):
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


# --- panel buttons ----------------------------------------------------------------------


class PanelButtons(_Closing):
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
        _call_safely("when_emergency", self.when_emergency)

    def _stop_pressed(self) -> None:
        # gpiozero's edge-callback thread (the pin driver's; the caller's with MockFactory).
        log.info("stop button pressed")
        _call_safely("when_stop", self.when_stop)

    def close(self) -> None:
        for button in (self._emergency, self._stop):
            if button is not None:
                button.close()
        self._emergency = self._stop = None


# --- configuration and the whole PA box -------------------------------------------------


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


class PaHardware(_Closing):
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
