"""Devices for the API, the pages and the rules: devices with their status and latest
metrics, their names, metric series, the event log and dead letters. Runs in the request
threads; :meth:`Devices.names` also in the ingest writer thread (the rules' device views).

What a device is called: what a technician set on the device page or through the API
(:meth:`Devices.rename`, checked and audited) wins over the settings
(``health.devices.<id>.name`` / ``zone``), which win over the name the device row holds;
its spoken name (what the loudspeakers say) defaults to that name without the id, else to
its kind and number (:mod:`hub.words.devices`). The full list, which dashboards poll, is
kept encoded until ingest changes the devices table or a device is renamed.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Literal, Protocol

from hub.automation.actions import DeviceView
from hub.clock import Clock
from hub.errors import Invalid, NotFound
from hub.settings import DeviceHealth, Settings
from hub.store import Store
from hub.store import devices as repo
from hub.store.devices import (
    STATUSES,
    Bucket,
    DeadLetter,
    Device,
    LoggedEvent,
    Naming,
    Point,
    device_json,
)
from hub.words.devices import spoken_name

Resolution = Literal["auto", "raw", "hour"]
#: A series' points: a chart needs a few hundred; the most one request may ask for.
DEFAULT_POINTS = 500
#: Series read at once; the other requests wait their turn, blocked. A day's chart fetches
#: 8,640 rows, and SQLite gives the interpreter lock back at each: twenty at once took
#: 197 ms of CPU each (the lock handed round at every row) where one at a time takes 61
#: (bench/reads.py: 15 day charts a second instead of 5, 94 year charts instead of 49).
SERIES_AT_ONCE = 1
MAX_POINTS = 5000
HOUR = 3600.0
#: At most this many encoded lists are kept (``kind`` is free text: the keys are bounded).
LISTINGS = 64
#: The longest of each name a technician may set (a card's title, a sentence's part).
NAME_LIMITS: Mapping[str, int] = {"display_name": 64, "spoken_name": 100, "location": 100}
NAME_FIELDS: tuple[str, ...] = ("display_name", "spoken_name", "location", "zone")


class NamingInvalid(Invalid):
    """Names that cannot be kept: ``problems`` maps each field to what is wrong with it
    (``too_long``, ``control``, ``no_letter``, ``zone``), for the page to say next to it."""

    def __init__(self, problems: Mapping[str, str], message: str) -> None:
        super().__init__(message)
        self.problems = dict(problems)


@dataclass(frozen=True, slots=True)
class Names:
    """What a device is called, in force: on the pages, aloud, where, which zone."""

    display: str
    spoken: str
    location: str
    zone: str | None
    zone_name: str


class Versioned(Protocol):
    """Counts the commits that may have changed the devices table (ingest's stats)."""

    @property
    def generation(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Listing:
    """The device list as JSON bytes, with its ETag, as of ``generation``."""

    generation: int
    body: bytes
    etag: str


class Devices:
    def __init__(self, store: Store, settings: Settings, clock: Clock, changes: Versioned) -> None:
        self._store = store
        self._configured: Mapping[str, DeviceHealth] = settings.health.devices
        self._zones: Mapping[str, str] = {
            z: settings.gpio.zone_names.get(z, z) for z in settings.gpio.zones
        }
        self._clock = clock
        self._changes = changes
        self._listings: dict[tuple[str | None, str | None], Listing] = {}
        # The technicians' names, for the rules' device views (writer thread, per message
        # with a zone condition): read once, replaced whole by each rename.
        self._lock = threading.Lock()
        self._namings: Mapping[str, Naming] | None = None
        self._renames = 0
        self._reads = threading.BoundedSemaphore(SERIES_AT_ONCE)

    @property
    def zones(self) -> Mapping[str, str]:
        """The loudspeaker zones a device may stand in: id -> what people call it."""
        return self._zones

    def listing(self, kind: str | None = None, status: str | None = None) -> Listing:
        """Every device (of ``kind``, in ``status``) as JSON: made once per change of the
        devices table, then served as bytes. A village's list is large (about 0.5 MB for
        1,000 devices) and dashboards poll it. The generation is read before the query, so
        a table newer than it only means one more rebuild."""
        generation = self._changes.generation * 1_000_000 + self._renames
        entry = self._listings.get((kind, status))
        if entry is None or entry.generation != generation:
            body = json.dumps(
                [device_json(d) for d in self.query(kind, status)],
                ensure_ascii=False,
                separators=(",", ":"),
            ).encode()
            etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
            if len(self._listings) >= LISTINGS:
                self._listings.clear()
            entry = self._listings[(kind, status)] = Listing(generation, body, etag)
        return entry

    def query(self, kind: str | None = None, status: str | None = None) -> list[Device]:
        """Devices of ``kind`` in ``status`` (None: any), by kind then id."""
        return [self._named(d) for d in repo.list_devices(self._store.connection(), kind, status)]

    def get(self, device_id: str) -> Device:
        d = repo.device(self._store.connection(), device_id)
        if d is None:
            raise NotFound(f"no device {device_id!r}")
        return self._named(d)

    def _named(self, d: Device) -> Device:
        n = self._resolve(d.id, d.kind, d.name, d.metrics, d.naming)
        return replace(
            d, name=n.display, spoken_name=n.spoken, location=n.location, zone=n.zone or ""
        )

    def _resolve(
        self,
        device_id: str,
        kind: str,
        own_name: str | None,
        metrics: Iterable[str],
        naming: Naming | None,
    ) -> Names:
        n = naming or Naming()
        configured = self._configured.get(device_id)
        display = n.display_name or (configured.name if configured else None) or own_name
        zone = n.zone or (configured.zone if configured else None) or None
        return Names(
            display=display or device_id,
            spoken=spoken_name(
                device_id, kind, spoken=n.spoken_name, display=display, metrics=metrics
            ),
            location=n.location or "",
            zone=zone,
            zone_name=self._zones.get(zone, zone) if zone else "",
        )

    def names(
        self, device_id: str, kind: str, own_name: str | None = None, metrics: Iterable[str] = ()
    ) -> Names:
        """What a device is called, for the rules (any thread; no query once loaded)."""
        namings = self._namings
        if namings is None:
            with self._lock:
                if self._namings is None:
                    self._namings = repo.namings(self._store.connection())
                namings = self._namings
        return self._resolve(device_id, kind, own_name, metrics, namings.get(device_id))

    def view(
        self, device_id: str, kind: str, own_name: str | None = None, metrics: Iterable[str] = ()
    ) -> DeviceView:
        """A device as the rules see it (writer thread): its names, kind and zone."""
        n = self.names(device_id, kind, own_name, metrics)
        return DeviceView(
            device_id,
            n.display,
            kind,
            n.zone,
            spoken=n.spoken,
            location=n.location,
            zone_name=n.zone_name,
        )

    def rename(self, device_id: str, changes: Mapping[str, str | None], *, actor: str) -> Device:
        """Set some of a device's names (``display_name``, ``spoken_name``, ``location``,
        ``zone``; None or blank: back to the default), checked and audited.
        :class:`NamingInvalid` saying what is wrong with each field; :class:`NotFound`."""
        unknown = sorted(set(changes) - set(NAME_FIELDS))
        if unknown:
            raise Invalid(f"unknown field {unknown[0]!r}: one of {', '.join(NAME_FIELDS)}")
        cleaned = self._checked(changes)
        now = self._clock.now().timestamp()
        with self._lock, self._store.transaction() as conn:
            before = repo.device(conn, device_id)
            if before is None:
                raise NotFound(f"no device {device_id!r}")
            after = replace(before.naming, **cleaned)
            repo.set_naming(conn, device_id, after)
            changed = {
                f: {"from": getattr(before.naming, f), "to": getattr(after, f)}
                for f in NAME_FIELDS
                if getattr(before.naming, f) != getattr(after, f)
            }
            self._store.audit(
                conn, ts=now, actor=actor, action="device.rename", target=device_id, detail=changed
            )
            if self._namings is not None:
                self._namings = {**self._namings, device_id: after}
            self._renames += 1
        return self.get(device_id)

    def _checked(self, changes: Mapping[str, str | None]) -> dict[str, str | None]:
        problems: dict[str, str] = {}
        said: list[str] = []
        out: dict[str, str | None] = {}
        for field, raw in changes.items():
            value = " ".join(unicodedata.normalize("NFC", raw or "").split()) or None
            out[field] = value
            if value is None:
                continue
            if field == "zone":
                if value not in self._zones:
                    problems[field] = "zone"
                    known = ", ".join(self._zones) or "none configured in gpio.zones"
                    said.append(f"zone: {value!r} is not a loudspeaker zone (known: {known})")
                continue
            limit = NAME_LIMITS[field]
            if len(value) > limit:
                problems[field] = "too_long"
                said.append(f"{field}: at most {limit} characters (got {len(value)})")
            elif any(unicodedata.category(c)[0] == "C" for c in value):
                problems[field] = "control"
                said.append(f"{field}: control characters are not allowed")
            elif field == "spoken_name" and not any(c.isalpha() for c in value):
                problems[field] = "no_letter"
                said.append("spoken_name: write it in words, as it should be said")
        if problems:
            raise NamingInvalid(problems, "; ".join(said))
        return out

    def series(
        self,
        device_id: str,
        name: str,
        since: float | None = None,
        until: float | None = None,
        resolution: Resolution = "auto",
        points: int = DEFAULT_POINTS,
    ) -> list[Bucket]:
        """One metric over [since, until] (default: the last 24 hours up to now) in at most
        ``points`` buckets, oldest first; nothing is cut, the newest readings included.

        ``raw``: the readings still kept; ``hour``: the hourly rollups; ``auto``: both in
        one series, the rollups where the readings are gone or where a bucket is half an
        hour or wider (one row an hour instead of hundreds of readings, and at least half
        the points asked: the chart looks the same), the readings after.
        """
        if not 1 <= points <= MAX_POINTS:
            raise Invalid(f"points: between 1 and {MAX_POINTS} (got {points})")
        conn = self._store.connection()
        if not repo.exists(conn, device_id):
            raise NotFound(f"no device {device_id!r}")
        t1 = self._clock.now().timestamp() if until is None else until
        t0 = t1 - 86_400 if since is None else since
        if t0 > t1:
            raise Invalid("since is after until")
        if resolution == "raw":
            split = t0
        elif resolution == "hour":
            split = t1 + HOUR  # every hour whose middle is in the range
        else:
            split = self._split(conn, device_id, t0, t1, (t1 - t0) / points)
        with self._reads:
            return repo.series(conn, device_id, name, t0, t1, split, points)

    def _split(
        self, conn: sqlite3.Connection, device_id: str, t0: float, t1: float, width: float
    ) -> float:
        """Where ``auto`` turns from the rollups (whole hours before it) to the raw readings.

        Wide buckets: at the hour retention folded last. Narrow ones: where the device's
        raw readings in the range start (expired before), so no reading counts twice; the
        part of that hour already expired is left out rather than doubled."""
        folded = self._store.get_meta("rollup_until")
        if folded is None:
            return t0  # nothing rolled up yet: every reading is still kept
        until = min(max(float(folded), t0), t1)
        if width >= HOUR / 2:
            return until
        first = repo.oldest_reading(conn, device_id, t0, t1)
        return until if first is None else first

    def averaged(self, device_id: str, name: str, t0: float, t1: float, points: int) -> list[Point]:
        """One metric over [t0, t1] in at most ``points`` averaged points (a chart's)."""
        return [(b.ts, b.value) for b in self.series(device_id, name, t0, t1, "auto", points)]

    def events(
        self, device_id: str | None = None, since: float | None = None, limit: int = 100
    ) -> list[LoggedEvent]:
        """The event log, newest first."""
        return repo.events(self._store.connection(), device_id, since, limit)

    def dead_letters(self, since: float | None = None, limit: int = 100) -> list[DeadLetter]:
        """Messages that could not be decoded, with the reason, newest first."""
        return repo.dead_letters(self._store.connection(), since or 0.0, limit)

    def status_counts(self) -> dict[str, int]:
        """How many devices are in each status, every status named."""
        counts = repo.status_counts(self._store.connection())
        return {s: counts.get(s, 0) for s in STATUSES}
