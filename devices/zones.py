"""The loudspeaker zone relays behind the amplifier: the playout routes each broadcast.

Threads: ``select()`` runs on the asyncio loop (quick pin writes); ``close()`` may run in
a signal handler on the main thread, hence the re-entrant lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from gpiozero import DigitalOutputDevice

from devices.parts import GpioError, Part, PinConfigError, UnknownZoneError


class ZoneRelays(Part):
    """One relay per loudspeaker zone (hamlet); ``select()`` routes the amplifier's output.

    Zone names are the ones announcements use (``"xom-dong"``); ``"all"`` means every
    zone. A mapping without zones is a single-line PA: ``"all"`` selects nothing.
    """

    ALL = "all"

    def __init__(
        self,
        pins: Mapping[str, int],
        *,
        active_high: bool = True,
        pin_factory: Any = None,
    ) -> None:
        for name in pins:
            if not name or name == self.ALL:
                raise PinConfigError(f"zone name {name!r} is reserved or empty")
        self._lock = threading.RLock()
        self._relays: dict[str, Any] = {}
        try:
            for name, pin in pins.items():
                self._relays[name] = DigitalOutputDevice(
                    pin, active_high=active_high, initial_value=False, pin_factory=pin_factory
                )
        except BaseException:
            for relay in self._relays.values():
                relay.close()
            raise
        self._closed = False

    def __repr__(self) -> str:
        return f"<ZoneRelays {', '.join(self._relays) or '(none)'} active={sorted(self.active)}>"

    @property
    def zones(self) -> tuple[str, ...]:
        """The zone names, in configuration order."""
        return tuple(self._relays)

    @property
    def active(self) -> frozenset[str]:
        """The zones whose relay is on now (read from the pins)."""
        with self._lock:
            if self._closed:
                return frozenset()
            return frozenset(name for name, relay in self._relays.items() if relay.is_active)

    def resolve(self, zones: Iterable[str]) -> frozenset[str]:
        """The zone names meant by ``zones`` (``"all"`` expanded); raises on an unknown one."""
        if isinstance(zones, str):  # one name, not its letters
            zones = (zones,)
        wanted: set[str] = set()
        for zone in zones:
            if zone == self.ALL:
                wanted.update(self._relays)
            elif zone in self._relays:
                wanted.add(zone)
            else:
                valid = ", ".join((self.ALL, *self._relays))
                raise UnknownZoneError(f"unknown zone {zone!r}; zones are: {valid}")
        return frozenset(wanted)

    def select(self, zones: Iterable[str]) -> frozenset[str]:
        """Switch exactly ``zones`` on and every other zone off; returns the zones on.

        Names are checked before any relay moves. Relays switch off before others
        switch on, so a zone that was not chosen never hears the start of a message.
        """
        wanted = self.resolve(zones)
        with self._lock:
            if self._closed:
                raise GpioError("the zone relays are closed")
            for name, relay in self._relays.items():
                if name not in wanted:
                    relay.off()
            for name, relay in self._relays.items():
                if name in wanted:
                    relay.on()
        return wanted

    def release(self) -> None:
        """Every zone relay off."""
        with self._lock:
            if self._closed:
                return
            for relay in self._relays.values():
                relay.off()

    def close(self) -> None:
        """Every relay off, then release the pins. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self.release()
            self._closed = True
            for relay in self._relays.values():
                relay.close()
