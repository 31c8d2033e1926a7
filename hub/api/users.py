"""/api/users: the admin adds people, changes roles, resets passwords, disables accounts.

Thin: every write goes through :class:`hub.services.users.Users`, which checks and audits
it; a refusal is a domain error that hub/api/errors.py turns into 404, 409 or 422.
``UserError``, ``add_user``, ``change_user`` and ``reset_password`` are the same calls in
the shape hub/web/pages.py still imports.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from hub.api.deps import HubDep, require
from hub.api.errors import status_of
from hub.app import Hub
from hub.services.users import AccountError, Role, User

router = APIRouter(tags=["users"])

Admin = Annotated[User, Depends(require("admin"))]


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


@router.get("/api/users")
def list_users(hub: HubDep, admin: Admin) -> list[dict[str, Any]]:
    return [user_json(u) for u in hub.users.list_users()]


@router.post("/api/users", status_code=201)
def create_user(hub: HubDep, admin: Admin, body: NewUser) -> dict[str, Any]:
    """Add a user: 409 if the name is taken, 422 if the password is too weak."""
    now = hub.clock.now().timestamp()
    user = hub.users.add(body.username, body.role, body.password, actor=admin.username, now=now)
    return user_json(user)


@router.patch("/api/users/{user_id}")
def update_user(hub: HubDep, admin: Admin, user_id: int, body: UserChange) -> dict[str, Any]:
    """Change the role or disable / enable (a disabled user's sessions end at once)."""
    now = hub.clock.now().timestamp()
    user = hub.users.change(
        user_id, role=body.role, disabled=body.disabled, actor=admin.username, now=now
    )
    return user_json(user)


@router.post("/api/users/{user_id}/password", status_code=204)
def set_password(hub: HubDep, admin: Admin, user_id: int, body: NewPassword) -> Response:
    """Reset a password; the user's sessions and tokens end."""
    now = hub.clock.now().timestamp()
    hub.users.set_password(user_id, body.password, actor=admin.username, now=now)
    return Response(status_code=204)


# -- the same calls as hub/web/pages.py imports them ---------------------------------------
class UserError(ValueError):
    """A refused change, with its HTTP status and the page's catalogue key."""

    def __init__(self, status: int, key: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.key, self.detail = status, key, detail

    @classmethod
    def of(cls, e: AccountError) -> UserError:
        return cls(status_of(e) or 422, f"users.err.{e.reason}", str(e))


def add_user(hub: Hub, actor: User, username: str, role: str, password: str) -> User:
    try:
        return hub.users.add(
            username, role, password, actor=actor.username, now=hub.clock.now().timestamp()
        )
    except AccountError as e:
        raise UserError.of(e) from None


def change_user(
    hub: Hub, actor: User, user_id: int, *, role: str | None = None, disabled: bool | None = None
) -> User:
    try:
        return hub.users.change(
            user_id,
            role=role,
            disabled=disabled,
            actor=actor.username,
            now=hub.clock.now().timestamp(),
        )
    except AccountError as e:
        raise UserError.of(e) from None


def reset_password(hub: Hub, actor: User, user_id: int, password: str) -> None:
    try:
        hub.users.set_password(
            user_id, password, actor=actor.username, now=hub.clock.now().timestamp()
        )
    except AccountError as e:
        raise UserError.of(e) from None
