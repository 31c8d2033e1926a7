"""The staff's door: signing in and out, the favicon, and how pages answer a missing session,
a missing role or a wrong CSRF token (the exceptions of :mod:`hub.web.session`).

Signing in goes through :meth:`hub.services.users.Users.sign_in`, with the same throttles
(and the same client address, proxies believed as configured) as ``POST /api/auth/token``;
the Argon2 check runs in the thread pool.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from hub.api.deps import client_address
from hub.errors import AuthError, Throttled
from hub.web.render import STATIC, error_page, hub_of, read_form, render, translator
from hub.web.session import (
    CsrfFailed,
    LoginRequired,
    PageForbidden,
    check_form,
    check_login_form,
    clear_session,
    login_csrf,
    safe_next,
    session_of,
    set_login_csrf,
    set_session,
)

__all__ = ["STATIC", "on_csrf", "on_forbidden", "on_login_required", "router"]

router = APIRouter(include_in_schema=False)


@router.get("/favicon.ico")
def favicon() -> FileResponse:
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")


@router.get("/app/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None, bye: int = 0) -> Response:
    hub = hub_of(request)
    if session_of(request, hub) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_form(request, next_url=safe_next(next), notice="login.signed_out" if bye else "")


def _login_form(
    request: Request,
    *,
    next_url: str,
    error: str = "",
    notice: str = "",
    username: str = "",
    status: int = 200,
) -> HTMLResponse:
    value, fresh = login_csrf(request)
    response = render(
        request,
        "login.html",
        t=translator(request),
        session=None,
        status=status,
        login_csrf=value,
        next_url=next_url,
        error=error,
        notice=notice,
        username=username,
    )
    if fresh:
        set_login_csrf(response, request, value)
    return response


@router.post("/app/login", response_class=HTMLResponse)
async def login_submit(request: Request) -> Response:
    form = await read_form(request)
    check_login_form(request, form.get("csrf"))
    hub = hub_of(request)
    t = translator(request)
    username = form.get("username", "").strip()[:64]
    next_url = safe_next(form.get("next"))
    try:
        token = await run_in_threadpool(
            hub.users.sign_in, username, form.get("password", ""), address=client_address(request)
        )
    except Throttled as e:
        wait = str(int(e.retry_after))
        r = _login_form(
            request,
            next_url=next_url,
            error=t("login.throttled", s=wait),
            username=username,
            status=429,
        )
        r.headers["Retry-After"] = wait
        return r
    except AuthError:
        # One answer for a wrong password, an unknown name and a disabled account.
        return _login_form(
            request, next_url=next_url, error=t("login.failed"), username=username, status=401
        )
    response = RedirectResponse(next_url, status_code=303)
    set_session(response, request, token, max_age=int(hub.settings.http.token_ttl_h * 3600))
    return response


@router.post("/app/logout")
async def logout(request: Request) -> Response:
    form = await read_form(request)
    hub = hub_of(request)
    session = await run_in_threadpool(session_of, request, hub)
    response = RedirectResponse("/app/login?bye=1", status_code=303)
    if session is not None:
        check_form(session, form.get("csrf"))
        await run_in_threadpool(hub.users.revoke, session.token, now=hub.clock.now().timestamp())
    clear_session(response, request)
    return response


async def on_login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    target = "/app/login"
    if exc.next_url and exc.next_url != "/app/":
        target += "?" + urlencode({"next": exc.next_url})
    # A form posted after the session ended: 303 turns the POST into a GET.
    return RedirectResponse(target, status_code=302 if request.method == "GET" else 303)


async def on_forbidden(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageForbidden)
    t = translator(request)
    return await run_in_threadpool(
        lambda: error_page(
            request,
            session=exc.session,
            status=403,
            title="error.forbidden",
            text=t(
                "error.forbidden_text",
                roles=", ".join(t(f"role.{r}") for r in dict.fromkeys((*exc.roles, "admin"))),
                role=t(f"role.{exc.session.user.role}"),
            ),
        )
    )


async def on_csrf(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CsrfFailed)
    t = translator(request)
    response = await run_in_threadpool(
        lambda: error_page(
            request,
            session=exc.session,
            status=403,
            title="error.csrf",
            text=t("error.csrf_text"),
        )
    )
    response.headers["X-Refused"] = exc.reason
    return response
