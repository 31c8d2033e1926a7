"""/api/households: the opt-in list of household phones for emergency SMS, and the SMS log.

Thin: :class:`hub.services.households.Households` checks, stores and audits. The head (and
admin) changes the list; technicians read it and the log.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from hub.api.deps import HubDep, require
from hub.api.errors import documented
from hub.api.schemas import RowId
from hub.app import Hub
from hub.clock import iso
from hub.services.households import HouseholdIn, Households
from hub.services.users import User

router = APIRouter(tags=["households"])

Head = Annotated[User, Depends(require("head"))]
Reader = Annotated[User, Depends(require("head", "technician"))]


def households(hub: Hub) -> Households:
    """The service over the hub's store (stateless: made per request)."""
    return Households(hub.store, clock=hub.clock, zones=hub.settings.gpio.zones)


@router.get("/api/households", responses=documented(401, 403, 422))
def list_households(
    hub: HubDep,
    user: Reader,
    zone: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> list[dict[str, Any]]:
    """Households that get emergencies by SMS, by zone and name."""
    return households(hub).listed(zone=zone, limit=limit)


@router.get("/api/households/zones", responses=documented(401, 403))
def households_per_zone(hub: HubDep, user: Reader) -> dict[str, int]:
    """How many households each loudspeaker zone has."""
    return households(hub).per_zone()


@router.post("/api/households", status_code=201, responses=documented(401, 403, 409, 413, 422))
def add_household(hub: HubDep, user: Head, body: HouseholdIn) -> dict[str, Any]:
    """Add a household (its phone normalised to +84); audited."""
    return households(hub).add(body, actor=user.username)


@router.delete("/api/households/{hid}", status_code=204, responses=documented(401, 403, 404, 422))
def remove_household(hub: HubDep, user: Head, hid: RowId) -> Response:
    """Take a household off the list; audited."""
    households(hub).remove(hid, actor=user.username)
    return Response(status_code=204)


@router.get("/api/households/sms", responses=documented(401, 403, 422))
def sms_log(
    hub: HubDep, user: Reader, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[dict[str, Any]]:
    """The SMS log, newest first: queued, sent, delivered, undelivered, failed, limited,
    duplicate, with the reason."""
    return [
        {**row, "at": iso(row["at"]), "updated_at": iso(row["updated_at"])}
        for row in households(hub).sms_log(limit)
    ]
