"""Web sessions: the session cookie, CSRF checks on every form, role checks on every page.

A session is a token of the ``tokens`` table (issued and checked by
:class:`hub.services.users.Users`, stored hashed), carried in the ``langso_session``
cookie: HttpOnly, SameSite=Strict, Secure over https. Every form carries a
CSRF token: bound to the session (see :func:`hub.api.deps.csrf_token`), or,
for the sign-in form that comes before any session, a random value also set
in a cookie (double submit).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request, Response

from hub.api.deps import SESSION_COOKIE, csrf_ok, csrf_token
from hub.app import Hub
from hub.errors import AuthError
from hub.services.users import Role, User

LOGIN_CSRF_COOKIE = "langso_login_csrf"
LANG_COOKIE = "lang"


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    token: str

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)


class LoginRequired(Exception):
    """No valid session: the page sends the person to the sign-in form."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class PageForbidden(Exception):
    """Signed in, without the role the page needs."""

    def __init__(self, session: Session, roles: tuple[Role, ...]) -> None:
        super().__init__(roles)
        self.session, self.roles = session, roles


class CsrfFailed(Exception):
    """A form without its CSRF token, or with a wrong one."""

    def __init__(self, session: Session | None, reason: str) -> None:
        super().__init__(reason)
        self.session, self.reason = session, reason


def session_of(request: Request, hub: Hub) -> Session | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        user = hub.users.from_token(token, now=hub.clock.now().timestamp())
    except AuthError:
        return None
    return Session(user, token)


def require_page(request: Request, hub: Hub, *roles: Role) -> Session:
    """The page's session; redirects to sign in without one, 403 without the role."""
    session = session_of(request, hub)
    if session is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(path)
    if roles and not session.user.has(*roles):
        raise PageForbidden(session, roles)
    return session


def form_session(
    request: Request, hub: Hub, sent: str | None, *roles: Role, back: str | None = None
) -> Session:
    """A staff form: a session (else sign in, then ``back``: by default the form's page),
    its CSRF token ``sent`` (else 403), the role (else 403)."""
    session = session_of(request, hub)
    if session is None:
        raise LoginRequired(back or request.url.path)
    check_form(session, sent)
    if roles and not session.user.has(*roles):
        raise PageForbidden(session, roles)
    return session


def check_form(session: Session | None, sent: str | None) -> None:
    """A signed-in form: its ``csrf`` field must be the session's token."""
    if session is None or not csrf_ok(session.token, sent):
        raise CsrfFailed(session, "missing or wrong CSRF token")


def check_login_form(request: Request, sent: str | None) -> None:
    """The sign-in form: double submit of the value in the login CSRF cookie."""
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not cookie or not sent or not hmac.compare_digest(cookie, sent):
        raise CsrfFailed(None, "missing or wrong CSRF token on the sign-in form")


def login_csrf(request: Request) -> tuple[str, bool]:
    """(the sign-in form's CSRF value, whether the cookie must be set)."""
    value = request.cookies.get(LOGIN_CSRF_COOKIE)
    if value and len(value) >= 32:
        return value, False
    return secrets.token_urlsafe(32), True


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_login_csrf(response: Response, request: Request, value: str) -> None:
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        value,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/app/login",
    )


def set_session(response: Response, request: Request, token: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/app/login")


def clear_session(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=_secure(request)
    )


def safe_next(value: str | None, default: str = "/app/") -> str:
    """Only a path of this site's staff pages: never an open redirect."""
    if value and value.startswith("/app") and not value.startswith("//") and "\\" not in value:
        return value
    return default
