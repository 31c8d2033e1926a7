"""Composition root: build the hub's parts in the order of the flow, stop them in reverse."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from devices.adapters import Router, make_adapter
from hub.clock import Clock, SystemClock
from hub.ingest import Ingest
from hub.monitor import Monitor
from hub.mqtt import MqttLink
from hub.retention import Retention
from hub.settings import Settings
from hub.store import Store
from hub.users import Users

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
    _timer_stop: threading.Event = field(default_factory=threading.Event)
    _timer: threading.Thread | None = None
    started: bool = False

    def start(self) -> None:
        self.ingest.start()
        self.mqtt.start()
        self._timer_stop.clear()
        self._timer = threading.Thread(target=self._timers, name="hub-timers", daemon=True)
        self._timer.start()
        self.started = True
        log.info("hub started for site %s", self.settings.site)

    def stop(self) -> None:
        """Reverse order: stop taking messages, let the writer finish, close the file."""
        self._timer_stop.set()
        if self._timer:
            self._timer.join(5)
        self.mqtt.stop()
        self.ingest.stop()
        self.store.close()
        self.started = False

    def _timers(self) -> None:
        # Only queues work: the jobs run in the ingest writer thread, where all writes are.
        h = self.settings.health.check_interval_s
        sweep_every = self.settings.retention.sweep_interval_s
        next_sweep = self.clock.monotonic() + min(60.0, sweep_every)
        while not self._timer_stop.wait(h):
            self.ingest.call(self.ingest.tick)
            if self.clock.monotonic() >= next_sweep:
                next_sweep = self.clock.monotonic() + sweep_every
                self.ingest.call(self.retention.sweep)


def build_hub(settings: Settings, *, clock: Clock | None = None) -> Hub:
    clock = clock or SystemClock()
    store = Store(settings.db_path)
    router = build_router(settings)
    monitor = Monitor(settings.health, settings.tz)
    holder: dict[str, MqttLink] = {}

    def publish(topic: str, payload: bytes, retain: bool) -> None:
        holder["mqtt"].publish(topic, payload, qos=1, retain=retain)

    def ack(mid: int, qos: int) -> None:
        holder["mqtt"].ack(mid, qos)

    ingest = Ingest(settings, store, router, monitor, clock, ack=ack, publish=publish)

    def filters_known(digest: str) -> bool:
        # paho thread: a read through that thread's own connection.
        known = store.get_meta("mqtt_filters") == digest
        if not known:
            store.set_meta("mqtt_filters", digest)
        return known

    link = MqttLink(
        settings,
        filters=router.filters,
        on_message=ingest.submit,
        now=lambda: clock.now().timestamp(),
        filters_known=filters_known,
    )
    holder["mqtt"] = link
    retention = Retention(settings.retention, store, ingest_conn=ingest.conn, clock=clock)
    return Hub(
        settings=settings,
        clock=clock,
        store=store,
        users=Users(store),
        monitor=monitor,
        ingest=ingest,
        mqtt=link,
        retention=retention,
    )
