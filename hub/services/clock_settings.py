"""Settings of the clock trust (``[clock]``): where the RTC and the boot id are read, and
whether the head's phone may set the hub's clock. Nested in :class:`hub.settings.Settings`."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class ClockSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ntp: bool = Field(
        True,
        description="Trust the kernel's NTP state (adjtimex). false where that state is not "
        "this hub's clock: a container sharing its host's kernel, a process under libfaketime.",
    )
    rtc_sysfs: Path = Field(
        Path("/sys/class/rtc"),
        description="Where the kernel lists real-time clocks (rtc0, rtc1…).",
    )
    rtc_chips: tuple[str, ...] = Field(
        ("ds1307", "ds3231"),
        min_length=1,
        description="Battery-backed RTC boards trusted, by the driver's name in the RTC's "
        "sysfs name (a DS3231 board uses the rtc-ds1307 driver).",
    )
    rtc_agree_s: float = Field(
        300,
        ge=1,
        le=86_400,
        description="The system clock must agree with the RTC within this many seconds for "
        "the RTC to vouch for it.",
    )
    fake_hwclock_file: Path = Field(
        Path("/etc/fake-hwclock.data"),
        description="fake-hwclock's saved time: never trusted, but a clock before it is "
        "known wrong; saved again when the head sets the clock.",
    )
    boot_id_file: Path = Field(
        Path("/proc/sys/kernel/random/boot_id"),
        description="This boot's id: a clock set from a phone is trusted until the next boot.",
    )
    allow_phone_set: bool = Field(
        True,
        description="The head (or an admin) may set the hub's clock from a phone while NTP "
        "is not synchronised (needs CAP_SYS_TIME).",
    )
