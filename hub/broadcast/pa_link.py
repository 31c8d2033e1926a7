"""Broadcast stage, what the playout switches: the PA box (amplifier, zone relays, on-air
LED) and the remote speaker clusters, behind small protocols so the playout knows neither
gpiozero nor Snapcast.

Threads: the playout thread (and ``Playout.stop`` from the thread that stops the hub).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

log = logging.getLogger(__name__)

__all__ = ["ClustersLike", "PaAdapter", "PaLike", "SafeClusters"]


class PaLike(Protocol):
    """What the playout needs of the PA hardware (devices.gpio.PaHardware has it)."""

    def amp_on(self) -> None: ...
    def amp_off(self) -> None: ...
    def select_zones(self, zones: Sequence[str]) -> None: ...
    def release_zones(self) -> None: ...
    def on_air(self, on: bool) -> None: ...


class ClustersLike(Protocol):
    """What the playout needs of the speaker clusters (hub.broadcast.clusters.Clusters)."""

    def reach(self, zones: Sequence[str], priority: str = "normal") -> Any: ...
    def open(self, zones: Sequence[str], priority: str, *, for_s: float) -> Any: ...
    def audio_done(self) -> None: ...
    def close(self) -> str | None: ...


class PaAdapter:
    """Adapts devices.gpio.PaHardware (or nothing, on a hub without relays) to PaLike."""

    def __init__(self, hardware: Any | None) -> None:
        self.hw = hardware

    def amp_on(self) -> None:
        if self.hw is not None:
            self.hw.amplifier.on()

    def amp_off(self) -> None:
        if self.hw is not None:
            self.hw.amplifier.off()

    def select_zones(self, zones: Sequence[str]) -> None:
        if self.hw is not None and self.hw.zones.zones:
            self.hw.zones.select(zones)

    def release_zones(self) -> None:
        if self.hw is not None:
            self.hw.zones.release()

    def on_air(self, on: bool) -> None:
        if self.hw is not None and self.hw.led is not None:
            (self.hw.led.on if on else self.hw.led.off)()


class SafeClusters:
    """The clusters as the playout calls them: a failure there is logged, never raised (the
    village's own amplifier plays whatever Snapcast does); without clusters, nothing."""

    def __init__(self, clusters: ClustersLike | None) -> None:
        self.clusters = clusters

    def reach_note(self, zones: Sequence[str], priority: str) -> str | None:
        if self.clusters is None:
            return None
        try:
            note: str = self.clusters.reach(zones, priority).note()
            return note
        except Exception:
            log.exception("asking which speaker clusters are reachable failed")
            return None

    def open(self, zones: Sequence[str], priority: str, *, for_s: float) -> None:
        if self.clusters is None:
            return
        try:
            self.clusters.open(zones, priority, for_s=for_s)
        except Exception:
            log.exception("routing the speaker clusters failed: they may not hear this")

    def audio_done(self) -> None:
        if self.clusters is None:
            return
        try:
            self.clusters.audio_done()
        except Exception:
            log.exception("switching the speaker clusters off failed")

    def close(self) -> str | None:
        if self.clusters is None:
            return None
        try:
            return self.clusters.close()
        except Exception:
            log.exception("closing the speaker clusters' session failed")
            return None
