"""Households service: the opt-in list of household phones that get emergencies by SMS.

Kept by the village head (``/app/households``, ``/api/households``); technicians read it.
Every change is checked (a Vietnamese mobile number, normalised to +84; a zone of
``gpio.zones``; one entry per phone) and audited. A refusal names its field and a reason
key, so that the page says it next to the field (``hh.err.<reason>``). The SMS gateway reads
the phones of a broadcast's zones straight from the repository.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hub.automation.notify_settings import normalise_phone
from hub.clock import Clock
from hub.errors import Conflict, Invalid, NotFound, TooLarge
from hub.store import Store
from hub.store import households as repo
from hub.store.outbox import SmsLog

#: Households kept at most (a village has a few hundred; the SD card is small).
MAX_HOUSEHOLDS = 5000


class HouseholdIn(BaseModel):
    """A household that agreed to get emergency announcements by SMS."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=80, description="The household, as the village knows it.")
    phone: str = Field(max_length=40, description="A mobile: 0xxxxxxxxx or +84xxxxxxxxx.")
    zone: str = Field(max_length=64, description="Its loudspeaker zone (gpio.zones).")


class HouseholdRefused(Invalid):
    """A field is wrong (422): ``field`` and a ``reason`` key for the page's words."""

    def __init__(self, field: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.field, self.reason = field, reason


class PhoneTaken(Conflict):
    """The phone is on the list already (409)."""

    field, reason = "phone", "taken"


class Households:
    """The ``households`` table for the pages and the API (worker threads)."""

    def __init__(self, store: Store, *, clock: Clock, zones: Mapping[str, object]) -> None:
        self.store = store
        self.clock = clock
        self.zones = tuple(zones)

    def listed(self, *, zone: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        rows = repo.listed(self.store.connection(), zone=zone or None, limit=limit)
        return [repo.household_json(r) for r in rows]

    def per_zone(self) -> dict[str, int]:
        """How many households each zone has (every zone named, 0 included)."""
        counts = repo.per_zone(self.store.connection())
        return {**dict.fromkeys(self.zones, 0), **counts}

    def add(self, body: HouseholdIn, *, actor: str) -> dict[str, Any]:
        name = " ".join(body.name.split())
        if not name:
            raise HouseholdRefused("name", "name", "name: write the household's name")
        try:
            phone = normalise_phone(body.phone)
        except ValueError as e:
            raise HouseholdRefused("phone", "phone", f"phone: {e}") from None
        if body.zone not in self.zones:
            raise HouseholdRefused(
                "zone", "zone", f"zone: {body.zone[:40]!r} is not one of {', '.join(self.zones)}"
            )
        now = self.clock.now().timestamp()
        with self.store.transaction() as conn:
            if repo.by_phone(conn, phone) is not None:
                raise PhoneTaken(f"phone: {phone} is on the list already")
            if repo.count(conn) >= MAX_HOUSEHOLDS:
                raise TooLarge(f"the list holds {MAX_HOUSEHOLDS} households at most")
            hid = repo.insert(conn, name=name, phone=phone, zone=body.zone, now=now, actor=actor)
            self.store.audit(
                conn,
                ts=now,
                actor=actor,
                action="household.add",
                target=str(hid),
                detail={"name": name, "phone": phone, "zone": body.zone},
            )
            row = repo.get(conn, hid)
        assert row is not None
        return repo.household_json(row)

    def remove(self, hid: int, *, actor: str) -> None:
        now = self.clock.now().timestamp()
        with self.store.transaction() as conn:
            row = repo.get(conn, hid)
            if row is None:
                raise NotFound(f"no household {hid}")
            repo.delete(conn, hid)
            self.store.audit(
                conn,
                ts=now,
                actor=actor,
                action="household.remove",
                target=str(hid),
                detail={"name": row["name"], "phone": row["phone"], "zone": row["zone"]},
            )

    def sms_log(self, limit: int = 50) -> list[dict[str, Any]]:
        """The last SMS handed to the modem (or held back), newest first."""
        return SmsLog(self.store).recent(limit)
