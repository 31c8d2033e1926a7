"""The hub as a process whose own clock is 400 days ahead (libfaketime, Debian's faketime):
an emergency posted "now" plays (its as-run row and the file sink's record), a scheduled
item waits while no source vouches for the clock, and health and /api/clock say so."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.services.users import Users
from hub.store import Store
from tests.broker import Broker
from tests.hubtest import PASSWORD, HubProcess, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.slow]

SHIFT = timedelta(days=400)


#: libfaketime 0.9.10 (Debian 12) breaks Python 3.11's time.sleep when the monotonic clock
#: is not faked: it moves clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)'s deadline by
#: the offset, and the kernel answers EINVAL (libfaketime issue #426, fixed upstream by
#: leaving monotonic sleeps alone). This shim, preloaded before it, does just that.
MONOTONIC_SLEEP_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int clock_nanosleep(clockid_t id, int flags, const struct timespec *req, struct timespec *rem) {
    if (id == CLOCK_MONOTONIC) {
        return syscall(SYS_clock_nanosleep, id, flags, req, rem) == 0 ? 0 : errno;
    }
    int (*next)(clockid_t, int, const struct timespec *, struct timespec *) =
        dlsym(RTLD_NEXT, "clock_nanosleep");
    return next(id, flags, req, rem);
}
"""


def _need(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing on CI: the Makefile must install it")
    pytest.skip(f"{what} is not installed")


def preload(build: Path) -> str:
    """LD_PRELOAD for a process whose wall clock is shifted and whose monotonic is not."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
    if not found:
        _need("libfaketime (Debian package faketime)")
    cc = shutil.which("cc")
    if cc is None:
        _need("a C compiler (cc)")
    src, shim = build / "monotonic_sleep.c", build / "monotonic_sleep.so"
    src.write_text(MONOTONIC_SLEEP_SHIM)
    subprocess.run([str(cc), "-shared", "-fPIC", "-O2", "-o", str(shim), str(src)], check=True)
    return f"{shim}:{found[0]}"


@pytest.fixture(scope="module")
def shifted(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    data = tmp_path_factory.mktemp("shifted") / "hub"
    store = Store(data / "hub.db")
    Users(store).add("admin1", "admin", PASSWORD, actor="test", now=0)
    store.close()
    hub = HubProcess(broker, data, site="shifted")
    hub.env.update(
        {
            "LD_PRELOAD": preload(data.parent),
            "FAKETIME": f"+{SHIFT.days}d",
            # Shifting the monotonic clock too would make every timed wait last 400 days.
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "LANGSO_ANNOUNCEMENTS__REQUIRE_CLOCK_SYNC": "true",
            "LANGSO_ANNOUNCEMENTS__QUIET_HOURS": "",
            "LANGSO_ANNOUNCEMENTS__EMERGENCY_REPEATS": "1",
            "LANGSO_AUDIO__SINK": "file",
            "LANGSO_AUDIO__FILE_DIR": str(data / "out"),
            "LANGSO_AUDIO__CHIME": "none",
            "LANGSO_GPIO__LEAD_IN_S": "0",
            "LANGSO_GPIO__TAIL_S": "0",
            # This machine's NTP state is not the shifted process's clock; no RTC here;
            # and a hub under test never sets the machine's clock.
            "LANGSO_CLOCK__NTP": "false",
            "LANGSO_CLOCK__RTC_SYSFS": str(data / "no-rtc"),
            "LANGSO_CLOCK__ALLOW_PHONE_SET": "false",
        }
    )
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


def test_an_emergency_plays_and_the_schedule_waits_on_a_shifted_clock(
    shifted: HubProcess,
) -> None:
    hub = shifted
    with httpx.Client(base_url=hub.url, timeout=30) as http:
        r = http.post("/api/auth/token", data={"username": "admin1", "password": PASSWORD})
        assert r.status_code == 200, r.text
        http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

        def hub_now() -> datetime:
            return datetime.fromisoformat(http.get("/api/clock").json()["now"])

        clock = http.get("/api/clock").json()
        assert (clock["source"], clock["synced"], clock["can_set"]) == ("none", False, False)
        ahead = hub_now() - datetime.now(UTC)
        assert abs(ahead - SHIFT) < timedelta(minutes=5), ahead
        health = hub.health()
        assert health["clock_synced"] is False

        later = http.post(
            "/api/announcements",
            json={
                "title": "Họp",
                "text": "Họp thôn.",
                "start_at": (hub_now() + timedelta(seconds=2)).isoformat(),
            },
        )
        assert later.status_code == 201, later.text
        e = http.post(
            "/api/announcements",
            json={
                "title": "Lũ",
                "text": "Nước lên.",
                "category": "emergency",
                "priority": "emergency",
            },
        )
        assert e.status_code == 201, e.text

        def logged() -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = http.get("/api/broadcasts").json()
            return rows

        wait_for(lambda: logged(), 60, "the emergency's as-run row")
        rows = logged()
        assert [(b["announcement_id"], b["status"]) for b in rows] == [(e.json()["id"], "played")]
        started = datetime.fromisoformat(rows[0]["started_at"])
        assert abs(started - datetime.now(UTC) - SHIFT) < timedelta(minutes=5)
        # The file sink's record of what went out, stamped with the process's clock.
        records = [
            json.loads(p.read_text())
            for p in Path(hub.env["LANGSO_AUDIO__FILE_DIR"]).glob("*.json")
        ]
        assert [r["announcement_id"] for r in records] == [e.json()["id"]]
        assert datetime.fromisoformat(records[0]["started_at"]).year == started.year

        # Past its time, and a few scheduler ticks more: the scheduled one still waits.
        due = datetime.fromisoformat(later.json()["next_run"])
        wait_for(lambda: hub_now() > due + timedelta(seconds=3), 30, "its time to pass")
        item = http.get(f"/api/announcements/{later.json()['id']}").json()
        assert item["status"] == "scheduled"
        assert len(logged()) == 1
        alerts = http.get("/api/alerts", params={"state": "open"}).json()
        assert "clock_unsynced" in {a["rule"] for a in alerts}
        r = http.post("/api/clock", json={"phone_time": int(time.time() * 1000)})
        assert r.status_code == 403 and "allow_phone_set" in r.json()["detail"], r.text
