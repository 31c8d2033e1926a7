"""/api/users: the admin adds people, changes roles, resets passwords, disables accounts.

Thin: every write goes through :class:`hub.services.users.Users`, which checks and audits
it; a refusal is a domain error that hub/api/errors.py turns into 404, 409 or 422.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from hub.api.deps import HubDep, require
from hub.api.errors import documented
from hub.api.schemas import RowId, UserOut, json_of
from hub.services.users import Role, User

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


@router.get(
    "/api/users",
    response_model=None,
    responses={200: json_of(list[UserOut]), **documented(401, 403)},
)
def list_users(hub: HubDep, admin: Admin) -> list[dict[str, Any]]:
    return [user_json(u) for u in hub.users.list_users()]


@router.post(
    "/api/users",
    status_code=201,
    response_model=None,
    responses={201: json_of(UserOut, "Added"), **documented(400, 401, 403, 409, 413, 422, 429)},
)
def create_user(hub: HubDep, admin: Admin, body: NewUser) -> dict[str, Any]:
    """Add a user: 409 if the name is taken, 422 if the password is too weak."""
    now = hub.clock.now().timestamp()
    user = hub.users.add(body.username, body.role, body.password, actor=admin.username, now=now)
    return user_json(user)


@router.patch(
    "/api/users/{user_id}",
    response_model=None,
    responses={200: json_of(UserOut), **documented(400, 401, 403, 404, 409, 413, 422)},
)
def update_user(hub: HubDep, admin: Admin, user_id: RowId, body: UserChange) -> dict[str, Any]:
    """Change the role or disable / enable (a disabled user's sessions end at once)."""
    now = hub.clock.now().timestamp()
    user = hub.users.change(
        user_id, role=body.role, disabled=body.disabled, actor=admin.username, now=now
    )
    return user_json(user)


@router.post(
    "/api/users/{user_id}/password",
    status_code=204,
    response_class=Response,
    responses={204: {"description": "Changed"}, **documented(400, 401, 403, 404, 413, 422, 429)},
)
def set_password(hub: HubDep, admin: Admin, user_id: RowId, body: NewPassword) -> Response:
    """Reset a password; the user's sessions and tokens end."""
    now = hub.clock.now().timestamp()
    hub.users.set_password(user_id, body.password, actor=admin.username, now=now)
    return Response(status_code=204)
