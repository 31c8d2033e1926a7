"""The residents' feedback form, ``/gop-y``: no sign-in, a double-submit CSRF token.

A report goes through the same service, checks and rate limit as ``POST /api/feedback``
(:class:`hub.services.feedback.Feedback`): the same sender shares one window.
"""

from __future__ import annotations

import hmac
import math
import secrets
from collections.abc import Mapping
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from hub.api.deps import read_body
from hub.errors import Throttled
from hub.services.feedback import CATEGORIES, FeedbackIn
from hub.web.public_pages import script_words
from hub.web.render import hub_of, render, translator
from hub.web.session import CsrfFailed, session_of

router = APIRouter(include_in_schema=False)

#: The anonymous form's double-submit CSRF cookie (there is no session to bind it to).
FORM_CSRF_COOKIE = "langso_form_csrf"
FORM_PATH = "/gop-y"
#: A form body may be larger than the JSON API's: 2,000 Vietnamese letters percent-encode
#: to up to 9 bytes each.
FORM_BODY_LIMIT = 24 * 1024
#: The catalogue key that says what is wrong with each field.
FIELD_ERRORS = {
    "message": "fb.err.message",
    "name": "fb.err.long",
    "contact": "fb.err.long",
    "category": "fb.err.category",
}


def reference(fid: int) -> str:
    """What the resident is told to quote, and what the head's inbox shows: ``PA-12``."""
    return f"PA-{fid}"


def _ref_tag(key: str, fid: int) -> str:
    return hmac.new(key.encode(), str(fid).encode(), "sha256").hexdigest()[:10]


def _ref_shown(request: Request, ref: str) -> str | None:
    """The thank-you's reference, only for the browser that sent it: the query carries the
    id and a tag keyed by this browser's form cookie, so ``?ref=`` cannot make the page
    claim a report someone else sent (or none at all)."""
    key = request.cookies.get(FORM_CSRF_COOKIE)
    fid, _, tag = ref.partition(".")
    if not key or not fid.isdigit() or len(fid) > 12:
        return None
    return reference(int(fid)) if hmac.compare_digest(tag, _ref_tag(key, int(fid))) else None


def _form_csrf(request: Request) -> tuple[str, bool]:
    value = request.cookies.get(FORM_CSRF_COOKIE)
    if value and len(value) >= 32:
        return value, False
    return secrets.token_urlsafe(32), True


def _feedback_form(
    request: Request,
    *,
    status: int = 200,
    ok: bool = False,
    ref: str | None = None,
    errors: Mapping[str, str] | None = None,
    error: str = "",
    form: Mapping[str, str] | None = None,
) -> HTMLResponse:
    hub = hub_of(request)
    t = translator(request)
    value, fresh = _form_csrf(request)
    response = render(
        request,
        "public_feedback.html",
        t=t,
        session=session_of(request, hub),
        status=status,
        data={"page": "feedback", "t": script_words(t.lang)},
        form_csrf=value,
        categories=CATEGORIES,
        ok=ok,
        ref=ref,
        errors=errors or {},
        error=error,
        form=form or {},
    )
    if fresh:
        response.set_cookie(
            FORM_CSRF_COOKIE,
            value,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=FORM_PATH,
        )
    return response


@router.get(FORM_PATH, response_class=HTMLResponse)
def feedback_page(request: Request, ok: int = 0, ref: str = "") -> HTMLResponse:
    return _feedback_form(request, ok=bool(ok), ref=_ref_shown(request, ref[:40]))


@router.post(FORM_PATH, response_class=HTMLResponse)
async def feedback_submit(request: Request) -> Response:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise HTTPException(415, "send the form as application/x-www-form-urlencoded")
    raw = await read_body(request, FORM_BODY_LIMIT)
    try:
        fields = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=8)
    except ValueError:
        raise HTTPException(400, "too many form fields") from None
    form = {k: v[0] for k, v in fields.items() if v}
    cookie = request.cookies.get(FORM_CSRF_COOKIE)
    sent = form.get("csrf")
    if not cookie or not sent or not hmac.compare_digest(cookie, sent):
        raise CsrfFailed(None, "missing or wrong CSRF token on the feedback form")
    t = translator(request)
    kept = {k: form.get(k, "")[:2000] for k in ("name", "contact", "message", "category")}
    try:
        body = FeedbackIn.model_validate({k: v for k, v in kept.items() if v or k == "message"})
    except ValidationError as e:
        errors = {}
        for err in e.errors():
            field = str(err["loc"][0]) if err["loc"] else "message"
            errors[field] = t(FIELD_ERRORS.get(field, "fb.err.message"))
        return await run_in_threadpool(
            lambda: _feedback_form(request, status=422, errors=errors, form=kept)
        )
    address = request.client.host if request.client else "?"
    try:
        stored = await run_in_threadpool(
            hub_of(request).feedback.submit, body, address=address, lang=t.lang
        )
    except Throttled as refused:
        minutes = max(1, math.ceil(refused.retry_after / 60))
        response = await run_in_threadpool(
            lambda: _feedback_form(
                request, status=429, error=t("fb.err.throttled", n=minutes), form=kept
            )
        )
        response.headers["Retry-After"] = str(math.ceil(refused.retry_after))
        return response
    # Post/redirect/get: a reload does not send the report twice.
    fid = int(stored["id"])
    return RedirectResponse(f"{FORM_PATH}?ok=1&ref={fid}.{_ref_tag(cookie, fid)}", status_code=303)
