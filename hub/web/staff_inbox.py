"""The village head's inbox (``/app/feedback``): the residents' reports, marked read or done.

Through :class:`hub.services.feedback.Feedback`, as ``/api/feedback`` (audited).
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from hub.errors import NotFound
from hub.services.feedback import STATUSES
from hub.web.feedback_form import reference
from hub.web.render import hub_of, not_found, read_form, render, translator
from hub.web.session import form_session, require_page
from hub.words.times import ts_of

router = APIRouter(include_in_schema=False)

#: Reports listed at most.
SHOWN = 200


@router.get("/app/feedback", response_class=HTMLResponse)
def inbox(request: Request, status: str = "", ok: str = "") -> HTMLResponse:
    hub = hub_of(request)
    session = require_page(request, hub, "head")
    t = translator(request)
    shown = status if status in STATUSES else ""
    return render(
        request,
        "public_inbox.html",
        t=t,
        session=session,
        active="feedback",
        reports=hub.feedback.recent(status=shown or None, limit=SHOWN),
        counts=hub.feedback.counts(),
        current=shown,
        statuses=STATUSES,
        notice=t(f"fb.ok.{ok}") if ok in STATUSES else "",
        parse_iso=ts_of,
        tel=tel_href,
        reference=reference,
    )


def tel_href(contact: str | None) -> str | None:
    """``tel:`` for a contact that is a phone number (0912 345 678, +84 912.345.678), so
    the head calls with one tap; None for anything else (an e-mail, a name, a house)."""
    if not contact:
        return None
    raw = contact.strip()
    if not re.fullmatch(r"\+?[\d\s.()-]{8,20}", raw):
        return None
    digits = re.sub(r"\D", "", raw)
    if raw.startswith("+"):
        return f"tel:+{digits}" if 8 <= len(digits) <= 15 else None
    if digits.startswith("0") and 9 <= len(digits) <= 11:
        return f"tel:+84{digits[1:]}"  # a Vietnamese number written the local way
    return f"tel:{digits}" if 3 <= len(digits) <= 15 else None


@router.post("/app/feedback/{fid}")
async def inbox_mark(request: Request, fid: int) -> Response:
    form = await read_form(request)
    hub = hub_of(request)
    session = await run_in_threadpool(
        form_session, request, hub, form.get("csrf"), "head", back="/app/feedback"
    )
    status = form.get("status", "")
    if status not in STATUSES:
        raise HTTPException(422, f"status must be one of {', '.join(STATUSES)}")
    try:
        await run_in_threadpool(
            lambda: hub.feedback.set_status(fid, status, actor=session.user.username)
        )
    except NotFound:
        return await run_in_threadpool(not_found, request, session, "fb.not_found")
    back = form.get("filter", "")
    query = {"ok": status, **({"status": back} if back in STATUSES else {})}
    return RedirectResponse(f"/app/feedback?{urlencode(query)}#fb-{fid}", status_code=303)
