"""Event rules (``/app/rules``): each in words, what it fired and why, add, edit, switch on
or off, approve, delete.

Every write goes through the rule book (:class:`hub.automation.rule_book.RuleBook`): the
same checks, audit, approval and engine reload as ``/api/rules``. A rule's common fields
are edited with a form (:mod:`hub.web.rule_form`), each refusal next to its field; the
whole rule, as TOML (the style of ``config/rules.toml``) or JSON, in an advanced box
(:mod:`hub.web.rule_text`), a mistake there explained with its line. After a save the
person is back on the rule with what changed and whether it runs. A technician's rule that
reaches the loudspeakers, a relay or MQTT shows as awaiting the head's approval; a head
(not the one who asked) sees an Approve button.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from hub.api.errors import status_of
from hub.app import Hub
from hub.automation.rule_book import ApprovalState, approval_state
from hub.automation.rule_model import Rule
from hub.errors import HubError, NotFound
from hub.store.rules import FiringRow
from hub.web.firing_views import action_results
from hub.web.forms import Fields, read_fields
from hub.web.render import error_page, hub_of, iso_text, not_found, render, translator
from hub.web.rule_form import (
    Posted,
    RuleForm,
    build_form,
    changed_fields,
    changes_of,
    check,
    fill,
    posted_values,
    read_posted,
    saved_notice,
    version_of,
)
from hub.web.rule_text import RuleTextError, explain_text, parse_rule_text, rule_toml
from hub.web.session import Session, form_session, require_page, safe_next
from hub.web.staff_words import (
    action_words,
    cause_words,
    condition_words,
    trigger_words,
)
from hub.words import Translator
from hub.words.times import duration_text

router = APIRouter(include_in_schema=False)

RULES_OK = ("added", "saved", "awaiting", "approved", "enabled", "disabled", "deleted")
FIRINGS = 100
RULE_EXAMPLE = """\
id = "nhiet-do-cao"
name = "Nhiệt độ trạm phát wifi quá cao"
enabled = true
cooldown_s = 1800
trigger = { type = "metric", metric = "temp_c", op = ">=", value = 70, for_s = 300, hysteresis = 5 }
conditions = { kinds = ["ap"] }
actions = [
  { type = "notify", to = ["technicians"], title = "Nóng", template = "{device.name}: {value} °C" },
]
"""


# -- rules in words -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RuleView:
    rule: Rule
    source: str
    updated_at: float
    created_by: str
    trigger: str
    conditions: str
    actions: list[tuple[str, Any]]
    cooldown: str
    last: FiringRow | None
    approval: ApprovalState
    #: Who asked for the approval (awaiting) or gave it (approved).
    approval_by: str | None
    may_approve: bool
    #: Whether this person may switch it on (not a technician while it awaits approval).
    may_switch: bool


def rule_views(
    hub: Hub, t: Translator, session: Session, rule_id: str | None = None
) -> list[RuleView]:
    book = hub.rule_book
    names = hub.settings.gpio.zone_names
    try:
        rows = book.all() if rule_id is None else [book.get(rule_id)]
    except NotFound:
        rows = []
    out = []
    for row in rows:
        try:
            rule = Rule.model_validate_json(row.definition)
        except ValidationError:
            continue  # the engine skips it too (and logs why)
        last = book.firings(rule.id, 1)
        state = approval_state(row)
        by = row.approval.by if row.approval is not None else None
        user = session.user
        out.append(
            RuleView(
                rule=rule,
                source=row.source,
                updated_at=row.updated_at,
                created_by=row.created_by,
                trigger=trigger_words(t, rule),
                conditions=condition_words(t, rule.conditions, names),
                actions=[(action_words(t, a, names), a) for a in rule.actions],
                cooldown=duration_text(t, rule.cooldown_s),
                last=last[0] if last else None,
                approval=state,
                approval_by=by,
                may_approve=state == "awaiting" and user.has("head") and by != user.username,
                may_switch=state != "awaiting" or user.has("head"),
            )
        )
    return out


def _refusal(e: RuleTextError | HubError) -> tuple[str, int]:
    """Why a rule was refused, and the status to answer with (the API's own, or 422)."""
    return str(e), (status_of(e) if isinstance(e, HubError) else None) or 422


def _explained(
    t: Translator, text: str, e: RuleTextError | HubError, data: dict[str, Any] | None
) -> dict[str, Any]:
    """A refused rule typed as text: the page's words for it, and the reason as the API
    gives it (kept for whoever wrote the TOML)."""
    reason, code = _refusal(e)
    return {
        "error": t("rules.err.refused"),
        "explained": explain_text(t, text, e, data),
        "reason": reason,
        "status": code,
    }


# -- pages --------------------------------------------------------------------------------
@router.get("/app/rules", response_class=HTMLResponse)
def rules_page(request: Request, ok: str = "") -> HTMLResponse:
    hub = hub_of(request)
    session = require_page(request, hub, "technician", "head")
    return _rules(request, hub, session, translator(request), ok=ok)


def _rules(
    request: Request,
    hub: Hub,
    session: Session,
    t: Translator,
    *,
    ok: str = "",
    error: str = "",
    explained: list[str] | None = None,
    reason: str = "",
    text: str = RULE_EXAMPLE,
    status: int = 200,
) -> HTMLResponse:
    tz = hub.settings.tz
    return render(
        request,
        "staff_rules.html",
        t=t,
        session=session,
        active="rules",
        status=status,
        data={"page": "rules"},
        rules=rule_views(hub, t, session),
        notice=t(f"rules.ok.{ok}") if ok in RULES_OK else "",
        error=error,
        explained=explained or [],
        reason=reason,
        text=text,
        open_form=bool(error),
        when=lambda ts: t.when(ts, tz),
    )


@router.post("/app/rules")
async def rules_add(request: Request) -> Response:
    fields = await read_fields(request)
    hub = hub_of(request)
    session = await run_in_threadpool(
        form_session, request, hub, fields.one("csrf"), "technician", "head"
    )
    text = fields.one("definition")
    book = hub.rule_book
    data: dict[str, Any] | None = None
    try:
        data = parse_rule_text(text)
        rule = book.parse(data)
        row = await run_in_threadpool(book.add, rule, session.user)
    except (RuleTextError, HubError) as e:
        t = translator(request)
        why = _explained(t, text, e, data)
        return await run_in_threadpool(lambda: _rules(request, hub, session, t, text=text, **why))
    ok = "awaiting" if approval_state(row) == "awaiting" else "added"
    return RedirectResponse(f"/app/rules?ok={ok}#r-{rule.id}", status_code=303)


@router.get("/app/rules/{rule_id}", response_class=HTMLResponse)
def rule_page(request: Request, rule_id: str, ok: str = "", changed: str = "") -> HTMLResponse:
    hub = hub_of(request)
    session = require_page(request, hub, "technician", "head")
    keys = [k for k in changed.split(",") if k][:40]
    return _rule(request, hub, session, translator(request), rule_id, ok=ok, changed=keys)


def _rule(
    request: Request,
    hub: Hub,
    session: Session,
    t: Translator,
    rule_id: str,
    *,
    ok: str = "",
    changed: list[str] | None = None,
    error: str = "",
    explained: list[str] | None = None,
    reason: str = "",
    text: str | None = None,
    form: RuleForm | None = None,
    status: int = 200,
) -> HTMLResponse:
    found = rule_views(hub, t, session, rule_id)
    if not found:
        return not_found(request, session, "rules.not_found", id=rule_id)
    rv = found[0]
    tz = hub.settings.tz
    firings = [
        {
            "at": t.when(f.at, tz),
            "iso": iso_text(int(f.at)),
            "device": f.device_id,
            "state": f.state,
            "cause": cause_words(t, f.cause, tz),
            "results": action_results(t, f.actions),
        }
        for f in hub.rule_book.firings(rule_id, FIRINGS)
    ]
    notice = t(f"rules.ok.{ok}") if ok in RULES_OK else ""
    if ok in ("saved", "awaiting") and changed is not None and "form" in changed:
        names = hub.settings.gpio.zone_names
        notice = saved_notice(t, rv.rule, changed, rv.approval, names)
    return render(
        request,
        "staff_rule.html",
        t=t,
        session=session,
        active="rules",
        status=status,
        data={"page": "rule"},
        rv=rv,
        firings=firings,
        text=text if text is not None else rule_toml(rv.rule),
        form=form or build_form(hub, t, rv.rule, rv.updated_at, may_switch=rv.may_switch),
        notice=notice,
        error=error,
        explained=explained or [],
        reason=reason,
        when=lambda ts: t.when(ts, tz),
    )


@router.post("/app/rules/{rule_id}")
async def rule_save(request: Request, rule_id: str) -> Response:
    """The edit form (``mode=form``) or the whole rule as text (the advanced box)."""
    fields = await read_posted(request)
    hub = hub_of(request)
    session = await run_in_threadpool(
        form_session, request, hub, fields.one("csrf"), "technician", "head"
    )
    t = translator(request)
    if fields.one("mode") == "form":
        return await run_in_threadpool(_save_form, request, hub, session, t, rule_id, fields)
    text = fields.one("definition")
    book = hub.rule_book
    data: dict[str, Any] | None = None
    try:
        data = parse_rule_text(text)
        if data.get("id", rule_id) != rule_id:
            raise RuleTextError("id: a rule keeps its id (delete it and add a new one)")
        # The text is the whole rule: what it leaves out takes the default, not the old value.
        rule = book.parse({**data, "id": rule_id})
        changes = json.loads(rule.model_dump_json())
        row = await run_in_threadpool(book.change, rule_id, changes, session.user)
    except (RuleTextError, HubError) as e:
        why = _explained(t, text, e, data)
        return await run_in_threadpool(
            lambda: _rule(request, hub, session, t, rule_id, text=text, **why)
        )
    ok = "awaiting" if approval_state(row) == "awaiting" else "saved"
    return RedirectResponse(f"/app/rules/{rule_id}?ok={ok}", status_code=303)


def _save_form(
    request: Request, hub: Hub, session: Session, t: Translator, rule_id: str, p: Posted
) -> Response:
    """The form's fields onto the stored rule, checked by the model and the rule book; back
    on the rule's page with what changed, or the form again with each reason by its field."""
    book = hub.rule_book
    found = rule_views(hub, t, session, rule_id)
    if not found:
        return not_found(request, session, "rules.not_found", id=rule_id)
    rv = found[0]
    before = rv.rule

    def again(errors: dict[str, str], general: list[str], status: int) -> HTMLResponse:
        form = build_form(
            hub,
            t,
            before,
            rv.updated_at,
            may_switch=rv.may_switch,
            values=posted_values(p, before),
            errors=errors,
            general=general,
        )
        return _rule(request, hub, session, t, rule_id, form=form, status=status)

    if p.one("updated") != version_of(rv.updated_at):
        # Changed by someone else since this form was opened: what was typed stays.
        return again({}, [t("rules.err.stale")], 409)
    data, problems = fill(before, p, t, tuple(hub.settings.gpio.zones))
    rule, errors, general = check(before, data, problems, t, hub)
    if rule is None:
        return again(errors, general, 422)
    changes = changes_of(before, rule)
    keys = changed_fields(before, rule)
    if changes:
        try:
            row = book.change(rule_id, changes, session.user)
        except HubError as e:
            if "waits for the head's approval" in str(e):
                return again({"enabled": t("rules.err.awaiting_on")}, [], 403)
            return again({}, [t("rules.err.hub"), str(e)], _refusal(e)[1])
        state = approval_state(row)
    else:
        state = rv.approval
    ok = "awaiting" if state == "awaiting" else "saved"
    query = urlencode({"ok": ok, "changed": ",".join(["form", *keys])})
    return RedirectResponse(f"/app/rules/{rule_id}?{query}", status_code=303)


def _refused(request: Request, session: Session, e: HubError) -> Response:
    """A switch or an approval the rule book refused: the reason, on an error page."""
    reason, code = _refusal(e)
    return error_page(request, session=session, status=code, title="error.title", text=reason)


def _back(fields: Fields) -> str:
    """Where a form on the list or on a rule's page returns to, without its old flash."""
    return safe_next(fields.one("next"), "/app/rules").split("?")[0].split("#")[0]


@router.post("/app/rules/{rule_id}/toggle")
async def rule_toggle(request: Request, rule_id: str) -> Response:
    """Switch a rule on or off: a change of ``enabled``, as the API makes it (audited)."""
    fields = await read_fields(request)
    hub = hub_of(request)
    session = await run_in_threadpool(
        form_session, request, hub, fields.one("csrf"), "technician", "head"
    )
    enabled = fields.one("enabled") == "1"
    try:
        await run_in_threadpool(hub.rule_book.change, rule_id, {"enabled": enabled}, session.user)
    except HubError as e:
        return _refused(request, session, e)
    back = _back(fields)
    ok = "enabled" if enabled else "disabled"
    return RedirectResponse(f"{back}?ok={ok}#r-{rule_id}", status_code=303)


@router.post("/app/rules/{rule_id}/approve")
async def rule_approve(request: Request, rule_id: str) -> Response:
    """A head approves a technician's rule that reaches the loudspeakers, a relay or MQTT:
    it is switched on (audited, as ``/api/rules/{id}/approve``)."""
    fields = await read_fields(request)
    hub = hub_of(request)
    session = await run_in_threadpool(form_session, request, hub, fields.one("csrf"), "head")
    try:
        await run_in_threadpool(hub.rule_book.approve, rule_id, session.user)
    except HubError as e:
        return _refused(request, session, e)
    back = _back(fields)
    return RedirectResponse(f"{back}?ok=approved#r-{rule_id}", status_code=303)


@router.post("/app/rules/{rule_id}/delete")
async def rule_delete(request: Request, rule_id: str) -> Response:
    """Delete a rule: only with the confirmation box ticked (works without JavaScript)."""
    fields = await read_fields(request)
    hub = hub_of(request)
    session = await run_in_threadpool(
        form_session, request, hub, fields.one("csrf"), "technician", "head"
    )
    t = translator(request)
    if fields.one("confirm") != "yes":
        return await run_in_threadpool(
            lambda: _rule(
                request, hub, session, t, rule_id, error=t("rules.err.confirm"), status=422
            )
        )
    try:
        await run_in_threadpool(hub.rule_book.delete, rule_id, session.user.username)
    except HubError as e:
        reason, code = _refusal(e)
        return error_page(request, session=session, status=code, title="error.title", text=reason)
    return RedirectResponse("/app/rules?ok=deleted", status_code=303)
