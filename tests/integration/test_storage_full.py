"""A full data folder is an event, not a loop: health says "disk full", writes get 507 (a
page for the pages), the ingest writer pauses and resumes by itself, the ``disk_full``
alert is raised once and cleared once. A real broker, real SQLite, real HTTP, espeak-ng;
the full disk is a real 8 MiB tmpfs (root only), the hub in this process on a fake clock.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from hub.clock import FakeClock
from hub.events import AlertChanged
from tests.broker import Broker
from tests.hubtest import PASSWORD, InProcessHub, hub_settings, wait_for
from tests.storedata import readings_of

pytestmark = pytest.mark.broker

SIZE = 8 * 1024 * 1024
FULL = "the hub's storage is full (thẻ nhớ đầy)"


@dataclass
class FullHub:
    h: InProcessHub
    disk: Path
    alerts: list[tuple[str, str]] = field(default_factory=list)
    fillers: int = 0

    def fill(self) -> None:
        """Take every free byte (again: a render's temporary files may have gone since)."""
        self.fillers += 1
        with contextlib.suppress(OSError), open(self.disk / f"filler{self.fillers}", "wb") as f:
            for _ in range(SIZE // 4096 + 1):
                f.write(b"\0" * 4096)
                f.flush()
        assert os.statvfs(self.disk).f_bavail == 0

    def free(self) -> None:
        for p in self.disk.glob("filler*"):
            p.unlink()

    def storage_alerts(self) -> list[tuple[str, str]]:
        return [a for a in self.alerts if a[0] in ("disk_full", "storage_failed")]


@pytest.fixture(scope="module")
def full(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FullHub]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path_factory.mktemp("storage") / "small"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(disk)], check=True)
    try:
        h = InProcessHub(hub_settings(broker, disk), FakeClock(datetime(2026, 12, 1, tzinfo=UTC)))
        fh = FullHub(h, disk)
        h.hub.events.subscribe(
            AlertChanged, lambda ev: fh.alerts.append((ev.alert.rule, ev.alert.state))
        )
        try:
            h.http("head")  # signed in while there is room
            # The emergency pre-rendered at start takes room, then gives its temporary
            # files back: the disk is filled once it is done.
            wait_for(lambda: _rendered(disk / "render"), 60, "the start-up pre-render")
            # The WAL's spare pages would take a few writes more: gone.
            h.hub.store.connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")
            yield fh
        finally:
            h.stop()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def _rendered(cache: Path) -> bool:
    """The start-up pre-render is done (its thread gone, no temporary files left)."""
    busy = any(t.name == "prerender" for t in threading.enumerate())
    return not busy and not any(cache.glob(".*"))


def test_with_the_disk_full_writes_get_507_and_health_says_disk_full(full: FullHub) -> None:
    h = full.h
    full.fill()
    r = httpx.post(f"{h.url}/api/feedback", json={"message": "Đèn đường ngõ 3 bị hỏng."})
    assert (r.status_code, r.json()["detail"][: len(FULL)]) == (507, FULL)
    full.fill()
    r = h.http("head").post("/api/announcements", json={"title": "Họp", "text": "Họp thôn."})
    assert (r.status_code, r.json()["detail"][: len(FULL)]) == (507, FULL)
    r = httpx.post(f"{h.url}/api/auth/token", data={"username": "head1", "password": PASSWORD})
    assert (r.status_code, r.json()["detail"][: len(FULL)]) == (507, FULL)
    # The sign-in page answers with a page a person can read, not JSON.
    with httpx.Client(base_url=h.url) as page:
        form = page.get("/app/login")
        m = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert m is not None
        r = page.post(
            "/app/login", data={"username": "head1", "password": PASSWORD, "csrf": m.group(1)}
        )
    assert r.status_code == 507
    assert r.headers["content-type"].startswith("text/html")
    assert "thẻ nhớ đầy" in r.text
    r = h.http().get("/api/health")
    body = r.json()
    assert (r.status_code, body["status"], body["storage"]["state"]) == (503, "error", "full")
    assert body["problems"][0].startswith("the data folder is full (disk full): ")
    assert "cannot rollback" not in r.text
    # Four refused writes, one alert.
    assert full.storage_alerts() == [("disk_full", "raised")]


def test_ingest_pauses_while_full_and_stores_each_message_once_after(
    full: FullHub, broker: Broker
) -> None:
    h = full.h
    ingest = h.hub.ingest
    full.fill()
    topic = f"village/{h.settings.site}/sensor/well-3/state"
    lines = "".join(f'{{"water_level_cm": {i}}}\n' for i in range(40))
    subprocess.run(
        ["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-q", "1", "-t", topic, "-l"],
        input=lines.encode(),
        check=True,
        timeout=10,
    )
    wait_for(lambda: ingest.paused_since is not None, 10, "the writer to pause")
    body = h.http().get("/api/health").json()
    assert body["ingest"]["paused"] is True
    assert body["storage"]["state"] == "full"
    assert readings_of(h.hub.store.connection(), "well-3") == []
    # Paused is not hung: jobs behind the held batch still run (the systemd watchdog's
    # probe among them, or the hub would be killed and the loudspeakers fall silent).
    ran = threading.Event()
    ingest.call(ran.set)
    assert ran.wait(20), "a job queued behind the held batch never ran"
    assert ingest.paused_since is not None
    full.free()
    # The held batch and what queued behind it, each committed (and acknowledged) once.
    wait_for(
        lambda: len(readings_of(h.hub.store.connection(), "well-3")) >= 40,
        20,
        "the messages held while the disk was full",
    )
    rows = readings_of(h.hub.store.connection(), "well-3")
    levels = sorted(int(r["water_level_cm"]) for r in rows)
    assert levels == list(range(40))
    wait_for(lambda: ingest.paused_since is None, 5, "the writer to resume")
    wait_for(lambda: ("disk_full", "cleared") in full.alerts, 5, "the alert cleared")
    assert full.storage_alerts() == [("disk_full", "raised"), ("disk_full", "cleared")]
    r = h.http().get("/api/health")
    assert (r.status_code, r.json()["storage"]["state"]) == (200, "ok"), r.text
