"""The HTTP side's composition root: the API routers, the live stream and the web pages
over one built hub (``create_app(hub)``), served by uvicorn in ``langso run``.

The hub's services start and stop in the app's lifespan (one process, one loop). The
live-update bus is fed from the hub's dispatcher here and bound to the server's loop
in the lifespan, before the services start: nothing they publish is lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from hub import __version__
from hub.api import (
    alerts_ack,
    announcements,
    auth,
    clock,
    devices,
    errors,
    feedback,
    health,
    households,
    lexicon,
    live,
    metrics,
    rules,
    stream,
    users,
    voices,
)
from hub.app import Hub
from hub.bus import Bus, attach
from hub.web import mount_web


def create_app(hub: Hub, *, manage_hub: bool = True) -> FastAPI:
    """Build the web API and pages over a built hub. With ``manage_hub`` the lifespan
    starts and stops the hub's services."""
    bus = Bus()
    attach(bus, hub.events)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        bus.bind(asyncio.get_running_loop())
        if manage_hub and not hub.started:
            hub.start()
        try:
            yield
        finally:
            if manage_hub and hub.started:
                hub.stop()

    app = FastAPI(
        title="Làng Số Hub",
        version=__version__,
        description="Village hub: devices, health, alerts and announcements.",
        lifespan=lifespan,
    )
    app.state.hub = hub
    app.state.bus = bus

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # 422 with a reason a person can read: "query.limit: Input should be ≤ 1000".
        errors_ = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return JSONResponse({"detail": "; ".join(errors_)}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    errors.install(app)
    for module in (health, auth, devices, metrics, announcements, feedback, rules):
        app.include_router(module.router)
    for module in (stream, alerts_ack, users, clock, households, lexicon, voices, live):
        app.include_router(module.router)
    mount_web(app, hub)
    return app
