"""Device health settings (``[health]``): no-data timeouts and thresholds per kind and per
device, read by the monitor (hub/ingest/monitor.py); part of :class:`hub.settings.Settings`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from devices.events import DEVICE_KINDS


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class Threshold(_Model):
    metric: str = Field(description="Metric name, e.g. cpu_pct, signal_dbm, clients.")
    op: Literal[">", ">=", "<", "<="] = Field(description="Comparison that means trouble.")
    value: float = Field(description="The limit.")
    for_s: float = Field(
        300.0,
        ge=0,
        description="Tolerance: the condition must hold this long before the device is "
        "degraded, and be gone this long before it recovers.",
    )
    during: str | None = Field(
        None,
        pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}$",
        description="Local time window HH:MM-HH:MM in which the threshold applies.",
    )
    severity: Literal["warning", "critical"] = Field("warning", description="Alert severity.")


class KindHealth(_Model):
    offline_after_s: float | None = Field(
        None,
        gt=0,
        description="No data for this long means offline (for sources without a will, "
        "e.g. collectd). None: only the status topic counts.",
    )
    thresholds: list[Threshold] = Field(default_factory=list, description="Degraded when met.")


class DeviceHealth(_Model):
    name: str | None = Field(None, description="Display name of the device.")
    zone: str | None = Field(None, description="Loudspeaker zone the device stands in.")
    offline_after_s: float | None = Field(None, gt=0, description="Overrides the kind's.")
    thresholds: list[Threshold] | None = Field(
        None, description="Replace the kind's thresholds for this device."
    )
    sleeps: bool = Field(
        False,
        description="A battery node that sleeps between reports (Tasmota DeepSleep) and says "
        "offline before each sleep: that is expected, and only offline_after_s of silence "
        "makes it offline.",
    )


def _default_kinds() -> dict[str, KindHealth]:
    return {
        "ap": KindHealth(
            offline_after_s=300,
            thresholds=[
                Threshold(metric="cpu_pct", op=">", value=90, for_s=300),
                Threshold(metric="signal_dbm", op="<", value=-80, for_s=300),
                Threshold(metric="temp_c", op=">", value=80, for_s=300, severity="critical"),
            ],
        ),
        "sensor": KindHealth(
            offline_after_s=1800,
            thresholds=[Threshold(metric="battery_pct", op="<", value=15, for_s=3600)],
        ),
        "button": KindHealth(),
        # A speaker cluster (cụm loa): degraded while its snapclient is not connected
        # (the node says so; snapserver's view goes to each broadcast's log).
        "speaker": KindHealth(
            offline_after_s=600,
            thresholds=[
                Threshold(metric="snapclient_connected", op="<", value=1, for_s=60),
                Threshold(metric="temp_c", op=">", value=80, for_s=300, severity="critical"),
            ],
        ),
        "gateway": KindHealth(),
    }


class HealthSettings(_Model):
    check_interval_s: float = Field(5.0, gt=0, description="How often silence is checked.")
    kinds: dict[str, KindHealth] = Field(
        default_factory=_default_kinds, description="Health rules per device kind."
    )
    devices: dict[str, DeviceHealth] = Field(
        default_factory=dict, description="Per-device names and overrides."
    )

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, v: dict[str, KindHealth]) -> dict[str, KindHealth]:
        bad = sorted(set(v) - set(DEVICE_KINDS))
        if bad:
            raise ValueError(f"unknown kind {bad[0]!r}; kinds are {', '.join(DEVICE_KINDS)}")
        return {**_default_kinds(), **v}
