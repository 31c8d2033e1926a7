"""Settings of the remote speaker clusters (``[clusters]``): where snapserver is, the stream's
format and buffer, the volumes. Nested in :class:`hub.settings.Settings`; off by default (no
snapserver: the hub plays through its own sink only, exactly as without clusters).

Why these defaults (speech on village wifi, not music):

- ``buffer_ms = 600``: Snapcast plays every sample this long after the hub wrote it, on
  every client at once. Village wifi loses and retransmits frames in bursts of a few hundred
  milliseconds; 600 ms rides those out, and still leaves about 900 ms of the 1.5 s
  mouth-to-horn goal of a live broadcast for the phone, the network and the hub.
- ``sample_format = 48000:16:1``: mono (horns are mono), 48 kHz because that is what every
  snapclient's sound card takes without resampling; with the ``flac`` codec in
  snapserver.conf it costs about 300-400 kbit/s per cluster, half of raw PCM, and next to
  no CPU on a Pi Zero 2 W (Opus would cost a quarter of the bandwidth but more CPU and
  20 ms more latency).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Snapcast's sample formats the sink can write: ``rate:bits:channels``, 16-bit only.
_FORMAT = r"^(8000|16000|22050|24000|32000|44100|48000):16:[12]$"


class ClusterSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        False,
        description="Play every broadcast on the remote speaker clusters through snapserver "
        "too (needs snapserver on this hub: deploy/node/README.md).",
    )
    host: str = Field("127.0.0.1", description="Where snapserver runs (normally this hub).")
    control_port: int = Field(
        1705, ge=1, le=65535, description="snapserver's JSON-RPC control port ([tcp] port)."
    )
    source_port: int = Field(
        4953,
        ge=1,
        le=65535,
        description="Port of snapserver's tcp source (source = tcp://127.0.0.1:<port>"
        "?name=<stream>&mode=server) the hub writes the audio to.",
    )
    stream: str = Field(
        "langso",
        pattern=r"^[A-Za-z0-9_-]{1,40}$",
        description="The stream's name in snapserver.conf (name=...).",
    )
    sample_format: str = Field(
        "48000:16:1",
        pattern=_FORMAT,
        description="The stream's sampleformat in snapserver.conf (rate:bits:channels).",
    )
    buffer_ms: int = Field(
        600,
        ge=100,
        le=5000,
        description="snapserver's [stream] buffer: every cluster plays a sample this long "
        "after the hub sent it (the same value as in snapserver.conf).",
    )
    volume: int = Field(80, ge=0, le=100, description="Clusters' volume for a broadcast (%).")
    emergency_volume: int = Field(
        100, ge=0, le=100, description="Every cluster's volume for an emergency (%)."
    )
    everywhere: list[str] = Field(
        default_factory=list,
        description="Snapcast clients that hear every broadcast whatever its zones (the "
        "cultural house's own amplifier, run as one more snapclient to be in step).",
    )
    local_sink: bool = Field(
        True,
        description="Play through the hub's own sink (audio.sink) as well. false when the "
        "cultural house's amplifier is a snapclient (listed in everywhere).",
    )
    rpc_timeout_s: float = Field(
        2.0, gt=0, le=30, description="Longest wait for snapserver's answer to one request."
    )
    poll_s: float = Field(
        5.0,
        gt=0,
        le=300,
        description="How often the hub reads every client's state from snapserver (its "
        "notifications say most changes at once; this catches the rest).",
    )
    amp_tail_s: float = Field(
        2.0,
        ge=0,
        le=30,
        description="A cluster's amplifier stays on this long after the audio (the node "
        "agent's tail, said to it in each command).",
    )

    @field_validator("everywhere")
    @classmethod
    def _ids(cls, v: list[str]) -> list[str]:
        for client in v:
            if not client or len(client) > 64 or any(c in client for c in "/+#\0 "):
                raise ValueError(f"{client!r} is not a Snapcast client id (its --hostID)")
        return v

    @model_validator(mode="after")
    def _volumes(self) -> ClusterSettings:
        if self.emergency_volume < self.volume:
            raise ValueError("emergency_volume must be at least volume")
        return self

    @property
    def rate(self) -> int:
        return int(self.sample_format.split(":")[0])

    @property
    def channels(self) -> int:
        return int(self.sample_format.split(":")[2])
