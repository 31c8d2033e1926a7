"""Composition root: build the hub's parts in the order of the flow, stop them in reverse."""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from audio.sinks import Sink, make_sink
from audio.tts import EspeakNG, TTSEngine
from audio.voices import VoiceEngine, VoiceFolder
from devices.adapters import Router, make_adapter
from devices.events import AnnounceCommand, Availability, Reading
from devices.gpio import GpioConfig, PaHardware, SwitchedOutputs
from hub import __version__
from hub.automation.actions import DeviceView, Effects, SpokenValues
from hub.automation.notification import Notification
from hub.automation.notify import Notifier
from hub.automation.notify_status import NotifyStatus
from hub.automation.rule_book import RuleBook
from hub.automation.rule_model import load_rules_file
from hub.automation.rules import RulesEngine
from hub.automation.sms import EmergencySms
from hub.broadcast.announcements import Announcements
from hub.broadcast.clusters import Clusters, cluster_sink, open_cluster_alerts, roster_from
from hub.broadcast.hub_alerts import HubAlerts
from hub.broadcast.live import LiveBroadcasts
from hub.broadcast.playout import PaAdapter, Playout, PlayoutPolicy
from hub.broadcast.recovery import recover_interrupted
from hub.broadcast.rendering import Renderer
from hub.broadcast.schedule import Scheduler
from hub.clock import Clock, SystemClock, clock_synced
from hub.errors import ConfigError
from hub.events import (
    AnnouncementChanged,
    BroadcastLogged,
    BrokerLinkChanged,
    Dispatcher,
    MessagesStored,
    PlayoutStateChanged,
    StatusChange,
)
from hub.ingest.discovery import DeviceInfo, HomeAssistantMirror
from hub.ingest.monitor import Monitor
from hub.ingest.mqtt import MqttLink
from hub.ingest.urgency import WatchedMetrics
from hub.ingest.writer import DeviceRow, Ingest
from hub.mirror import MqttMirror
from hub.services.alerts import Alerts
from hub.services.clock import ClockTrust
from hub.services.devices import Devices
from hub.services.feedback import Feedback
from hub.services.lexicon import lexicon_source
from hub.services.users import Users
from hub.settings import Settings
from hub.store import Store
from hub.store.announcements import AnnouncementTable, BroadcastLog
from hub.store.outbox import Outbox
from hub.store.retention import Retention
from hub.store.space import StorageState
from hub.watchdog import Probe, Watchdog

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
    events: Dispatcher
    store: Store
    users: Users
    feedback: Feedback
    devices: Devices
    alerts: Alerts
    monitor: Monitor
    ingest: Ingest
    mqtt: MqttLink
    retention: Retention
    playout: Playout
    announcements: Announcements
    scheduler: Scheduler
    hardware: PaHardware | None
    notifier: Notifier
    rules: RulesEngine
    outputs: SwitchedOutputs | None
    discovery: HomeAssistantMirror
    #: Full or failing writes, as every writer reports them (health, 507/503, disk_full).
    storage: StorageState
    #: Whether the clock can be believed (NTP, an RTC, the head's phone).
    clock_trust: ClockTrust
    rule_book: RuleBook = field(init=False)
    _timer_stop: threading.Event = field(default_factory=threading.Event)
    _timer: threading.Thread | None = None
    started: bool = False
    #: systemd's watchdog (under ``Type=notify``), pinged while the loops make progress.
    watchdog: Watchdog | None = None
    #: Remote speaker clusters over Snapcast (``[clusters]``; None when off).
    clusters: Clusters | None = None
    #: Live broadcasts from the head's phone (``[live]``).
    live: LiveBroadcasts | None = None

    def __post_init__(self) -> None:
        self.rule_book = RuleBook(self.store, self.clock, self.rules, reload=self.reload_rules)

    def start(self) -> None:
        self.notifier.start()
        # The writer acknowledges a batch to the broker only after its commit.
        self.ingest.start(ack=self.mqtt.ack_many)
        self.mqtt.start()
        self.playout.start()
        if self.clusters is not None:
            self.clusters.start()
        self.scheduler.start()
        self._timer_stop.clear()
        self._timer = threading.Thread(target=self._timers, name="hub-timers", daemon=True)
        self._timer.start()
        threading.Thread(target=self.prerender, name="prerender", daemon=True).start()
        self.watchdog = Watchdog.from_env(
            {
                "ingest writer": Probe(self.ingest.call),
                "scheduler": lambda: self.announcements.table.looked_at,
                "playout": lambda: self.playout.heartbeat,
            }
        )
        if self.watchdog is not None:
            self.watchdog.start()
        self.started = True
        log.info("hub started for site %s", self.settings.site)

    def stop(self) -> None:
        """Reverse order, amplifier off first: cut the sound, stop taking messages, let
        the writer finish, close the file."""
        if self.watchdog is not None:
            self.watchdog.stop()  # STOPPING=1: systemd waits for the exit, no more pings
            self.watchdog = None
        if self.live is not None:
            self.live.stop_all()
        self.playout.stop()
        if self.clusters is not None:
            self.clusters.stop()
        if self.hardware is not None:
            self.hardware.safe_shutdown()
        if self.outputs is not None:
            self.outputs.close()
        self.scheduler.stop()
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
                # In steps, each queued behind the messages waiting: no stall of ingest.
                self.ingest.call(lambda: self.retention.sweep_in_steps(self.ingest.call))
                threading.Thread(target=self.prerender, name="prerender", daemon=True).start()

    def reload_rules(self) -> None:
        """After an API change: the engine's state lives in the writer thread."""
        self.ingest.call_wait(self.rules.reload)
        threading.Thread(target=self.prerender, name="prerender", daemon=True).start()

    def prerender(self) -> None:
        """Emergency announcements the rules may make, rendered before they are needed."""
        devices = self.ingest.devices()
        views = [_view(self.devices, d) for d in devices]
        readings = {d.id: d.metrics for d in devices}
        self.announcements.prerender(self.rules.emergency_texts(views, readings))


def _view(devices: Devices, d: DeviceRow) -> DeviceView:
    # What a technician set on the device page wins over the config file's name and zone.
    return devices.view(d.id, d.kind, d.name, d.metrics)


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
    events = Dispatcher()
    store = Store(settings.db_path)
    router = build_router(settings)
    monitor = Monitor(settings.health, settings.tz)
    # The hub's own alerts, and the one state of the storage every writer reports to
    # (it raises the disk_full alert once and clears it once).
    hub_alerts = HubAlerts(store, clock, events)
    storage = StorageState(store, settings.data_dir, clock, hub_alerts)
    # Is the clock right? NTP (``synced``), an RTC read at boot, the head's phone this boot.
    clock_trust = ClockTrust(settings.clock, store, clock, ntp=synced)
    ingest = Ingest(settings, store, router, monitor, clock, events=events, storage=storage)

    def filters_known(digest: str) -> bool:
        # paho thread: a read through that thread's own connection.
        known = store.get_meta("mqtt_filters") == digest
        if not known:
            store.set_meta("mqtt_filters", digest)
        return known

    link = MqttLink(
        settings,
        filters=router.filters,
        on_messages=ingest.submit,
        now=lambda: clock.now().timestamp(),
        filters_known=filters_known,
        on_state=lambda up: events.publish(BrokerLinkChanged(up)),
    )

    def publish(topic: str, payload: bytes, retain: bool) -> None:
        link.publish(topic, payload, qos=1, retain=retain)

    ha = HomeAssistantMirror(
        settings.site,
        publish,
        version=__version__,
        backlog=link.unacknowledged,
        max_configs=settings.ingest.max_discovery_configs,
    )
    hardware = build_hardware(settings, pin_factory)
    if hardware is not None:
        atexit.register(hardware.safe_shutdown)  # amplifier off on every exit path

    # The broadcast stage: one table (its write generation keys the API's cache), the
    # as-run log, the renderer, the playout, the hub's own alerts, the service, the
    # scheduler. Each gets what it needs at construction; they talk through ``events``.
    announcement_rows = AnnouncementTable(store, settings.tz)
    as_run = BroadcastLog(announcement_rows)
    devices = Devices(store, settings, clock, ingest.stats)
    # Remote clusters (Snapcast): their roster is the speaker devices; what a broadcast
    # reached goes to its as-run row, a cluster that missed one raises a hub alert.
    c = settings.clusters
    clusters = (
        Clusters(
            c,
            site=settings.site,
            roster=roster_from(devices),
            publish=publish,
            alerts=hub_alerts,
            open_alerts=open_cluster_alerts(store),
        )
        if c.enabled
        else None
    )
    if sink is None:
        sink = build_sink(settings, clock)
        if c.enabled:
            sink = cluster_sink(c, sink, clock.now)
    playout = Playout(
        sink=sink,
        pa=PaAdapter(hardware),
        clock=clock,
        policy=PlayoutPolicy(
            tz=settings.tz,
            lead_in_s=settings.gpio.lead_in_s,
            tail_s=settings.gpio.tail_s,
            quiet_hours=settings.announcements.quiet_hours,
            daily_cap=settings.announcements.daily_cap,
        ),
        events=events,
        as_run=as_run,
        clusters=clusters,
    )
    a = settings.audio
    # An emergency's live value not spoken in time: said on the rule's firing line.
    values = SpokenValues(store, ingest.call)
    renderer = Renderer(
        settings,
        engine_factory
        or (
            lambda: VoiceEngine(
                EspeakNG(),
                VoiceFolder(settings.data_dir / "voices"),
                default_voice=a.voice,
                fallback_voice=a.fallback_voice,
                timeout_s=a.piper_timeout_s,
            )
        ),
        lexicon=lexicon_source(store),
        unspoken=values.unspoken,
    )
    announcements = Announcements(
        settings,
        store,
        clock,
        table=announcement_rows,
        as_run=as_run,
        renderer=renderer,
        playout=playout,
        alerts=hub_alerts,
        events=events,
    )
    live = (
        LiveBroadcasts(
            settings, store, clock, table=announcement_rows, playout=playout, events=events
        )
        if settings.live.enabled
        else None
    )
    scheduler = Scheduler(
        settings,
        clock,
        table=announcement_rows,
        as_run=as_run,
        playout=playout,
        alerts=hub_alerts,
        events=events,
        clock_synced=clock_trust.synced,
        storage=storage,
    )
    retention = Retention(
        settings.retention,
        store,
        ingest_conn=ingest.conn,
        clock=clock,
        render_dir=renderer.cache_dir,
        render_lock=renderer.render_lock,
        clock_synced=clock_trust.synced,
    )

    # What became of each notification: on the rule's firing, and the notify_undelivered
    # alert (the firing is logged by the writer after its actions: updates queue behind it).
    notify_status = NotifyStatus(store, hub_alerts, handover=ingest.call)
    notifier = Notifier(
        settings.notify,
        clock=clock,
        tz=settings.tz,
        outbox=Outbox(store),
        on_result=notify_status.delivered,
    )
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
        else:
            notify_status.unconfigured(data["incident"], data["state"], list(to))
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
        values=values,
    )

    def device_view(device_id: str) -> DeviceView | None:
        d = ingest.device(device_id)
        return _view(devices, d) if d is not None else None

    def status_of(device_id: str) -> str | None:
        h = monitor.devices.get(device_id)
        return h.status if h else None

    rules = RulesEngine(store, clock, settings.tz, effects, device=device_view, status_of=status_of)
    # A reading a rule watches is committed (and acted on) at once, not with its group.
    ingest.watch(WatchedMetrics(rules))
    if settings.rules_file is not None:
        if settings.rules_file.exists():
            rules.seed(load_rules_file(settings.rules_file))
        else:
            log.warning("rules_file %s does not exist: no ready-made rules", settings.rules_file)
    rules.reload()

    # Every subscription, once, in the order each event's handlers must run.
    events.subscribe(BrokerLinkChanged, _discovery_on_link(ha, ingest))
    events.subscribe(MessagesStored, _commands(announcements))
    events.subscribe(MessagesStored, _discovery_on_messages(ha, ingest))
    events.subscribe(MessagesStored, rules.on_messages)
    # The service first: a failed broadcast's alert, then the announcement again.
    events.subscribe(BroadcastLogged, announcements.on_broadcast_logged)
    events.subscribe(AnnouncementChanged, scheduler.on_announcement_changed)
    MqttMirror(settings.site, publish).subscribe(events)
    # Emergencies by SMS to the households of their zones (when an sms channel has them):
    # what the loudspeakers say reaches a phone even with the internet down.
    sms = EmergencySms(
        settings.notify, notifier, announcement_rows.row, clock=clock, village=settings.village
    )
    events.subscribe(PlayoutStateChanged, sms.on_playout_state)
    events.subscribe(BroadcastLogged, sms.on_broadcast_logged)

    if hardware is not None and hardware.buttons is not None:
        # gpiozero's callback threads: both hand over at once.
        hardware.buttons.when_emergency = announcements.emergency_button
        hardware.buttons.when_stop = lambda: _discard(playout.stop_current("stop button"))
    if hardware is not None:
        hardware.amplifier.when_capped = lambda: _discard(
            playout.stop_current("amplifier on-time cap")
        )
    # What a dead hub left on air: logged interrupted, replayed once as the settings say
    # (before the scheduler's own recovery, which then finds the occurrence logged).
    a_set = settings.announcements
    recover_interrupted(
        playout,
        as_run,
        emergency=a_set.replay_interrupted_emergency,
        others_within_s=a_set.grace_s if a_set.replay_interrupted else None,
    )
    return Hub(
        settings=settings,
        clock=clock,
        events=events,
        store=store,
        users=Users(store, http=settings.http, clock=clock),
        feedback=Feedback(store, clock=clock),
        devices=devices,
        alerts=Alerts(store, clock, events),
        monitor=monitor,
        ingest=ingest,
        mqtt=link,
        retention=retention,
        playout=playout,
        announcements=announcements,
        scheduler=scheduler,
        hardware=hardware,
        notifier=notifier,
        rules=rules,
        outputs=outputs,
        discovery=ha,
        storage=storage,
        clock_trust=clock_trust,
        clusters=clusters,
        live=live,
    )


# -- subscribers that join two stages (writer thread, after each commit) ----------------------


def _commands(announcements: Announcements) -> Callable[[MessagesStored], None]:
    """``cmd/announce`` from the broker: handed to the service's worker, never rendered here."""

    def handle(ev: MessagesStored) -> None:
        for s in ev.stored:
            if isinstance(s.event, AnnounceCommand):
                announcements.command(dict(s.event.body), f"mqtt:{s.topic}")

    return handle


def _discovery_on_messages(
    ha: HomeAssistantMirror, ingest: Ingest
) -> Callable[[MessagesStored], None]:
    """New devices and metrics, and health changes, for Home Assistant."""

    def handle(ev: MessagesStored) -> None:
        for s in ev.stored:
            e = s.event
            if isinstance(e, Reading | Availability):
                d = ingest.device(e.device_id)
                if d is not None and ha.needs(d.id, d.metrics, native=d.source == "native"):
                    ha.device(_info(d), d.metrics if isinstance(e, Reading) else None)
        for c in ev.changes:
            if isinstance(c, StatusChange):
                ha.health(c.device_id, c.status)
        ha.drain()

    return handle


def _discovery_on_link(
    ha: HomeAssistantMirror, ingest: Ingest
) -> Callable[[BrokerLinkChanged], None]:
    """paho's thread: after each (re)connect every device's configs are queued again."""

    def handle(ev: BrokerLinkChanged) -> None:
        if ev.connected:
            ha.connected([_info(d) for d in ingest.devices()])

    return handle
