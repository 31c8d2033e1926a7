"""Which clock the hub trusts (real SQLite, a temporary sysfs tree and boot id file, a fake
clock): NTP, a DS3231 read at boot, the head's phone this boot, and none; fake-hwclock as
the floor; retention that deletes nothing on an untrusted clock; the real clock_settime
refused to an unprivileged process, said as "no CAP_SYS_TIME"."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hub.clock import FakeClock
from hub.errors import Conflict, Forbidden, Invalid
from hub.services.clock import ClockTrust, phone_seconds
from hub.services.clock_settings import ClockSettings
from hub.settings import RetentionSettings
from hub.store import Store
from hub.store.retention import Retention
from tests.storedata import add_events, count_events

T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
ROOT = Path(__file__).parents[2]


class Machine:
    """A temporary /sys/class/rtc, boot id and fake-hwclock file, and a real database."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.rtc_root = tmp / "sys" / "class" / "rtc"
        self.rtc_root.mkdir(parents=True)
        self.boot = tmp / "boot_id"
        self.boot.write_text("boot-1\n")
        self.fake_hwclock = tmp / "fake-hwclock.data"
        self.store = Store(tmp / "hub.db")
        self.clock = FakeClock(T0)
        self.ntp: bool | None = False
        self.set_to: list[float] = []
        self.rtc_writes: list[Path] = []

    def settings(self, **kw: object) -> ClockSettings:
        return ClockSettings(
            rtc_sysfs=self.rtc_root,
            boot_id_file=self.boot,
            fake_hwclock_file=self.fake_hwclock,
            **kw,  # type: ignore[arg-type]
        )

    def trust(self, **kw: object) -> ClockTrust:
        return ClockTrust(
            self.settings(**kw),
            self.store,
            self.clock,
            ntp=lambda: self.ntp,
            setter=self.set_system_clock,
            rtc_writer=self.rtc_writes.append,
        )

    def set_system_clock(self, ts: float) -> None:
        self.set_to.append(ts)
        self.clock.set(datetime.fromtimestamp(ts, UTC))

    def rtc(self, name: str, chip: str, when: datetime | None, hctosys: bool = True) -> None:
        d = self.rtc_root / name
        d.mkdir()
        (d / "name").write_text(chip + "\n")
        (d / "hctosys").write_text("1\n" if hctosys else "0\n")
        (d / "since_epoch").write_text(f"{int(when.timestamp())}\n" if when else "")


@pytest.fixture
def m(tmp_path: Path) -> Machine:
    machine = Machine(tmp_path)
    yield machine  # type: ignore[misc]
    machine.store.close()


def test_ntp_first_and_none_without_any_source(m: Machine) -> None:
    trust = m.trust()
    s = trust.state()
    assert (s.source, s.synced, s.rtc, s.can_set) == ("none", False, None, True)
    assert "not trusted" in (s.problem or "")
    m.ntp = True
    s = trust.state()
    assert (s.source, s.synced, s.can_set) == ("ntp", True, False)
    assert "NTP" in (s.why_not or "")
    # Where the kernel's NTP state is not this hub's clock (a container, libfaketime).
    assert m.trust(ntp=False).state().source == "none"


def test_a_ds3231_read_at_boot_is_trusted_and_a_bad_one_is_not(m: Machine) -> None:
    m.rtc("rtc0", "rtc_cmos rtc_cmos", T0)  # the PC's own clock: not a board we know
    m.rtc("rtc1", "rtc-ds1307 1-0068", T0 + timedelta(seconds=20), hctosys=True)
    trust = m.trust()
    s = trust.state()
    assert (s.source, s.rtc and s.rtc.name, s.rtc_ok) == ("rtc", "rtc1", True)
    assert s.json()["rtc"]["chip"] == "rtc-ds1307 1-0068"
    # The system clock went its own way since boot: the board no longer vouches for it.
    m.clock.advance(3600)
    assert trust.state().source == "none"


@pytest.mark.parametrize(
    ("rtc_time", "floor", "why"),
    [
        (datetime(2000, 1, 1, tzinfo=UTC), None, "a dead battery reads 2000"),
        (None, None, "the board does not answer"),
        (T0, T0 + timedelta(days=30), "behind fake-hwclock's saved time"),
    ],
)
def test_an_rtc_that_cannot_be_right_is_not_trusted(
    m: Machine, rtc_time: datetime | None, floor: datetime | None, why: str
) -> None:
    m.rtc("rtc0", "ds3231", rtc_time)
    if rtc_time is not None:
        m.clock.set(rtc_time)  # the kernel set the system clock from it at boot
    if floor is not None:
        m.fake_hwclock.write_text(f"{floor:%Y-%m-%d %H:%M:%S}\n")
    s = m.trust().state()
    assert (s.source, s.rtc_ok) == ("none", False), why
    if floor is not None:
        assert s.behind_floor and "behind" in (s.problem or "")


def test_the_phone_holds_for_this_boot_writes_the_rtc_and_fake_hwclock(m: Machine) -> None:
    m.rtc("rtc0", "rtc-ds1307 1-0068", datetime(2000, 1, 1, tzinfo=UTC))  # battery was flat
    m.fake_hwclock.write_text("2026-11-30 22:00:00\n")
    phone = T0 + timedelta(hours=3)
    s = m.trust().set_from_phone(phone.timestamp(), actor="head1")
    assert (s.source, s.phone_by, m.set_to) == ("phone", "head1", [phone.timestamp()])
    assert m.rtc_writes == [Path("/dev/rtc0")]
    assert m.fake_hwclock.read_text() == "2026-12-01 03:00:00\n"
    row = m.store.one("SELECT actor, ts, detail FROM audit_log WHERE action='clock.set'")
    assert row is not None and (row["actor"], row["ts"]) == ("head1", phone.timestamp())
    assert json.loads(row["detail"]) == {
        "old": "2026-12-01T00:00:00Z",
        "new": "2026-12-01T03:00:00Z",
        "rtc": "rtc0",
        "fake_hwclock": True,
    }
    # The same boot, a restarted hub: still trusted. Another boot: not.
    assert m.trust().state().source == "phone"
    m.boot.write_text("boot-2\n")
    assert m.trust().state().source == "none"


def test_the_phone_is_refused_when_it_should_be(m: Machine) -> None:
    trust = m.trust()
    for bad in (datetime(2025, 12, 31, tzinfo=UTC).timestamp(), 4102444800.0, float("nan")):
        with pytest.raises(Invalid, match="not a time this hub can have"):
            trust.set_from_phone(bad, actor="head1")
    with pytest.raises(Forbidden, match="allow_phone_set"):
        m.trust(allow_phone_set=False).set_from_phone(T0.timestamp(), actor="head1")
    m.ntp = True
    with pytest.raises(Conflict, match="NTP"):
        trust.set_from_phone(T0.timestamp(), actor="head1")
    assert m.set_to == [] and m.store.one("SELECT 1 FROM audit_log") is None


def test_phone_time_as_milliseconds_or_iso() -> None:
    tz = ZoneInfo("Asia/Ho_Chi_Minh")
    t = T0.timestamp()
    assert phone_seconds(int(t * 1000), tz) == t
    assert phone_seconds(str(int(t * 1000)), tz) == t
    assert phone_seconds("2026-12-01T07:00:00", tz) == t  # the village's time
    assert phone_seconds("2026-12-01T00:00:00Z", tz) == t
    for bad in ("mai", 10**400, float("inf")):
        with pytest.raises(Invalid):
            phone_seconds(bad, tz)  # type: ignore[arg-type]


def test_retention_deletes_nothing_while_the_clock_is_not_trusted(m: Machine) -> None:
    conn = m.store.new_connection()
    # A reading three days old (past events_days) and one of an hour ago.
    for ago in (timedelta(days=3), timedelta(hours=1)):
        ts = (T0 - ago).timestamp()
        add_events(conn, [(ts, ts, "wl-1", "reading", "t", json.dumps({"metrics": {"x": 1}}))])
    trust = m.trust()
    r = Retention(
        RetentionSettings(events_days=1),
        m.store,
        ingest_conn=conn,
        clock=m.clock,
        clock_synced=trust.synced,
    )
    r.sweep()
    assert count_events(conn) == 2
    assert conn.execute("SELECT value FROM meta WHERE key='retention_swept'").fetchone() is None
    m.ntp = True
    r.sweep()
    assert count_events(conn) == 1
    conn.close()


CHILD = """
import sys, time
from pathlib import Path
from hub.clock import SystemClock
from hub.services.clock import ClockNotSettable, ClockTrust
from hub.services.clock_settings import ClockSettings
from hub.store import Store

tmp = Path(sys.argv[1])
store = Store(tmp / "hub.db")
settings = ClockSettings(rtc_sysfs=tmp / "none", boot_id_file=tmp / "boot_id",
                         fake_hwclock_file=tmp / "none")
trust = ClockTrust(settings, store, SystemClock(), ntp=lambda: False)
try:
    # The time it already is: even a privileged process would not move the clock.
    trust.set_from_phone(time.time(), actor="head1")
except ClockNotSettable as e:
    print("refused:", e)
"""


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is missing")
def test_the_real_clock_settime_without_cap_sys_time_says_so(tmp_path: Path) -> None:
    (tmp_path / "boot_id").write_text("boot-1\n")
    # setpriv takes CAP_SYS_TIME out of the bounding set: the child, even as root, has it
    # neither permitted nor effective (a hub's unit without AmbientCapabilities alike).
    out = subprocess.run(
        ["setpriv", "--bounding-set=-sys_time", "--", sys.executable, "-c", CHILD, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "refused: the hub may not set the clock (no CAP_SYS_TIME)" in out.stdout, out.stdout
