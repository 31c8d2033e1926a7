"""devices/gpio.py on gpiozero's MockFactory: whole pin histories, a driven watchdog, real holds."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import gpiozero.pins.mock
import pytest
from gpiozero import DigitalOutputDevice
from gpiozero.pins.mock import MockFactory, MockPin

from devices.amplifier import Amplifier
from devices.buttons import PanelButtons
from devices.led import OnAirLed
from devices.pa import GpioConfig, PaHardware, check_pins
from devices.parts import GpioError, PinConfigError, UnknownZoneError
from devices.zones import ZoneRelays

AMP, ZONE_A, ZONE_B, LED_PIN, EMERGENCY, STOP = 17, 27, 22, 23, 5, 6


def history(pin: MockPin) -> list[bool]:
    return [bool(s.state) for s in pin.states]


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeTimer:
    """threading.Timer's shape; the test fires it."""

    def __init__(self, interval: float, function: Callable[[], None]) -> None:
        self.interval = interval
        self.function = function
        self.started = False
        self.cancelled = False
        self.fired = False

    def start(self) -> None:
        self.started = True

    def cancel(self) -> None:
        self.cancelled = True

    def fire(self) -> None:
        assert self.started and not self.cancelled
        self.fired = True
        self.function()


class FakeTimers(list[FakeTimer]):
    def __call__(self, interval: float, function: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(interval, function)
        self.append(timer)
        return timer

    def live(self) -> list[FakeTimer]:
        return [t for t in self if t.started and not (t.cancelled or t.fired)]


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.reset()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def timers() -> FakeTimers:
    return FakeTimers()


@pytest.fixture
def amp(factory: MockFactory, clock: FakeClock, timers: FakeTimers) -> Iterator[Amplifier]:
    a = Amplifier(AMP, max_on_s=1800, pin_factory=factory, clock=clock, timer_factory=timers)
    yield a
    a.close()


# --- amplifier ----------------------------------------------------------------------------


def test_amplifier_on_off_history(amp: Amplifier, factory: MockFactory, clock: FakeClock) -> None:
    assert not amp.is_on and amp.on_since is None
    amp.on()
    assert amp.is_on and amp.on_since == 1000.0
    clock.now = 1012.5
    assert amp.on_for == 12.5
    amp.off()
    assert not amp.is_on and amp.on_for is None
    assert history(factory.pin(AMP)) == [False, True, False]
    assert (amp.lead_in_s, amp.tail_s, amp.pin) == (1.5, 2.0, AMP)


def test_amplifier_on_and_off_are_idempotent(
    amp: Amplifier, factory: MockFactory, clock: FakeClock, timers: FakeTimers
) -> None:
    amp.on()
    clock.now += 30
    amp.on()
    assert amp.on_since == 1000.0, "a second on() keeps the first switch-on time"
    assert len(timers) == 1, "and does not restart the cap"
    amp.off()
    amp.off()
    assert history(factory.pin(AMP)) == [False, True, False]
    assert timers[0].cancelled


def test_amplifier_active_low_wiring(factory: MockFactory) -> None:
    # Most relay boards sold for the Pi switch on when the input is pulled low.
    with Amplifier(AMP, active_high=False, pin_factory=factory) as a:
        a.on()
        assert a.is_on
        a.off()
    assert history(factory.pin(AMP)) == [False, True, False, True]


def test_cap_switches_off_and_calls_when_capped(
    amp: Amplifier, factory: MockFactory, clock: FakeClock, timers: FakeTimers
) -> None:
    capped: list[bool] = []
    amp.when_capped = lambda: capped.append(amp.is_on)
    amp.on()
    assert [t.interval for t in timers] == [1800.0]
    clock.now += 1800
    timers[0].fire()
    assert capped == [False], "called once, after the relay is already off"
    assert not amp.is_on and amp.on_since is None
    assert history(factory.pin(AMP)) == [False, True, False]
    amp.on()  # usable again afterwards, with a new cap
    assert history(factory.pin(AMP)) == [False, True, False, True]
    assert len(timers.live()) == 1


def test_cap_fired_early_waits_for_the_rest(
    amp: Amplifier, factory: MockFactory, clock: FakeClock, timers: FakeTimers
) -> None:
    amp.on()
    clock.now += 1500
    timers[0].fire()  # the injected clock says only 1500 s have passed
    assert amp.is_on
    assert timers[1].interval == 300.0
    clock.now += 300
    timers[1].fire()
    assert history(factory.pin(AMP)) == [False, True, False]


def test_stale_cap_does_nothing(
    amp: Amplifier, factory: MockFactory, clock: FakeClock, timers: FakeTimers
) -> None:
    # A timer that fires just as off()/on() cancels it must not cut the new broadcast.
    amp.on()
    amp.off()
    amp.on()
    clock.now += 1800
    timers[0].function()
    assert amp.is_on
    assert history(factory.pin(AMP)) == [False, True, False, True]


def test_close_switches_off_first(amp: Amplifier, factory: MockFactory, timers: FakeTimers) -> None:
    amp.on()
    amp.close()
    amp.close()
    assert amp.closed and not amp.is_on
    assert history(factory.pin(AMP)) == [False, True, False]
    assert factory.pin(AMP).function == "input"
    assert timers.live() == []
    with pytest.raises(GpioError):
        amp.on()


def test_hold_waits_lead_in_and_tail(amp: Amplifier, factory: MockFactory) -> None:
    waits: list[tuple[float, bool]] = []

    def sleep(s: float) -> None:
        waits.append((s, amp.is_on))

    with amp.hold(sleep=sleep):
        assert amp.is_on
    assert waits == [(1.5, True), (2.0, True)]
    with pytest.raises(RuntimeError), amp.hold(sleep=sleep):
        raise RuntimeError("sink failed")
    assert waits[2:] == [(1.5, True)], "no tail after a failure"
    assert history(factory.pin(AMP)) == [False, True, False, True, False]


def test_hold_leaves_an_amplifier_on_that_was_on(amp: Amplifier, factory: MockFactory) -> None:
    amp.on()
    with amp.hold():
        pass
    assert amp.is_on
    assert history(factory.pin(AMP)) == [False, True]


def test_amplifier_refuses_bad_timings(factory: MockFactory) -> None:
    with pytest.raises(ValueError, match="max_on_s"):
        Amplifier(AMP, max_on_s=0, pin_factory=factory)
    with pytest.raises(ValueError, match="lead_in_s"):
        Amplifier(AMP, lead_in_s=-1, pin_factory=factory)


# --- zones --------------------------------------------------------------------------------


@pytest.fixture
def zones(factory: MockFactory) -> Iterator[ZoneRelays]:
    z = ZoneRelays({"xom-dong": ZONE_A, "xom-tay": ZONE_B}, pin_factory=factory)
    yield z
    z.close()


def test_zones_select_exactly(zones: ZoneRelays, factory: MockFactory) -> None:
    assert zones.select(["xom-dong"]) == {"xom-dong"}
    assert zones.active == {"xom-dong"}
    assert zones.select(["xom-tay"]) == {"xom-tay"}
    assert zones.active == {"xom-tay"}
    assert history(factory.pin(ZONE_A)) == [False, True, False]
    assert history(factory.pin(ZONE_B)) == [False, True]


def test_zones_all_and_release(zones: ZoneRelays, factory: MockFactory) -> None:
    assert zones.select(["all"]) == {"xom-dong", "xom-tay"}
    assert zones.select("all") == {"xom-dong", "xom-tay"}
    zones.release()
    assert zones.active == frozenset()
    assert history(factory.pin(ZONE_A)) == [False, True, False]
    assert history(factory.pin(ZONE_B)) == [False, True, False]


def test_zones_unknown_moves_nothing(zones: ZoneRelays, factory: MockFactory) -> None:
    zones.select(["xom-dong"])
    with pytest.raises(UnknownZoneError, match=r"'xom-nam'; zones are: all, xom-dong, xom-tay"):
        zones.select(["xom-tay", "xom-nam"])
    assert zones.active == {"xom-dong"}
    assert history(factory.pin(ZONE_A)) == [False, True]
    assert history(factory.pin(ZONE_B)) == [False]
    assert isinstance(UnknownZoneError("x"), ValueError)


def test_zones_active_low_and_close(factory: MockFactory) -> None:
    z = ZoneRelays({"xom-dong": ZONE_A}, active_high=False, pin_factory=factory)
    z.select(["xom-dong"])
    z.close()
    assert history(factory.pin(ZONE_A)) == [False, True, False, True]
    assert z.active == frozenset()


def test_zone_named_all_is_refused(factory: MockFactory) -> None:
    with pytest.raises(PinConfigError, match="reserved"):
        ZoneRelays({"all": ZONE_A}, pin_factory=factory)


# --- LED ----------------------------------------------------------------------------------


def test_on_air_led(factory: MockFactory) -> None:
    with OnAirLed(LED_PIN, factory) as led:
        led.on()
        assert led.is_on
        led.off()
        led.blink(on_time=0.001, off_time=0.001, n=2, background=False)
    assert history(factory.pin(LED_PIN)) == [False, True, False, True, False, True, False]


# --- buttons ------------------------------------------------------------------------------


def test_emergency_fires_on_hold_in_gpiozero_thread(factory: MockFactory) -> None:
    fired = threading.Event()
    threads: list[threading.Thread] = []

    def emergency() -> None:
        threads.append(threading.current_thread())
        fired.set()

    with PanelButtons(EMERGENCY, None, hold_time=0.2, pin_factory=factory) as buttons:
        buttons.when_emergency = emergency
        pin = factory.pin(EMERGENCY)
        pin.drive_low()  # pressed (pull-up wiring)
        assert buttons.emergency_pressed
        assert not fired.is_set(), "a press alone is not an emergency"
        assert fired.wait(5), "held for hold_time: emergency"
        pin.drive_high()
    assert threads[0] is not threading.main_thread()
    assert history(pin) == [False, True, False, True]


def test_emergency_ignores_a_brief_press(factory: MockFactory) -> None:
    fired = threading.Event()
    with PanelButtons(EMERGENCY, None, hold_time=0.05, pin_factory=factory) as buttons:
        buttons.when_emergency = fired.set
        pin = factory.pin(EMERGENCY)
        pin.drive_low()
        pin.drive_high()
        assert not fired.wait(0.3)


def test_emergency_callback_error_does_not_kill_the_hold_thread(
    factory: MockFactory, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = threading.Event(), threading.Event()

    def emergency() -> None:
        if not first.is_set():
            first.set()
            raise RuntimeError("playout not ready")
        second.set()

    with PanelButtons(EMERGENCY, None, hold_time=0.05, pin_factory=factory) as buttons:
        buttons.when_emergency = emergency
        pin = factory.pin(EMERGENCY)
        pin.drive_low()
        assert first.wait(5)
        pin.drive_high()
        pin.drive_low()
        assert second.wait(5), "the next hold still reaches the callback"
        pin.drive_high()
    assert "when_emergency callback failed" in caplog.text


def test_stop_fires_on_press(factory: MockFactory) -> None:
    stops: list[threading.Thread] = []
    with PanelButtons(None, STOP, pin_factory=factory) as buttons:
        buttons.when_stop = lambda: stops.append(threading.current_thread())
        factory.pin(STOP).drive_low()
        # MockFactory calls edge callbacks in the thread that drove the pin.
        assert stops == [threading.current_thread()]
        assert buttons.stop_pressed
        factory.pin(STOP).drive_high()
    assert len(stops) == 1


# --- pins and the whole box ---------------------------------------------------------------


def test_check_pins_duplicate_names_both_uses() -> None:
    with pytest.raises(PinConfigError, match=r"GPIO17 is used twice: by the amplifier and the "):
        check_pins({"amplifier": 17, "on-air LED": None, "zone 'xom-dong'": 17})
    with pytest.raises(PinConfigError, match="zone 'xom-dong'"):
        GpioConfig(amplifier_pin=17, zones={"xom-dong": 17})
    with pytest.raises(ValueError, match="emergency button"):
        GpioConfig(amplifier_pin=17, on_air_led_pin=5, emergency_button_pin=5)


@pytest.mark.parametrize("pin", [-1, 28, 40, True, 3.0, "GPIO17"])
def test_check_pins_range(pin: object) -> None:
    with pytest.raises(PinConfigError, match=r"amplifier: .* \(0\.\.27\)"):
        check_pins({"amplifier": pin})  # type: ignore[dict-item]


def test_config_from_mapping() -> None:
    config = GpioConfig.from_mapping(
        {"amplifier_pin": AMP, "zones": {"xom-dong": ZONE_A}, "max_on_s": 600}
    )
    assert config.zones == {"xom-dong": ZONE_A} and config.max_on_s == 600
    with pytest.raises(PinConfigError, match="unknown GPIO key 'amp_pin'"):
        GpioConfig.from_mapping({"amp_pin": AMP})
    with pytest.raises(PinConfigError, match="amplifier_pin is required"):
        GpioConfig.from_mapping({})
    with pytest.raises(PinConfigError, match="tail_s must be a number"):
        GpioConfig.from_mapping({"amplifier_pin": AMP, "tail_s": "2"})
    with pytest.raises(PinConfigError, match="zones_active_high must be true or false"):
        GpioConfig.from_mapping({"amplifier_pin": AMP, "zones_active_high": 1})


CONFIG = GpioConfig(
    amplifier_pin=AMP,
    zones={"xom-dong": ZONE_A, "xom-tay": ZONE_B},
    on_air_led_pin=LED_PIN,
    emergency_button_pin=EMERGENCY,
    stop_button_pin=STOP,
    emergency_hold_s=0.05,
)


class Ticks:
    """A strictly increasing clock for MockPin, so timestamps order changes across pins."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


def test_safe_shutdown_amplifier_first(
    factory: MockFactory, monkeypatch: pytest.MonkeyPatch, timers: FakeTimers
) -> None:
    ticks = Ticks()
    monkeypatch.setattr(gpiozero.pins.mock, "monotonic", ticks)
    hw = PaHardware(CONFIG, pin_factory=factory, timer_factory=timers)
    outputs = {"amp": AMP, "zone a": ZONE_A, "zone b": ZONE_B, "led": LED_PIN}
    hw.zones.select(["all"])
    assert hw.led is not None
    hw.led.on()
    hw.amplifier.on()
    base = {}
    for name, number in outputs.items():
        factory.pin(number).clear_states()  # each pin's timestamps count from here
        base[name] = ticks.t
    hw.safe_shutdown()
    hw.safe_shutdown()  # idempotent
    for number in outputs.values():
        assert history(factory.pin(number)) == [True, False]
    off_at = {
        name: base[name] + sum(s.timestamp for s in factory.pin(number).states)
        for name, number in outputs.items()
    }
    assert off_at["amp"] < off_at["zone a"] < off_at["zone b"] < off_at["led"]
    assert hw.closed and timers.live() == []


def test_close_tries_every_part_and_raises_the_first_failure(
    factory: MockFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    hw = PaHardware(CONFIG, pin_factory=factory)
    hw.amplifier.on()
    hw.zones.select(["xom-dong"])

    def broken() -> None:
        raise OSError("relay board gone")

    monkeypatch.setattr(hw.zones, "close", broken)
    with pytest.raises(OSError, match="relay board gone"):
        hw.close()
    assert history(factory.pin(AMP)) == [False, True, False]
    assert factory.pin(LED_PIN).function == "input", "the LED was still closed"
    hw.safe_shutdown()  # never raises
    monkeypatch.undo()
    hw.zones.close()


def test_half_built_hardware_releases_its_pins(factory: MockFactory) -> None:
    squatter = DigitalOutputDevice(LED_PIN, pin_factory=factory)
    with pytest.raises(gpiozero.GPIOPinInUse):
        PaHardware(CONFIG, pin_factory=factory)
    squatter.close()
    # The amplifier and zone pins were given back: they can be claimed again.
    with PaHardware(CONFIG, pin_factory=factory) as hw:
        assert not hw.amplifier.is_on


def test_hardware_buttons_reach_callbacks(factory: MockFactory) -> None:
    emergency, stop = threading.Event(), threading.Event()
    with PaHardware(CONFIG, pin_factory=factory) as hw:
        assert hw.buttons is not None
        hw.buttons.when_emergency = emergency.set
        hw.buttons.when_stop = stop.set
        factory.pin(STOP).drive_low()
        assert stop.is_set()
        factory.pin(EMERGENCY).drive_low()
        assert emergency.wait(5)
        factory.pin(EMERGENCY).drive_high()
        factory.pin(STOP).drive_high()  # a held button makes close() wait out its hold thread
