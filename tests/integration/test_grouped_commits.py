"""Readings grouped into one commit every ``ingest.commit_interval_s``, and what must not
wait for it: a button press, a reading a rule watches (stored and acted on at once)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from hub.ingest.urgency import WatchedMetrics
from tests.broker import Broker, free_port
from tests.hubtest import InProcessHub, hub_settings, wait_for
from tests.storedata import readings_of

pytestmark = pytest.mark.broker

INTERVAL_S = 20.0  # far longer than any wait below: what commits, commits at once


@pytest.fixture(scope="module")
def village(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessHub]:
    dead = free_port()  # a notification endpoint that is down: the firing is logged anyway
    settings = hub_settings(
        broker,
        tmp_path_factory.mktemp("grouped"),
        LANGSO_INGEST__COMMIT_INTERVAL_S=str(INTERVAL_S),
        LANGSO_NOTIFY__CHANNELS=json.dumps(
            {"down": {"kind": "webhook", "url": f"http://127.0.0.1:{dead}/", "timeout_s": 1}}
        ),
        LANGSO_NOTIFY__GROUPS=json.dumps({"technicians": ["down"], "head": ["down"]}),
    )
    v = InProcessHub(settings)
    v.hub.ingest.watch(WatchedMetrics(v.hub.rules))
    yield v
    v.stop()


def pub(broker: Broker, topic: str, body: object) -> None:
    args = ["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-q", "1", "-t", topic]
    subprocess.run(
        [*args, "-m", json.dumps(body)],
        check=True,
        timeout=10,
    )


def stored(v: InProcessHub, device: str) -> list[dict[str, object]]:
    return readings_of(v.hub.store.connection(), device)


def rule(v: InProcessHub, rule_id: str, trigger: dict[str, object]) -> None:
    body = {
        "id": rule_id,
        "name": rule_id,
        "trigger": trigger,
        "actions": [{"type": "notify", "to": ["technicians"], "template": "{device}"}],
    }
    r = v.http("technician").post("/api/rules", json=body)
    assert r.status_code == 201, r.text


def firings(v: InProcessHub, rule_id: str) -> list[dict[str, object]]:
    got: list[dict[str, object]] = v.http("technician").get(f"/api/rules/{rule_id}/firings").json()
    return got


def test_readings_wait_for_the_interval_and_a_button_press_commits_at_once(
    village: InProcessHub, broker: Broker
) -> None:
    v, site = village, village.settings.site
    rule(v, "stop-pressed", {"type": "button", "action": "stop"})
    state = f"village/{site}/sensor/wl-g/state"
    pub(broker, state, {"battery_pct": 80})  # a new device: at once
    wait_for(lambda: len(stored(v, "wl-g")) == 1, 5, "the new device's first reading")
    received = v.hub.ingest.stats.received
    pub(broker, state, {"battery_pct": 79})
    wait_for(lambda: v.hub.ingest.stats.received > received, 5, "the reading received")
    # Received, decoded, held: neither stored nor acknowledged until the group commits.
    assert len(stored(v, "wl-g")) == 1 and v.hub.ingest.pending >= 1
    pub(broker, f"village/{site}/button/b-1/event", {"action": "stop"})
    wait_for(lambda: firings(v, "stop-pressed"), 5, "the button's rule fired")
    assert [r["battery_pct"] for r in stored(v, "wl-g")] == [80, 79]


def test_a_reading_a_rule_watches_is_stored_and_acted_on_at_once(
    village: InProcessHub, broker: Broker
) -> None:
    v, site = village, village.settings.site
    state = f"village/{site}/sensor/wl-w/state"
    pub(broker, state, {"water_level_cm": 100})
    wait_for(lambda: len(stored(v, "wl-w")) == 1, 5, "the new device's first reading")
    rule(v, "high-water", {"type": "metric", "metric": "water_level_cm", "op": ">", "value": 150})
    pub(broker, state, {"water_level_cm": 180})
    fired = wait_for(lambda: firings(v, "high-water"), 5, "the rule fired on the reading")
    assert fired[0]["cause"]["value"] == 180
    assert [r["water_level_cm"] for r in stored(v, "wl-w")] == [100, 180]
