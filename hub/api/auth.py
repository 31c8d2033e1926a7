"""POST /api/auth/token: OAuth2 password form -> bearer token, with sign-in throttling."""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from hub.api.deps import HubDep
from hub.errors import AuthError

router = APIRouter(tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"


class Throttle:
    """Failed sign-ins per (user name, address) in a sliding window; in memory."""

    def __init__(self) -> None:
        self._fails: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def blocked(self, key: tuple[str, str], now: float, limit: int, window: float) -> float:
        with self._lock:
            q = self._fails[key]
            while q and q[0] <= now - window:
                q.popleft()
            return (q[0] + window - now) if len(q) >= limit else 0.0

    def fail(self, key: tuple[str, str], now: float) -> None:
        with self._lock:
            self._fails[key].append(now)

    def reset(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._fails.pop(key, None)


@router.post("/api/auth/token", response_model=Token)
def token(
    request: Request, hub: HubDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> Token:
    throttle = _throttle(request)
    http = hub.settings.http
    now = hub.clock.monotonic()
    key = (form.username.lower(), request.client.host if request.client else "?")
    wait = throttle.blocked(key, now, http.login_attempts, http.login_window_s)
    if wait > 0:
        raise HTTPException(
            429,
            f"too many failed sign-ins; try again in {wait:.0f} s",
            headers={"Retry-After": str(int(wait) + 1)},
        )
    try:
        user = hub.users.authenticate(form.username, form.password)
    except AuthError as e:
        throttle.fail(key, now)
        raise HTTPException(401, str(e), headers={"WWW-Authenticate": "Bearer"}) from None
    throttle.reset(key)
    access = hub.users.issue_token(
        user, now=hub.clock.now().timestamp(), ttl_s=http.token_ttl_h * 3600
    )
    return Token(access_token=access)


def _throttle(request: Request) -> Throttle:
    t: Throttle = request.app.state.throttle
    return t
