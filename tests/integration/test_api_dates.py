"""Times at the edges of the calendar, through real HTTP: a 422 with a reason, never a 500.

Request bodies (``start_at``, ``expires_at``, ``exdates``) are read in the village's time
zone and moved to UTC, the recurrence is expanded in local time, and the query times
(``since``, ``until``) become epoch seconds: each of those steps overflowed or took
nonsense (year 0, year 10000, NaN) as a time. A real hub (real broker, SQLite, espeak-ng)
on a fake clock, served by uvicorn on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from hub.clock import FakeClock
from tests.broker import Broker
from tests.hubtest import InProcessHub, hub_settings

pytestmark = pytest.mark.broker

T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)

#: Times Python's datetime holds as written, but not once moved by a zone (to or from the
#: village's UTC+7, or by their own offset), and one the hub has no business scheduling.
EDGE_TIMES = [
    "0001-01-01T00:00:00",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-12:00",
    "9999-12-31T23:59:59",
]

#: ``since`` / ``until`` values that are no time: each was taken as one (an empty list).
BAD_QUERY_TIMES = ["nan", "inf", "-inf", "1e400", "1e20", "-1e20", "0001-01-01T00:00:00"]


@pytest.fixture(scope="module")
def hub(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessHub]:
    h = InProcessHub(hub_settings(broker, tmp_path_factory.mktemp("dates")), FakeClock(T0))
    yield h
    h.stop()


def fresh(hub: InProcessHub, role: str) -> httpx.Client:
    """A client of its own: a 500 closes the connection, which would fail the next case."""
    return httpx.Client(
        base_url=hub.url, headers={"Authorization": f"Bearer {hub.token(role)}"}, timeout=30
    )


def post(hub: InProcessHub, body: dict[str, Any]) -> httpx.Response:
    with fresh(hub, "head") as c:
        return c.post("/api/announcements", json={"title": "Họp thôn", "text": "Họp", **body})


def assert_refused(r: httpx.Response, field: str) -> None:
    assert r.status_code == 422, (r.status_code, r.text[:300])
    detail = r.json()["detail"]
    assert isinstance(detail, str), detail
    assert field in detail, detail
    assert "out of range" in detail, detail


@pytest.mark.parametrize("value", EDGE_TIMES)
@pytest.mark.parametrize("field", ["start_at", "expires_at", "exdates"])
def test_announcement_times_at_the_calendars_edge_are_refused_with_a_reason(
    hub: InProcessHub, field: str, value: str
) -> None:
    body: dict[str, Any] = {field: [value] if field == "exdates" else value}
    if field == "exdates":
        body.update(start_at="2026-12-02T19:30:00", rrule="FREQ=DAILY")
    assert_refused(post(hub, body), field)


def test_a_recurring_announcement_starting_at_the_calendars_edge_is_refused(
    hub: InProcessHub,
) -> None:
    r = post(hub, {"start_at": "9999-12-31T23:00:00", "rrule": "FREQ=HOURLY"})
    assert_refused(r, "start_at")
    # The edge of what is allowed still schedules, and says when it plays.
    ok = post(hub, {"start_at": "2199-12-31T23:00:00", "rrule": "FREQ=YEARLY"})
    assert ok.status_code == 201, ok.text[:300]
    assert ok.json()["next_run"] == "2199-12-31T16:00:00Z"


@pytest.mark.parametrize("field", ["start_at", "expires_at", "exdates"])
def test_changing_an_announcement_to_a_time_out_of_range_is_refused(
    hub: InProcessHub, field: str
) -> None:
    made = post(hub, {"start_at": "2026-12-02T19:30:00", "rrule": "FREQ=DAILY"})
    assert made.status_code == 201, made.text[:300]
    value = "0001-01-01T00:00:00"
    with fresh(hub, "head") as c:
        r = c.patch(
            f"/api/announcements/{made.json()['id']}",
            json={field: [value] if field == "exdates" else value},
        )
    assert_refused(r, field)


@pytest.mark.parametrize("value", BAD_QUERY_TIMES)
@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/broadcasts", "since"),
        ("/api/events", "since"),
        ("/api/dead-letters", "since"),
        ("/api/devices/ap-1/metrics", "since"),
        ("/api/devices/ap-1/metrics", "until"),
    ],
)
def test_query_times_that_are_no_time_are_refused_with_a_reason(
    hub: InProcessHub, path: str, name: str, value: str
) -> None:
    with fresh(hub, "technician") as c:
        r = c.get(path, params={name: value, "name": "clients"})
        # Inside the range, the same parameter is still a time (or the device is unknown).
        ok = c.get(path, params={name: "2026-12-01T07:00:00", "name": "clients"})
    assert ok.status_code == (404 if "devices" in path else 200), ok.text[:300]
    assert r.status_code == 422, (r.status_code, r.text[:300])
    detail = r.json()["detail"]
    assert detail.startswith(f"{name}: "), detail
    assert "out of range" in detail and "ISO 8601" in detail, detail
