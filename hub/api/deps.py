"""API plumbing: the hub from app.state, the signed-in user and role checks, time parameters,
the client's address."""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
from collections.abc import Callable, Sequence
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordBearer

from hub.app import Hub

# The one epoch-to-ISO helper, under the name the route modules import it by.
from hub.clock import iso as iso
from hub.errors import AuthError
from hub.services.users import Role, User

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)

#: The web page's session: a token from the same table as bearer tokens, in a cookie.
SESSION_COOKIE = "langso_session"
#: A cookie-authenticated write must carry this header with the session's CSRF token.
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token(session: str) -> str:
    """The synchronizer token bound to a session: derived from the session token, which
    another site can neither read (HttpOnly) nor guess, so neither can it this."""
    return hmac.new(b"langso-csrf-v1", session.encode(), hashlib.sha256).hexdigest()


def csrf_ok(session: str, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(csrf_token(session), str(sent))


def get_hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


HubDep = Annotated[Hub, Depends(get_hub)]


def current_user(
    request: Request, hub: HubDep, token: Annotated[str | None, Depends(oauth2)]
) -> User:
    """The bearer token's user; without one, the web session's (writes need the CSRF header)."""
    if not token:
        session = request.cookies.get(SESSION_COOKIE)
        if not session:
            raise HTTPException(401, "sign in first", headers={"WWW-Authenticate": "Bearer"})
        try:
            user = hub.users.from_token(session, now=hub.clock.now().timestamp())
        except AuthError:
            raise HTTPException(401, "the web session has expired: sign in again") from None
        if request.method not in SAFE_METHODS and not csrf_ok(
            session, request.headers.get(CSRF_HEADER)
        ):
            raise HTTPException(
                403, f"CSRF check failed: a write with the session cookie needs {CSRF_HEADER}"
            )
        return user
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


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.cache
def _networks(proxies: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in proxies)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def forwarded_for(peer: str, header: str | None, proxies: Sequence[str]) -> str:
    """The client's address: the peer's, unless the peer is one of ``proxies``; then the
    nearest address in ``X-Forwarded-For`` that is not one of them (each proxy appends the
    address it saw, so only the entries our own proxies added can be believed: whatever the
    client wrote itself is further left). A value that is not an address is not believed."""
    networks = _networks(tuple(proxies))

    def trusted(address: str) -> bool:
        ip = _ip(address)
        return ip is not None and any(ip in net for net in networks)

    if not header or not trusted(peer):
        return peer
    for entry in reversed(header.split(",")[-16:]):
        ip = _ip(entry)
        if ip is None:
            return peer
        if not trusted(str(ip)):
            return str(ip)
    return peer


def client_address(request: Request) -> str:
    """Who sent the request, as the throttles key it and the sign-in log names it:
    ``X-Forwarded-For`` counts only from the configured ``http.trusted_proxies``."""
    peer = request.client.host if request.client else "?"
    hub: Hub = request.app.state.hub
    header = ",".join(request.headers.getlist("x-forwarded-for"))
    return forwarded_for(peer, header, hub.settings.http.trusted_proxies)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, or 413 past ``limit`` bytes (declared or streamed)."""
    length = request.headers.get("content-length")
    too_big = HTTPException(413, f"the body is larger than {limit} bytes")
    if length and length.isdigit() and int(length) > limit:
        raise too_big
    size, chunks = 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)
