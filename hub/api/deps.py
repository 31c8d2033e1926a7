"""API plumbing: the hub from app.state, the signed-in user and role checks, time parameters."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordBearer

from hub.app import Hub
from hub.clock import utc_iso
from hub.errors import AuthError
from hub.users import Role, User

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


def get_hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


HubDep = Annotated[Hub, Depends(get_hub)]


def current_user(hub: HubDep, token: Annotated[str | None, Depends(oauth2)]) -> User:
    if not token:
        raise HTTPException(401, "sign in first", headers={"WWW-Authenticate": "Bearer"})
    try:
        return hub.users.from_token(token, now=hub.clock.now().timestamp())
    except AuthError as e:
        raise HTTPException(401, str(e), headers={"WWW-Authenticate": "Bearer"}) from None


def require(*roles: Role) -> Callable[..., User]:
    """A dependency that lets through the given roles (and admin)."""

    def check(user: Annotated[User, Depends(current_user)]) -> User:
        if not user.has(*roles):
            raise HTTPException(403, f"needs the role {' or '.join(roles)}")
        return user

    return check


Technician = Annotated[User, Depends(require("technician"))]


def parse_time(value: str | None, name: str, tz: tzinfo = UTC) -> float | None:
    """``since``/``until``: ISO 8601 or epoch seconds -> epoch seconds.

    A time without an offset is the village's local time, as in request bodies.
    """
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(
            422, f"{name}: not a time (use ISO 8601 like 2026-12-01T12:30:00Z or epoch seconds)"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return dt.timestamp()


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return utc_iso(datetime.fromtimestamp(ts, UTC))
