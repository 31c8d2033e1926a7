"""Composition root: build the hub's parts in the order of the flow, stop them in reverse."""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from audio.sinks import Sink, make_sink
from audio.tts import TTSEngine, make_engine
from devices.adapters import Router, make_adapter
from devices.events import AnnounceCommand, Availability, Reading
from devices.gpio import GpioConfig, PaHardware, SwitchedOutputs
from hub import __version__
from hub.automation.notify import Notification, Notifier, Outbox
from hub.automation.rules import DeviceView, Effects, RulesEngine, load_rules_file
from hub.broadcast.announcements import Announcements
from hub.broadcast.playout import PaAdapter, Playout, PlayoutPolicy
from hub.clock import Clock, SystemClock, clock_synced
from hub.errors import ConfigError
from hub.events import Change, StatusChange, Stored
from hub.ingest.discovery import DeviceInfo, HomeAssistantMirror
from hub.ingest.monitor import Monitor
from hub.ingest.mqtt import MqttLink
from hub.ingest.writer import DeviceRow, Ingest
from hub.services.users import Users
from hub.settings import Settings
from hub.store import Store
from hub.store.retention import Retention

log = logging.getLogger(__name__)


def build_router(settings: Settings) -> Router:
    # Order matters only for topics two sources could both claim: the native contract
    # first, ESPHome (whose node names are free-form) last.
    order = ("native", "collectd", "tasmota", "zigbee2mqtt", "esphome")
    adapters = []
    for name in order:
        a = settings.adapters[name]
        if a.enabled:
            adapters.append(
                make_adapter(name, site=settings.site, root=a.root, kind=a.kind, rename=a.rename)
            )
    return Router(adapters)


@dataclass
class Hub:
    settings: Settings
    clock: Clock
    store: Store
    users: Users
    monitor: Monitor
    ingest: Ingest
    mqtt: MqttLink
    retention: Retention
    playout: Playout
    announcements: Announcements
    hardware: PaHardware | None
    notifier: Notifier
    rules: RulesEngine
    outputs: SwitchedOutputs | None
    discovery: HomeAssistantMirror
    _timer_stop: threading.Event = field(default_factory=threading.Event)
    _timer: threading.Thread | None = None
    started: bool = False

    def start(self) -> None:
        self.notifier.start()
        self.ingest.start()
        self.mqtt.start()
        self.playout.start()
        self.announcements.start()
        self._timer_stop.clear()
        self._timer = threading.Thread(target=self._timers, name="hub-timers", daemon=True)
        self._timer.start()
        threading.Thread(target=self.prerender, name="prerender", daemon=True).start()
        self.started = True
        log.info("hub started for site %s", self.settings.site)

    def stop(self) -> None:
        """Reverse order, amplifier off first: cut the sound, stop taking messages, let
        the writer finish, close the file."""
        self.playout.stop()
        if self.hardware is not None:
            self.hardware.safe_shutdown()
        if self.outputs is not None:
            self.outputs.close()
        self.announcements.stop()
        self._timer_stop.set()
        if self._timer:
            self._timer.join(5)
        self.mqtt.stop()
        self.ingest.stop()
        self.notifier.stop(5)
        self.store.close()
        self.started = False

    def _timers(self) -> None:
        # Only queues work: the jobs run in the ingest writer thread, where all writes are.
        h = self.settings.health.check_interval_s
        sweep_every = self.settings.retention.sweep_interval_s
        next_sweep = self.clock.monotonic() + min(60.0, sweep_every)
        while not self._timer_stop.wait(h):
            self.ingest.call(self.ingest.tick)
            self.ingest.call(self.rules.tick)
            self.ingest.call(lambda: _discard(self.discovery.drain()))
            if self.clock.monotonic() >= next_sweep:
                next_sweep = self.clock.monotonic() + sweep_every
                self.ingest.call(self.retention.sweep)
                threading.Thread(target=self.prerender, name="prerender", daemon=True).start()

    def reload_rules(self) -> None:
        """After an API change: the engine's state lives in the writer thread."""
        self.ingest.call_wait(self.rules.reload)
        threading.Thread(target=self.prerender, name="prerender", daemon=True).start()

    def prerender(self) -> None:
        """Emergency announcements the rules may make, rendered before they are needed."""
        views = [_view(self.settings, d) for d in self.ingest.devices()]
        self.announcements.prerender(self.rules.emergency_texts(views))


def _view(settings: Settings, d: DeviceRow) -> DeviceView:
    h = settings.health.devices.get(d.id)
    return DeviceView(
        d.id, (h.name if h else None) or d.name or d.id, d.kind, h.zone if h else None
    )


def _info(d: DeviceRow) -> DeviceInfo:
    return DeviceInfo(
        d.id, d.kind, source=d.source, name=d.name, metrics=tuple(sorted(d.metrics)), info=d.info
    )


def _discard(_: object) -> None:
    """gpiozero callbacks return nothing."""


def build_sink(settings: Settings, clock: Clock) -> Sink:
    a = settings.audio
    now = clock.now
    if a.sink == "file":
        return make_sink("file", out_dir=a.file_dir or settings.data_dir / "broadcasts", clock=now)
    if a.sink == "alsa":
        return make_sink("alsa", device=a.alsa_device, clock=now)
    return make_sink("null", clock=now)


def build_hardware(settings: Settings, pin_factory: Any = None) -> PaHardware | None:
    g = settings.gpio
    if not g.enabled:
        return None
    config = GpioConfig(
        amplifier_pin=g.amplifier_pin,
        zones=g.zones,
        on_air_led_pin=g.on_air_led_pin,
        emergency_button_pin=g.emergency_button_pin,
        stop_button_pin=g.stop_button_pin,
        amplifier_active_high=g.amplifier_active_high,
        zones_active_high=g.zones_active_high,
        lead_in_s=g.lead_in_s,
        tail_s=g.tail_s,
        max_on_s=g.max_on_s,
    )
    try:
        return PaHardware(config, pin_factory=pin_factory)
    except Exception as e:  # gpiozero's errors: no pin library, pin busy, not a Pi…
        raise ConfigError(
            "gpio",
            "gpio.enabled",
            f"cannot open the pins ({type(e).__name__}: {e}); off the Pi set "
            "GPIOZERO_PIN_FACTORY=mock, or gpio.enabled = false",
        ) from e


def build_hub(
    settings: Settings,
    *,
    clock: Clock | None = None,
    pin_factory: Any = None,
    sink: Sink | None = None,
    engine_factory: Callable[[], TTSEngine] | None = None,
    synced: Callable[[], bool | None] = clock_synced,
) -> Hub:
    """Every part, in the order of the flow; ``clock``, pins, sink and TTS are injectable."""
    clock = clock or SystemClock()
    store = Store(settings.db_path)
    router = build_router(settings)
    monitor = Monitor(settings.health, settings.tz)
    holder: dict[str, MqttLink] = {}

    def publish(topic: str, payload: bytes, retain: bool) -> None:
        holder["mqtt"].publish(topic, payload, qos=1, retain=retain)

    def ack(mids: Sequence[int]) -> None:
        holder["mqtt"].ack_many(mids)

    ingest = Ingest(settings, store, router, monitor, clock, ack=ack, publish=publish)

    def filters_known(digest: str) -> bool:
        # paho thread: a read through that thread's own connection.
        known = store.get_meta("mqtt_filters") == digest
        if not known:
            store.set_meta("mqtt_filters", digest)
        return known

    ha = HomeAssistantMirror(
        settings.site,
        publish,
        version=__version__,
        backlog=lambda: holder["mqtt"].unacknowledged(),
    )
    link = MqttLink(
        settings,
        filters=router.filters,
        on_messages=ingest.submit,
        now=lambda: clock.now().timestamp(),
        filters_known=filters_known,
        on_state=lambda up: ha.connected([_info(d) for d in ingest.devices()]) if up else None,
    )
    holder["mqtt"] = link
    hardware = build_hardware(settings, pin_factory)
    if hardware is not None:
        atexit.register(hardware.safe_shutdown)  # amplifier off on every exit path
    holder_ann: dict[str, Announcements] = {}
    playout = Playout(
        sink=sink or build_sink(settings, clock),
        pa=PaAdapter(hardware),
        clock=clock,
        policy=PlayoutPolicy(
            tz=settings.tz,
            lead_in_s=settings.gpio.lead_in_s,
            tail_s=settings.gpio.tail_s,
            quiet_hours=settings.announcements.quiet_hours,
            daily_cap=settings.announcements.daily_cap,
        ),
        on_log=lambda b: holder_ann["a"].on_broadcast(b),
        on_state=lambda st: holder_ann["a"].publish_state(st),
        played_today=lambda day: holder_ann["a"].played_today(day),
    )
    a = settings.audio
    announcements = Announcements(
        settings,
        store,
        clock,
        engine_factory=engine_factory
        or (
            lambda: make_engine(
                a.tts_engine, **({"model": a.piper_model} if a.tts_engine == "piper" else {})
            )
        ),
        playout=playout,
        publish=publish,
        clock_synced=synced,
    )
    holder_ann["a"] = announcements
    retention = Retention(
        settings.retention,
        store,
        ingest_conn=ingest.conn,
        clock=clock,
        render_dir=announcements.cache_dir,
        render_lock=announcements.render_lock,
    )

    notifier = Notifier(settings.notify, clock=clock, tz=settings.tz, outbox=Outbox(store))
    outputs = (
        SwitchedOutputs(settings.gpio.outputs, pin_factory=pin_factory)
        if settings.gpio.enabled and settings.gpio.outputs
        else None
    )
    if outputs is not None:
        atexit.register(outputs.close)

    def notify(to: Any, data: dict[str, Any]) -> list[str]:
        channels = settings.notify.resolve(to)
        if channels:
            notifier.send(
                Notification(
                    incident=data["incident"],
                    title=data["title"],
                    body=data["body"],
                    severity=data["severity"],
                    state=data["state"],
                    at=clock.now(),
                    channels=tuple(channels),
                )
            )
        return channels

    def switch(output: str, seconds: float) -> None:
        if outputs is None:
            raise ConfigError("gpio", "gpio.outputs", f"no output {output!r}: GPIO is off")
        outputs.pulse(output, seconds)

    effects = Effects(
        announce=announcements.command,
        notify=notify,
        switch=switch,
        publish=lambda t, p, r, q: _discard(link.publish(t, p, qos=q, retain=r)),
        groups={
            **{g: v for g, v in settings.notify.groups.items()},
            **{c: [c] for c in settings.notify.channels},
        },
        outputs=tuple(settings.gpio.outputs),
        zones=tuple(settings.gpio.zones),
    )

    def device_view(device_id: str) -> DeviceView | None:
        d = ingest.device(device_id)
        return _view(settings, d) if d is not None else None

    def status_of(device_id: str) -> str | None:
        h = monitor.devices.get(device_id)
        return h.status if h else None

    rules = RulesEngine(store, clock, settings.tz, effects, device=device_view, status_of=status_of)
    if settings.rules_file is not None:
        if settings.rules_file.exists():
            rules.seed(load_rules_file(settings.rules_file))
        else:
            log.warning("rules_file %s does not exist: no ready-made rules", settings.rules_file)
    rules.reload()

    def on_ingest(stored: list[Stored], changes: list[Change]) -> None:
        # Writer thread: hand over, never render or wait here.
        for s in stored:
            ev = s.event
            if isinstance(ev, AnnounceCommand):
                announcements.command(dict(ev.body), f"mqtt:{s.topic}")
            elif isinstance(ev, Reading | Availability):
                d = ingest.device(ev.device_id)
                if d is not None and ha.needs(d.id, d.metrics, native=d.source == "native"):
                    ha.device(_info(d), d.metrics if isinstance(ev, Reading) else None)
        for c in changes:
            if isinstance(c, StatusChange):
                ha.health(c.device_id, c.status)
        ha.drain()
        rules.observe(stored, changes)

    ingest.listeners.append(on_ingest)
    if hardware is not None and hardware.buttons is not None:
        # gpiozero's callback threads: both hand over at once.
        hardware.buttons.when_emergency = announcements.emergency_button
        hardware.buttons.when_stop = lambda: _discard(playout.stop_current("stop button"))
    if hardware is not None:
        hardware.amplifier.when_capped = lambda: _discard(
            playout.stop_current("amplifier on-time cap")
        )
    return Hub(
        settings=settings,
        clock=clock,
        store=store,
        users=Users(store),
        monitor=monitor,
        ingest=ingest,
        mqtt=link,
        retention=retention,
        playout=playout,
        announcements=announcements,
        hardware=hardware,
        notifier=notifier,
        rules=rules,
        outputs=outputs,
        discovery=ha,
    )
