"""The dead letters' reasons in kinds a technician acts on (hub/store/dead_letters.py):
every reason the adapters, the limits and the writer give has a kind (none falls to
"other"), and the page's SQL filter keeps exactly the rows of a kind."""

from __future__ import annotations

import sqlite3

import pytest

from devices.adapters import Router, make_adapter
from devices.events import DecodeError, Reading
from hub.ingest.limits import RETAINED_COMMAND_REASON, cap_names
from hub.store import dead_letters as repo

SITE = "thon-dong"
ROUTER = Router(
    [
        make_adapter("native", site=SITE),
        make_adapter("collectd", site=SITE),
        make_adapter("tasmota", site=SITE),
        make_adapter("zigbee2mqtt", site=SITE),
        make_adapter("esphome", site=SITE),
    ]
)
N = f"village/{SITE}"
#: (topic, payload, the kind its refusal must have): one or more per DecodeError raised.
BAD: list[tuple[str, bytes, str]] = [
    (f"{N}/ap/ap-1/state", b"\xff\xfe", "not_text"),
    (f"{N}/ap/ap-1/state", b"", "empty"),
    (f"{N}/ap/ap-1/state", b"{clients: 3", "not_json"),
    (f"{N}/ap/ap-1/state", b"[1, 2]", "not_object"),
    (f"{N}/ap/ap-1/state", b'{"clients": "ba"}', "bad_value"),
    (f"{N}/ap/ap-1/state", b'{"clients": 1e999}', "bad_value"),
    (f"{N}/ap/ap-1/state", b'{"ssid": 5}', "bad_value"),
    (f"{N}/ap/ap-1/state", '{"ts": "hôm qua"}'.encode(), "bad_time"),
    (f"{N}/ap/ap-1/state", b'{"ts": -5}', "bad_time"),
    (f"{N}/ap/ap-1/status", b"up", "bad_status"),
    (f"{N}/ap/bad id!/state", b"{}", "bad_device_id"),
    (f"{N}/ap", b"{}", "unknown_topic"),
    (f"{N}/toaster/t-1/status", b"online", "unknown_kind"),
    (f"{N}/button/b-1/event", b'{"action": "dance"}', "bad_value"),
    (f"{N}/button/b-1/event", b'{"action": "announce", "template": 3}', "bad_value"),
    ("collectd/ap-2/interface-wlan0/if_octets", b"x", "bad_value"),
    ("collectd/ap-2/interface-wlan0/if_octets", b"abc:1:2", "bad_value"),
    ("collectd/ap-2/interface-wlan0/if_octets", b"1700000000:x:2", "bad_value"),
    ("collectd/ap-2/interface-wlan0/if_octets", b"1700000000:1", "bad_value"),
    ("collectd/ap-2/cpu-0", b"1700000000:1", "unknown_topic"),
    ("tele/sonoff/SENSOR", b'{"AM2301": {"Temperature": 1e999}}', "bad_value"),
    ("tele/sonoff/POWER", b"1e999", "bad_value"),
    ("tele/sonoff/INFO1", b'{"Info1": 3}', "bad_value"),
    ("tele/sonoff/LWT", b"maybe", "bad_status"),
    ("zigbee2mqtt/Cảm biến cửa", b"ON", "not_json"),
    ("zigbee2mqtt/Cảm biến cửa", b"[1]", "not_object"),
    ("zigbee2mqtt/Cảm biến cửa/availability", b'{"state": "sleepy"}', "bad_status"),
    ("zigbee2mqtt/!!!", b"{}", "bad_device_id"),
    ("esp-bep/sensor/nhiet_do/state", "nóng".encode(), "bad_value"),
    ("esp-bep/binary_sensor/cua/state", b"OPEN", "bad_value"),
]


def refusal(topic: str, payload: bytes) -> str:
    with pytest.raises(DecodeError) as caught:
        ROUTER.parse(topic, payload)
    return str(caught.value)


@pytest.mark.parametrize(("topic", "payload", "kind"), BAD)
def test_every_refusal_of_the_adapters_has_its_kind(topic: str, payload: bytes, kind: str) -> None:
    reason = refusal(topic, payload)
    assert repo.reason_kind(reason) == kind, reason


def _limits_and_writer() -> list[str]:
    capped = cap_names(Reading("native", "ap-1", "ap", {"a": 1.0, "b": 2.0}, None, {}), {}, {}, 1)
    assert capped is not None
    return [
        RETAINED_COMMAND_REASON,
        capped[1],
        # hub/ingest/writer.py words these two itself
        "payload too large: 20000 bytes > 16384",
        "internal error: KeyError: 'x'",
    ]


def test_the_limits_and_the_writer_refusals_have_their_kinds() -> None:
    kinds = [repo.reason_kind(r) for r in _limits_and_writer()]
    assert kinds == ["retained_command", "too_many_names", "too_large", "internal"]
    assert repo.reason_kind("something new") == "other"


def test_the_filter_keeps_the_rows_of_a_kind_and_the_paging_walks_from_the_right_row() -> None:
    conn = sqlite3.connect(":memory:")
    conn.row_factory = sqlite3.Row
    conn.execute(
        "CREATE TABLE dead_letters(id INTEGER PRIMARY KEY, received_at REAL NOT NULL,"
        " topic TEXT NOT NULL, payload BLOB NOT NULL, size INTEGER NOT NULL,"
        " reason TEXT NOT NULL, mid INTEGER, digest BLOB)"
    )
    reasons = [refusal(t, p) for t, p, _ in BAD] + _limits_and_writer() + ["something new"]
    rows = [(1000.0 + i, BAD[i % len(BAD)][0], b"x", 1, r) for i, r in enumerate(reasons)]
    conn.executemany(
        "INSERT INTO dead_letters(received_at, topic, payload, size, reason) VALUES (?,?,?,?,?)",
        rows,
    )
    for kind in repo.KINDS:
        kept = repo.page(conn, repo.Filter(0.0, kind=kind), before=None, limit=1000)
        assert {d.reason for d in kept} == {r for r in reasons if repo.reason_kind(r) == kind}
    # From a time: the rows received then and later, newest first, a page at a time.
    since = 1000.0 + 10
    assert repo.first_id_since(conn, since) == 11
    assert repo.count(conn, repo.Filter(since)) == len(reasons) - 10
    top = repo.page(conn, repo.Filter(since), before=None, limit=5)
    assert [d.id for d in top] == list(range(len(reasons), len(reasons) - 5, -1))
    nxt = repo.page(conn, repo.Filter(since), before=top[-1].id, limit=1000)
    assert nxt[-1].id == 11 and len(top) + len(nxt) == len(reasons) - 10
    # A device by a whole topic level: ap-1 is not ap-10.
    ap1 = repo.page(conn, repo.Filter(0.0, needles=("ap-1",)), before=None, limit=1000)
    assert ap1 and all("/ap-1/" in d.topic + "/" for d in ap1)
    assert repo.first_id_since(conn, 10**9) == len(reasons) + 1
