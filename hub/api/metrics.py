"""GET /metrics: Prometheus text format, for a technician's token or a local scraper."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from hub.api.deps import HubDep, oauth2
from hub.api.errors import documented
from hub.app import Hub
from hub.errors import AuthError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

router = APIRouter(tags=["metrics"])

LOCAL = {"127.0.0.1", "::1"}


def _registry(request: Request, hub: Hub) -> CollectorRegistry:
    reg: CollectorRegistry | None = getattr(request.app.state, "registry", None)
    if reg is None:
        # prometheus_client is imported at the first scrape (see hub.api.prometheus).
        from hub.api.prometheus import new_registry

        reg = new_registry(hub)
        request.app.state.registry = reg
    return reg


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "The hub's counters in Prometheus text format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **documented(401, 403),
    },
)
def metrics(
    request: Request, hub: HubDep, token: Annotated[str | None, Depends(oauth2)]
) -> Response:
    local = request.client is not None and request.client.host in LOCAL
    if not local:
        if not token:
            raise HTTPException(401, "sign in first", headers={"WWW-Authenticate": "Bearer"})
        try:
            user = hub.users.from_token(token, now=hub.clock.now().timestamp())
        except AuthError as e:
            raise HTTPException(401, str(e)) from None
        if not user.has("technician"):
            raise HTTPException(403, "needs the role technician")
    from prometheus_client import generate_latest

    return Response(
        generate_latest(_registry(request, hub)),
        media_type="text/plain; version=0.0.4; charset=utf-8",
    )
