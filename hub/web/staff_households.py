"""Households (``/app/households``): the opt-in list of household phones that get
emergency announcements by SMS, the count per zone, and the SMS log.

The head (and admin) adds and removes households; technicians read the list and the log.
Every change goes through :class:`hub.services.households.Households`, as
``/api/households`` does (checked and audited); a refusal is said next to its field, in
words from its reason (``hh.err.<reason>``).
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from hub.app import Hub
from hub.automation.notify_settings import SmsChannel
from hub.errors import NotFound
from hub.services.households import HouseholdIn, HouseholdRefused, Households, PhoneTaken
from hub.web.render import hub_of, not_found, read_form, render, translator
from hub.web.session import Session, form_session, require_page
from hub.words import Translator
from hub.words.times import ts_of

router = APIRouter(include_in_schema=False)

#: SMS log lines shown.
SMS_SHOWN = 20
OK = ("added", "removed")


def households(hub: Hub) -> Households:
    """The service over the hub's store (stateless: made per request, as the API does)."""
    return Households(hub.store, clock=hub.clock, zones=hub.settings.gpio.zones)


@router.get("/app/households", response_class=HTMLResponse)
def households_page(request: Request, ok: str = "") -> HTMLResponse:
    hub = hub_of(request)
    session = require_page(request, hub, "head", "technician")
    t = translator(request)
    return _page(request, hub, session, t, notice=t(f"hh.ok.{ok}") if ok in OK else "")


def _page(
    request: Request,
    hub: Hub,
    session: Session,
    t: Translator,
    *,
    notice: str = "",
    errors: Mapping[str, str] | None = None,
    form: Mapping[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    service = households(hub)
    return render(
        request,
        "staff_households.html",
        t=t,
        session=session,
        active="households",
        status=status,
        households=service.listed(),
        per_zone=service.per_zone(),
        zone_names=hub.settings.gpio.zone_names,
        sms=service.sms_log(SMS_SHOWN),
        # Without an sms channel for households the list is kept but nothing is sent: say so.
        sms_ready=any(
            isinstance(ch, SmsChannel) and ch.households
            for ch in hub.settings.notify.channels.values()
        ),
        can_edit=session.user.has("head"),
        notice=notice,
        errors=errors or {},
        form=form or {},
        parse_iso=ts_of,
    )


@router.post("/app/households")
async def households_add(request: Request) -> Response:
    form = await read_form(request)
    hub = hub_of(request)
    session = await run_in_threadpool(
        form_session, request, hub, form.get("csrf"), "head", back="/app/households"
    )
    kept = {k: form.get(k, "") for k in ("name", "phone", "zone")}
    try:
        body = HouseholdIn.model_validate(kept)
        await run_in_threadpool(lambda: households(hub).add(body, actor=session.user.username))
    except ValidationError as e:  # a field past its length
        t = translator(request)
        field = str(e.errors()[0]["loc"][0]) if e.errors()[0]["loc"] else "name"
        errors = {field: t("hh.err.too_long")}
        return await run_in_threadpool(
            lambda: _page(request, hub, session, t, errors=errors, form=kept, status=422)
        )
    except (HouseholdRefused, PhoneTaken) as refused:
        t = translator(request)
        errors = {refused.field: t(f"hh.err.{refused.reason}")}
        status = 409 if isinstance(refused, PhoneTaken) else 422
        return await run_in_threadpool(
            lambda: _page(request, hub, session, t, errors=errors, form=kept, status=status)
        )
    # Post/redirect/get: a reload does not add the household twice.
    return RedirectResponse("/app/households?ok=added", status_code=303)


@router.post("/app/households/{hid}/remove")
async def households_remove(request: Request, hid: int) -> Response:
    form = await read_form(request)
    hub = hub_of(request)
    session = await run_in_threadpool(
        form_session, request, hub, form.get("csrf"), "head", back="/app/households"
    )
    try:
        await run_in_threadpool(lambda: households(hub).remove(hid, actor=session.user.username))
    except NotFound:
        return await run_in_threadpool(not_found, request, session, "hh.not_found")
    return RedirectResponse("/app/households?ok=removed", status_code=303)
