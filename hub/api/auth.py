"""POST /api/auth/token: OAuth2 password form -> bearer token, through the accounts service.

The sign-in throttles live in :meth:`hub.services.users.Users.sign_in`, shared with the web
page's sign-in; too many failures (or too many password checks at once) raise ``Throttled``
(429 with Retry-After, mapped in hub/api/errors.py). Every refusal gets the same 401 and
words, whether the password was wrong, the name unknown or the account disabled.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from hub.api.deps import HubDep, client_address
from hub.api.errors import documented
from hub.errors import AuthError

router = APIRouter(tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"


@router.post("/api/auth/token", response_model=Token, responses=documented(400, 401, 413, 422, 429))
def token(
    request: Request, hub: HubDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> Token:
    try:
        access = hub.users.sign_in(form.username, form.password, address=client_address(request))
    except AuthError as e:
        raise HTTPException(401, str(e), headers={"WWW-Authenticate": "Bearer"}) from None
    return Token(access_token=access)
