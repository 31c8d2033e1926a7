"""Device reads for the API and the pages: devices with their status and latest metrics,
metric series, the event log and dead letters. Runs in the request threads.

What the devices are called comes from the settings (``health.devices.<id>.name``)
before the name a device gave itself. The full list, which dashboards poll, is kept
encoded until ingest changes the devices table again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal, Protocol

from hub.clock import Clock
from hub.errors import Invalid, NotFound
from hub.settings import DeviceHealth, Settings
from hub.store import Store
from hub.store import devices as repo
from hub.store.devices import STATUSES, DeadLetter, Device, LoggedEvent, Point, device_json

Resolution = Literal["auto", "raw", "hour"]
#: At most this many encoded lists are kept (``kind`` is free text: the keys are bounded).
LISTINGS = 64


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
        self._names: Mapping[str, DeviceHealth] = settings.health.devices
        self._raw_days = settings.retention.events_days
        self._clock = clock
        self._changes = changes
        self._listings: dict[tuple[str | None, str | None], Listing] = {}

    def listing(self, kind: str | None = None, status: str | None = None) -> Listing:
        """Every device (of ``kind``, in ``status``) as JSON: made once per change of the
        devices table, then served as bytes. A village's list is large (about 0.5 MB for
        1,000 devices) and dashboards poll it. The generation is read before the query, so
        a table newer than it only means one more rebuild."""
        generation = self._changes.generation
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
        override = self._names.get(d.id)
        if override is not None and override.name:
            return replace(d, name=override.name)
        return d

    def series(
        self,
        device_id: str,
        name: str,
        since: float | None = None,
        until: float | None = None,
        resolution: Resolution = "auto",
        limit: int = 5000,
    ) -> list[Point]:
        """One metric over [since, until] (default: the last 24 hours), oldest first.
        ``auto`` reads raw readings while they are kept and hourly averages beyond."""
        conn = self._store.connection()
        if not repo.exists(conn, device_id):
            raise NotFound(f"no device {device_id!r}")
        now = self._clock.now().timestamp()
        t1 = until or now
        t0 = since or t1 - 86_400
        if t0 > t1:
            raise Invalid("since is after until")
        raw_from = now - self._raw_days * 86_400
        if resolution == "hour" or (
            resolution == "auto" and (t0 < raw_from or t1 - t0 > 7 * 86_400)
        ):
            return repo.hourly(conn, device_id, name, t0, t1, limit)
        return repo.readings(conn, device_id, name, t0, t1, limit)

    def averaged(self, device_id: str, name: str, t0: float, t1: float, points: int) -> list[Point]:
        """One metric over [t0, t1] averaged into about ``points`` buckets (a chart's): the
        hourly rollups for the hours retention has already folded, raw readings after."""
        conn = self._store.connection()
        bucket = max(60.0, (t1 - t0) / points)
        folded = self._store.get_meta("rollup_until")
        split = t0
        if folded is not None and t1 - t0 > 2 * 86_400:
            split = min(max(float(folded), t0), t1)
        out: list[Point] = []
        if split > t0:
            out += repo.hourly_averaged(conn, device_id, name, t0, split, bucket)
        out += repo.readings_averaged(conn, device_id, name, split, t1, bucket)
        return out

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
