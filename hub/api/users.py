"""/api/users: the admin adds people, changes roles, resets passwords, disables accounts.

Every write goes through :class:`hub.services.users.Users`, which audits it in the same
transaction. The web page's forms call the same functions (``add_user`` …).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Response
from pydantic import BaseModel, Field

from hub.api.deps import HubDep, require
from hub.app import Hub
from hub.services.users import Role, User

router = APIRouter(tags=["users"])

Admin = Annotated[User, Depends(require("admin"))]


class UserError(ValueError):
    """A refused change, with the HTTP status it maps to and a catalogue key for the page."""

    def __init__(self, status: int, key: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.key, self.detail = status, key, detail


class NewUser(BaseModel):
    username: str = Field(max_length=64, description="2-32 letters, digits, '.', '_' or '-'.")
    role: Role
    password: str = Field(max_length=256, description="At least 10 characters.")


class UserChange(BaseModel):
    role: Role | None = None
    disabled: bool | None = None


class NewPassword(BaseModel):
    password: str = Field(max_length=256, description="At least 10 characters.")


def user_json(u: User) -> dict[str, Any]:
    return {"id": u.id, "username": u.username, "role": u.role, "disabled": u.disabled}


def _weak(e: ValueError) -> UserError:
    msg = str(e)
    if "too short" in msg:
        key = "users.err.short"
    elif "too easy" in msg:
        key = "users.err.easy"
    elif "user name" in msg:
        key = "users.err.name"
    else:
        key = "users.err.invalid"
    return UserError(422, key, msg)


def _target(hub: Hub, user_id: int) -> User:
    u = hub.users.get(user_id)
    if u is None:
        raise UserError(404, "users.err.missing", f"no user {user_id}")
    return u


def _keep_an_admin(hub: Hub, target: User, *, role: str, disabled: bool) -> None:
    """Refuse to leave the hub with no enabled admin (nobody could manage users)."""
    if target.role != "admin" or target.disabled or (role == "admin" and not disabled):
        return
    admins = [u for u in hub.users.list_users() if u.role == "admin" and not u.disabled]
    if len(admins) <= 1:
        raise UserError(409, "users.err.last_admin", "the last enabled admin must stay one")


def add_user(hub: Hub, actor: User, username: str, role: str, password: str) -> User:
    if hub.store.one("SELECT 1 FROM users WHERE username=?", (username,)) is not None:
        raise UserError(409, "users.err.exists", f"user {username!r} already exists")
    try:
        return hub.users.add(
            username, role, password, actor=actor.username, now=hub.clock.now().timestamp()
        )
    except ValueError as e:
        if "already exists" in str(e):  # lost a race with another admin
            raise UserError(409, "users.err.exists", str(e)) from None
        raise _weak(e) from None


def change_user(
    hub: Hub, actor: User, user_id: int, *, role: str | None = None, disabled: bool | None = None
) -> User:
    target = _target(hub, user_id)
    new_role = role if role is not None else target.role
    new_disabled = disabled if disabled is not None else target.disabled
    _keep_an_admin(hub, target, role=new_role, disabled=new_disabled)
    now = hub.clock.now().timestamp()
    try:
        if role is not None and role != target.role:
            target = hub.users.set_role(user_id, role, actor=actor.username, now=now)
        if disabled is not None and disabled != target.disabled:
            target = hub.users.set_disabled(user_id, disabled, actor=actor.username, now=now)
    except ValueError as e:
        raise _weak(e) from None
    return target


def reset_password(hub: Hub, actor: User, user_id: int, password: str) -> None:
    _target(hub, user_id)
    try:
        hub.users.set_password(
            user_id, password, actor=actor.username, now=hub.clock.now().timestamp()
        )
    except ValueError as e:
        raise _weak(e) from None


def _http(e: UserError) -> HTTPException:
    return HTTPException(e.status, e.detail)


@router.get("/api/users")
def list_users(hub: HubDep, admin: Admin) -> list[dict[str, Any]]:
    return [user_json(u) for u in hub.users.list_users()]


@router.post("/api/users", status_code=201)
def create_user(hub: HubDep, admin: Admin, body: NewUser) -> dict[str, Any]:
    """Add a user: 409 if the name is taken, 422 if the password is too weak."""
    try:
        return user_json(add_user(hub, admin, body.username, body.role, body.password))
    except UserError as e:
        raise _http(e) from None


@router.patch("/api/users/{user_id}")
def update_user(hub: HubDep, admin: Admin, user_id: int, body: UserChange) -> dict[str, Any]:
    """Change the role or disable / enable (a disabled user's sessions end at once)."""
    try:
        return user_json(change_user(hub, admin, user_id, role=body.role, disabled=body.disabled))
    except UserError as e:
        raise _http(e) from None


@router.post("/api/users/{user_id}/password", status_code=204)
def set_password(hub: HubDep, admin: Admin, user_id: int, body: NewPassword) -> Response:
    """Reset a password; the user's sessions and tokens end."""
    try:
        reset_password(hub, admin, user_id, body.password)
    except UserError as e:
        raise _http(e) from None
    return Response(status_code=204)
