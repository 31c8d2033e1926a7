"""Settings of the live broadcasts from the head's phone (``[live]``): the time cap, how
long a silent connection is believed, the limits on what the phone may send. Nested in
:class:`hub.settings.Settings`; on by default (only head and admin may go live).

Why these defaults:

- ``max_s = 600``: ten minutes is longer than any announcement the village reads, and short
  enough that a phone forgotten on air (in a pocket, the page left open) does not hold the
  loudspeakers, and the amplifiers, for the evening.
- ``idle_s = 3``: the phone sends 40 ms of audio 25 times a second; three seconds without
  any is a lost connection (wifi gone, the phone locked), not jitter, and the village hears
  the closing chime within about four seconds of the last word.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class LiveSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        True, description="Let the head and admin broadcast live from a phone (/app/live)."
    )
    max_s: float = Field(
        600.0,
        ge=1,
        le=3600,
        description="Hard cap on one live broadcast (s): at it, the closing chime plays and "
        "the broadcast ends.",
    )
    idle_s: float = Field(
        3.0,
        ge=0.5,
        le=30,
        description="No audio from the phone for this long (s) ends the broadcast as a lost "
        "connection (closing chime, amplifier off after its tail).",
    )
    max_message_bytes: int = Field(
        8192,
        ge=640,
        le=65536,
        description="Largest audio message the phone may send (16 kHz mono 16-bit PCM: "
        "8192 bytes is 256 ms; the page sends 40 ms).",
    )
    burst_s: float = Field(
        2.0,
        ge=0.2,
        le=10,
        description="How far ahead of real time the phone's audio may run (s) before the "
        "connection is closed as too fast (a flood, not a voice).",
    )
    chimes: bool = Field(
        True,
        description="Play the chime (audio.chime) before the live voice and after it.",
    )
