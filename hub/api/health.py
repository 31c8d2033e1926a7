"""GET /api/health: is the hub really working (broker, database, storage, messages flowing)?"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from hub import __version__
from hub.api.deps import HubDep
from hub.api.schemas import HealthOut, json_of
from hub.clock import iso

router = APIRouter(tags=["health"])

#: Messages waiting with no commit for this long means the writer is stuck.
STALL_S = 15.0


@router.get(
    "/api/health",
    response_model=None,
    responses={
        200: json_of(HealthOut, "Everything works"),
        503: json_of(HealthOut, "Something does not: see problems"),
    },
)
def health(hub: HubDep) -> JSONResponse:
    """200 when everything works; 503 with the reasons when something does not."""
    problems: list[str] = []
    mqtt = "connected" if hub.mqtt.connected else "disconnected"
    if not hub.mqtt.connected:
        problems.append(
            "not connected to the MQTT broker"
            + (f" ({hub.mqtt.last_error})" if hub.mqtt.last_error else "")
        )
    if not hub.mqtt.thread_alive and hub.started:
        problems.append("the MQTT network thread is not running")
    db = "ok" if hub.store.check() else "error"
    if db != "ok":
        problems.append("the database does not answer")
    storage = hub.storage.status()
    if storage.state in ("full", "failing"):
        problems.append(storage.detail or "the storage refuses writes")
    clock = hub.clock_trust.state()
    if clock.problem and hub.settings.announcements.require_clock_sync:
        problems.append(clock.problem)  # scheduled broadcasts wait (emergencies do not)
    ing = hub.ingest
    st = ing.stats
    if hub.started and not ing.alive:
        problems.append("the ingest writer stopped")
    elif ing.pending and hub.clock.monotonic() - st.last_progress > STALL_S:
        problems.append(
            f"{ing.pending} messages waiting and nothing committed for "
            f"{hub.clock.monotonic() - st.last_progress:.0f} s"
            + (f" (last error: {st.last_error})" if st.last_error else "")
        )
    body: dict[str, Any] = {
        "status": "ok" if not problems else "error",
        "mqtt": mqtt,
        "db": db,
        "clock_synced": clock.synced,
        "clock": clock.brief(),
        "version": __version__,
        "ingest": {
            "received": st.received,
            "stored": st.stored,
            "duplicates": st.duplicates,
            "dead_letters": st.dead_letters,
            "internal_errors": st.internal_errors,
            "pending": ing.pending,
            "last_error": st.last_error,
            "paused": ing.paused_since is not None,
        },
        "storage": {
            "state": storage.state,
            "free_bytes": storage.free_bytes,
            "total_bytes": storage.total_bytes,
            "detail": storage.detail,
            "since": iso(storage.since),
        },
    }
    if problems:
        body["problems"] = problems
    return JSONResponse(body, status_code=200 if not problems else 503)
