"""Accounts (``/app/users``, admin only): add people, change roles, reset passwords, disable.

Every change goes through :class:`hub.services.users.Users` (checked and audited, as
``/api/users``); a refusal is said in words from its reason, ``users.err.<reason>``.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from hub.api.errors import status_of
from hub.app import Hub
from hub.services.users import ROLES, AccountError
from hub.web.render import hub_of, read_form, render, translator
from hub.web.session import Session, form_session, require_page
from hub.words import Translator

router = APIRouter(include_in_schema=False)


@router.get("/app/users", response_class=HTMLResponse)
def users_page(request: Request, ok: str = "") -> HTMLResponse:
    hub = hub_of(request)
    session = require_page(request, hub, "admin")
    t = translator(request)
    key = f"users.ok.{ok}"
    return _users(request, hub, session, t, notice=t(key) if ok and t.has(key) else "")


def _users(
    request: Request,
    hub: Hub,
    session: Session,
    t: Translator,
    *,
    notice: str = "",
    error: str = "",
    status: int = 200,
    form: Mapping[str, str] | None = None,
) -> HTMLResponse:
    return render(
        request,
        "users.html",
        t=t,
        session=session,
        active="users",
        status=status,
        users=hub.users.list_users(),
        roles=ROLES,
        notice=notice,
        error=error,
        form=form or {},
    )


def _apply(hub: Hub, actor: str, action: str, user_id: int | None, form: Mapping[str, str]) -> None:
    """One change of the users page, as the admin ``actor`` asked it (worker thread)."""
    now = hub.clock.now().timestamp()
    if user_id is None:
        username, role = form.get("username", "").strip(), form.get("role", "")
        hub.users.add(username, role, form.get("password", ""), actor=actor, now=now)
    elif action == "role":
        hub.users.change(user_id, role=form.get("role", ""), actor=actor, now=now)
    elif action == "password":
        hub.users.set_password(user_id, form.get("password", ""), actor=actor, now=now)
    else:
        hub.users.change(user_id, disabled=action == "disabled", actor=actor, now=now)


async def _users_write(request: Request, action: str, user_id: int | None = None) -> Response:
    form = await read_form(request)
    hub = hub_of(request)
    session = await run_in_threadpool(
        form_session, request, hub, form.get("csrf"), "admin", back="/app/"
    )
    try:
        await run_in_threadpool(_apply, hub, session.user.username, action, user_id, form)
    except AccountError as refused:
        t = translator(request)
        kept = {"username": form.get("username", ""), "role": form.get("role", "")}
        error, status = t(f"users.err.{refused.reason}"), status_of(refused) or 422
        return await run_in_threadpool(
            lambda: _users(request, hub, session, t, error=error, status=status, form=kept)
        )
    # Post/redirect/get: a reload does not send the form twice.
    return RedirectResponse(f"/app/users?ok={action}", status_code=303)


@router.post("/app/users")
async def users_add(request: Request) -> Response:
    return await _users_write(request, "added")


@router.post("/app/users/{user_id}/role")
async def users_role(request: Request, user_id: int) -> Response:
    return await _users_write(request, "role", user_id)


@router.post("/app/users/{user_id}/password")
async def users_password(request: Request, user_id: int) -> Response:
    return await _users_write(request, "password", user_id)


@router.post("/app/users/{user_id}/disable")
async def users_disable(request: Request, user_id: int) -> Response:
    return await _users_write(request, "disabled", user_id)


@router.post("/app/users/{user_id}/enable")
async def users_enable(request: Request, user_id: int) -> Response:
    return await _users_write(request, "enabled", user_id)
