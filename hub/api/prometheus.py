"""The hub's counters as a Prometheus registry, for GET /metrics (:mod:`hub.api.metrics`).

Imported at the first scrape, not at start-up: prometheus_client takes nearly 1 MB of
resident memory, and nothing counts through it (the collector reads the hub's own
counters at scrape time), so a hub that is never scraped does not need it.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hub.app import Hub


class HubCollector(Collector):
    """Reads the hub's own counters at scrape time: nothing is counted twice."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        st = self.hub.ingest.stats
        msgs = CounterMetricFamily(
            "langso_mqtt_messages", "MQTT messages by outcome", labels=["outcome"]
        )
        for outcome, value in (
            ("received", st.received),
            ("stored", st.stored),
            ("duplicate", st.duplicates),
            ("ignored", st.ignored),
            ("dead_letter", st.dead_letters),
        ):
            msgs.add_metric([outcome], value)
        yield msgs
        dead = CounterMetricFamily(
            "langso_dead_letters", "Dead letters by reason", labels=["reason"]
        )
        for reason, value in sorted(st.dead_by_reason.items()):
            dead.add_metric([reason], value)
        yield dead
        yield CounterMetricFamily(
            "langso_internal_errors", "Exceptions caught while handling", value=st.internal_errors
        )
        yield CounterMetricFamily(
            "langso_commit_failures", "Failed database commits", value=st.commit_failures
        )
        yield CounterMetricFamily("langso_ingest_batches", "Committed batches", value=st.batches)
        yield GaugeMetricFamily(
            "langso_ingest_pending",
            "Messages waiting for the writer",
            value=self.hub.ingest.pending,
        )
        yield GaugeMetricFamily(
            "langso_mqtt_connected",
            "1 when connected to the broker",
            value=1 if self.hub.mqtt.connected else 0,
        )
        devices = GaugeMetricFamily("langso_devices", "Devices by status", labels=["status"])
        for status, n in self.hub.devices.status_counts().items():
            devices.add_metric([status], n)
        yield devices
        yield GaugeMetricFamily(
            "langso_alerts_open", "Open alerts", value=self.hub.alerts.open_count()
        )


def new_registry(hub: Hub) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(HubCollector(hub))
    return reg
