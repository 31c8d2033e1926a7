"""HTTP API: FastAPI app factory; the hub's services start and stop in its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from hub import __version__
from hub.api import announcements, auth, devices, feedback, health, metrics, rules
from hub.app import Hub
from hub.web import mount_web


def create_app(hub: Hub, *, manage_hub: bool = True) -> FastAPI:
    """Build the web API over a built hub. With ``manage_hub`` the lifespan starts and
    stops the hub's services (one process, one loop: uvicorn + the hub)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
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
    app.state.throttle = auth.Throttle()

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # 422 with a reason a person can read: "query.limit: Input should be ≤ 1000".
        errors = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return JSONResponse({"detail": "; ".join(errors)}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(devices.router)
    app.include_router(metrics.router)
    app.include_router(announcements.router)
    app.include_router(feedback.router)
    app.include_router(rules.router)
    mount_web(app, hub)
    return app
