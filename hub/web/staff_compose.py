"""Compose and edit an announcement (``/app/compose``, ``/app/announcements/{id}/edit``).

The village head writes or records it, picks the zones and when it plays, in the
village's wall-clock time. The form becomes the body of ``POST /api/announcements`` and
goes through the same service, checks and audit; ``/app/compose/describe`` gives
``static/staff.js`` the picker's schedule in words and its next times.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from audio.errors import AudioError
from hub.api.errors import status_of
from hub.app import Hub
from hub.broadcast.announcements import AnnouncementIn, AnnouncementPatch
from hub.broadcast.recurrence import Recurrence, local_naive
from hub.errors import HubError
from hub.web import meetings
from hub.web.forms import (
    FIELD_LIMIT,
    Fields,
    FormProblem,
    parse_date,
    parse_time,
    picker_fields,
    picker_rrule,
    read_fields,
)
from hub.web.render import error_page, hub_of, render, translator
from hub.web.session import Session, form_session, require_page
from hub.web.staff_schedule import JS_KEYS, actor
from hub.words import Translator
from hub.words.schedule import describe_schedule, int_or_none
from hub.words.times import WEEKDAYS, local_text, when_text

router = APIRouter(include_in_schema=False)

CATEGORIES = ("notice", "news", "meeting", "emergency")
PRIORITIES = ("normal", "high", "emergency")
#: The speaking rates the head picks from (a factor of the voice's own; "" is the voice's):
#: slower for the elderly, and the horn's echo between words.
RATES = (("0.8", "slow"), ("", "normal"), ("1.2", "fast"))
#: The recurrence picker's choices (``custom`` takes an RRULE as written).
FREQS = ("daily", "weekdays", "weekly", "monthly", "custom")
#: How much of the text the invitation hint reads (the time is said near the start).
HINT_TEXT = 2000
#: The form field that each of AnnouncementIn's fields is typed in.
FIELD_OF = {
    "start_at": "time",
    "rrule": "freq",
    "audio_id": "source",
    "expires_at": "expires_date",
    **meetings.FIELD_OF,
}


def announcement_body(f: Fields, now_local: datetime) -> dict[str, Any]:
    """The compose form as the body of ``POST /api/announcements`` (village local times).

    Raises FormProblem for what the form itself can tell; the service checks the rest
    (zones, the recording, the RRULE, occurrences in the past) and says why.
    """
    title = f.one("title").strip()
    if not title:
        raise FormProblem("title", "compose.err.title")
    source = f.one("source", "text")
    text = f.one("text").strip() if source == "text" else None
    audio_id = f.one("audio_id").strip() if source in ("record", "upload") else None
    if source == "text" and not text:
        raise FormProblem("text", "compose.err.text")
    if source != "text" and not audio_id:
        raise FormProblem("source", "compose.err.audio")
    priority = f.one("priority", "normal")
    if priority == "emergency" and f.one("confirm_emergency") != "yes":
        raise FormProblem("confirm_emergency", "compose.err.confirm")
    zones = f.all("zones")
    if not zones:
        raise FormProblem("zones", "compose.err.zones")
    when = f.one("when", "now")
    if priority == "emergency" and when == "repeat":
        raise FormProblem("when", "compose.err.emergency_repeat")
    start: datetime | None = None
    rrule: str | None = None
    if when in ("at", "repeat") and priority != "emergency":
        day, hm = parse_date(f.one("date")), parse_time(f.one("time"))
        if day is None:
            raise FormProblem("date", "compose.err.date")
        if hm is None:
            raise FormProblem("time", "compose.err.time")
        start = datetime.combine(day, hm)
        if when == "at" and start < now_local.replace(second=0, microsecond=0):
            raise FormProblem("time", "compose.err.past", when=start)
        if when == "repeat":
            rrule = picker_rrule(f)
    elif when not in ("now", "at", "repeat"):
        raise FormProblem("when", "compose.err.when")
    expires: datetime | None = None
    if f.one("expires_date").strip():
        day = parse_date(f.one("expires_date"))
        hm = parse_time(f.one("expires_time") or "23:59")
        if day is None or hm is None:
            raise FormProblem("expires_date", "compose.err.expires")
        expires = datetime.combine(day, hm)
    repeat = int_or_none(f.one("repeat", "1"), 1)
    if repeat is None:
        raise FormProblem("repeat", "compose.err.repeat")
    category = f.one("category", "notice")
    try:
        rate = float(f.one("rate")) if f.one("rate").strip() else None
    except ValueError:
        raise FormProblem("rate", "compose.err.rate") from None
    return {
        "title": title,
        "text": text,
        "audio_id": audio_id,
        "category": category,
        **meetings.meeting_body(f, category, now_local),
        "priority": priority,
        "zones": zones,
        "start_at": start,
        "rrule": rrule,
        "repeat": repeat,
        "expires_at": expires,
        "voice": f.one("voice") or None,
        "rate": rate,
        "published": f.one("published") == "yes",
    }


def refusal(t: Translator, e: Exception) -> tuple[str, str, str]:
    """(the form field, what to tell the person, the reason as the API gives it)."""
    if isinstance(e, FormProblem):
        values = {
            k: local_text(t, v) if isinstance(v, datetime) else v for k, v in e.values.items()
        }
        return e.field, t(e.key, **values), ""
    if isinstance(e, ValidationError):
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        field = str(err["loc"][0]) if err["loc"] else ""
        return FIELD_OF.get(field, field), t("compose.err.invalid"), f"{loc}: {err['msg']}"
    reason = str(e)
    field = reason.split(":", 1)[0] if ":" in reason else ""
    if "every occurrence is in the past" in reason:
        key = "compose.err.past_all"
    elif reason.startswith("zones: unknown zone"):
        key = "compose.err.zone_unknown"
    elif reason.startswith("rrule"):
        key, field = "compose.err.rrule", "freq"
    elif reason.startswith("start_at: the invitation would first"):
        key, field = "compose.err.meeting_after", "time"
    elif reason.startswith(("meeting_at", "meeting_place")):
        key = "compose.err.meeting_bad"
    elif reason.startswith("audio_id"):
        key = "compose.err.audio_missing"
    elif isinstance(e, AudioError):
        key, field = "compose.err.audio_bad", "text"
    else:
        key = "compose.err.refused"
    return FIELD_OF.get(field, field), t(key), reason


def _defaults(hub: Hub) -> dict[str, Any]:
    """A new announcement: in a quarter of an hour or so, every zone, read once."""
    local = local_naive(hub.clock.now(), hub.settings.tz)
    soon = (local + timedelta(minutes=20)).replace(second=0, microsecond=0)
    soon -= timedelta(minutes=soon.minute % 5)
    return {
        "source": "text",
        "category": "notice",
        "priority": "normal",
        "zones": ["all"],
        "when": "at",
        "date": soon.date().isoformat(),
        "time": f"{soon:%H:%M}",
        "repeat": "1",
        "rate": "",
        "published": "yes",
        **picker_fields(None),
    }


def _form_of(hub: Hub, a: Mapping[str, Any]) -> dict[str, Any]:
    """An announcement (as the service gives it) in the compose form's fields."""
    tz = hub.settings.tz
    start = local_naive(datetime.fromisoformat(a["start_at"].replace("Z", "+00:00")), tz)
    expires = a.get("expires_at")
    form: dict[str, Any] = {
        "title": a["title"],
        "text": a["text"] or "",
        "source": "text" if a["text"] else "upload",
        "audio_id": a["audio_id"] or "",
        "category": a["category"],
        "priority": a["priority"],
        "zones": a["zones"],
        "when": "repeat" if a["rrule"] else "at",
        "date": start.date().isoformat(),
        "time": f"{start:%H:%M}",
        "repeat": str(a["repeat"]),
        "voice": a.get("voice") or "",
        "rate": f"{a['rate']:g}" if a.get("rate") else "",
        "published": "yes" if a.get("published", True) else "",
        **picker_fields(a["rrule"]),
    }
    if expires:
        e = local_naive(datetime.fromisoformat(expires.replace("Z", "+00:00")), tz)
        form.update(expires_date=e.date().isoformat(), expires_time=f"{e:%H:%M}")
    meeting = a.get("meeting_at")
    at = (
        local_naive(datetime.fromisoformat(meeting.replace("Z", "+00:00")), tz) if meeting else None
    )
    form.update(meetings.meeting_form(a, at))
    return form


def preview(hub: Hub, t: Translator, f: Fields) -> dict[str, Any]:
    """The schedule the form describes, in words, with the next few times it plays."""
    tz = hub.settings.tz
    now = hub.clock.now()
    when = f.one("when", "now")
    if when == "now" or f.one("priority") == "emergency":
        return {"words": t("rr.now"), "rrule": "", "next": [], "error": ""}
    day, hm = parse_date(f.one("date")), parse_time(f.one("time"))
    if day is None or hm is None:
        return {"words": "", "rrule": "", "next": [], "error": t("compose.err.date")}
    start = datetime.combine(day, hm)
    rrule = ""
    if when == "repeat":
        try:
            rrule = picker_rrule(f)
        except FormProblem as e:
            return {"words": "", "rrule": "", "next": [], "error": t(e.key, **e.values)}
    try:
        rec = Recurrence(start, tz, rrule or None)
    except ValueError as e:
        return {"words": "", "rrule": rrule, "next": [], "error": str(e)}
    nxt: list[str] = []
    cursor = now
    for _ in range(3):
        at = rec.next_after(cursor, inclusive=not nxt)
        if at is None:
            break
        nxt.append(when_text(t, at.timestamp(), tz, now.timestamp()))
        cursor = at
    return {
        "words": describe_schedule(rrule or None, start, t.lang),
        "rrule": rrule,
        "next": nxt,
        "error": "" if nxt else t("compose.err.past_all"),
    }


def voice_choices(hub: Hub, t: Translator, chosen: str) -> list[dict[str, Any]]:
    """The voice select: what ``GET /api/voices`` lists (the installed ones), the chosen one
    (or the default) selected, a voice that cannot speak now saying why."""
    out: list[dict[str, Any]] = []
    for v in hub.announcements.voices():
        key = f"voice.{v['id']}"
        words = [t(key) if t.has(key) else str(v["label"])]
        if v["default"]:
            words.append(t("voice.default_mark"))
        if v["status"] != "ok":
            words.append(t("voice.status", status=str(v["status"])[:80]))
        selected = v["id"] == chosen if chosen else bool(v["default"])
        out.append({"id": v["id"], "text": " ".join(words), "selected": selected})
    if chosen and not any(c["selected"] for c in out):  # a voice since removed: kept, said
        out.append({"id": chosen, "text": chosen, "selected": True})
    return out


def rate_choices(t: Translator, chosen: str) -> list[tuple[str, str, bool]]:
    """(value, words, selected) of the speaking-rate select; a rate set through the API
    that is none of them is kept as one more choice."""
    out = [(value, t(f"compose.rate.{key}"), value == chosen) for value, key in RATES]
    if chosen not in (value for value, _ in RATES):
        out.append((chosen, t("compose.rate.other", rate=chosen), True))
    return out


def _compose(
    request: Request,
    hub: Hub,
    session: Session,
    t: Translator,
    *,
    form: Mapping[str, Any],
    aid: str | None = None,
    problem: tuple[str, str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    field, message, reason = problem or ("", "", "")
    shown = Fields((k, x) for k, v in form.items() for x in (v if isinstance(v, list) else [v]))
    now_local = local_naive(hub.clock.now(), hub.settings.tz)
    hint = meetings.invitation_hint(
        t, shown.one("title"), shown.one("text"), shown.one("category", "notice"), now_local
    )
    return render(
        request,
        "staff_compose.html",
        t=t,
        session=session,
        active="schedule" if aid else "compose",
        status=status,
        data={
            "page": "compose",
            "t": t.subset(JS_KEYS),
            "max_upload_mb": float(hub.settings.audio.max_upload_mb),
            "max_record_s": hub.settings.audio.max_upload_s,
        },
        form=form,
        aid=aid,
        error=message,
        error_field=field,
        reason=reason,
        zones=list(hub.settings.gpio.zones),
        zone_names=hub.settings.gpio.zone_names,
        categories=CATEGORIES,
        priorities=PRIORITIES,
        voices=voice_choices(hub, t, shown.one("voice")),
        rates=rate_choices(t, shown.one("rate")),
        weekdays=WEEKDAYS,
        freqs=FREQS,
        approval=hub.settings.announcements.require_approval,
        sched=preview(hub, t, shown),
        emergency_repeats=hub.settings.announcements.emergency_repeats,
        hint=hint,
    )


@router.get("/app/compose", response_class=HTMLResponse)
def compose_page(request: Request) -> HTMLResponse:
    hub = hub_of(request)
    session = require_page(request, hub, "head")
    return _compose(request, hub, session, translator(request), form=_defaults(hub))


@router.post("/app/compose")
async def compose_submit(request: Request) -> Response:
    return await _save(request, None)


@router.get("/app/announcements/{aid}/edit", response_class=HTMLResponse)
def edit_page(request: Request, aid: str) -> HTMLResponse:
    hub = hub_of(request)
    session = require_page(request, hub, "head")
    t = translator(request)
    a = hub.announcements.get(aid, staff=True)
    if a is None or a["status"] not in ("scheduled", "draft"):
        return error_page(
            request,
            session=session,
            status=404 if a is None else 409,
            title="error.not_found" if a is None else "sched.not_editable",
            text=t("sched.not_editable_text") if a else t("error.not_found_text"),
        )
    return _compose(request, hub, session, t, form=_form_of(hub, a), aid=aid)


@router.post("/app/announcements/{aid}/edit")
async def edit_submit(request: Request, aid: str) -> Response:
    return await _save(request, aid)


async def _save(request: Request, aid: str | None) -> Response:
    """Create (``aid`` None) or change an announcement from the compose form."""
    fields = await read_fields(request)
    hub = hub_of(request)
    session = await run_in_threadpool(form_session, request, hub, fields.one("csrf"), "head")
    t = translator(request)
    service = hub.announcements
    now_local = local_naive(hub.clock.now(), hub.settings.tz)
    if fields.one("take_meeting") == "yes":
        # The hint's button without the script: the form again, made a meeting.
        form = fields.kept()
        hint = meetings.invitation_hint(
            t, fields.one("title"), fields.one("text"), "notice", now_local
        )
        return _compose(request, hub, session, t, form=meetings.taken(form, hint), aid=aid)
    try:
        body = announcement_body(fields, now_local)
        if aid is None:
            made = await run_in_threadpool(
                service.create, AnnouncementIn.model_validate(body), actor(session)
            )
        else:
            patch = AnnouncementPatch.model_validate(body)
            made = await run_in_threadpool(service.update, aid, patch, actor(session))
    except (FormProblem, ValidationError, HubError, AudioError) as e:
        status = status_of(e) if isinstance(e, HubError) else None
        if status in (404, 409):
            return error_page(
                request,
                session=session,
                status=status,
                title="error.not_found" if status == 404 else "sched.not_editable",
                text=t("error.not_found_text") if status == 404 else str(e),
            )
        problem = refusal(t, e)
        return await run_in_threadpool(
            lambda: _compose(
                request, hub, session, t, form=fields.kept(), aid=aid, problem=problem, status=422
            )
        )
    if aid is None and made.get("priority") == "emergency":
        # The head watches it go on air, with the stop button: the dashboard's on-air card
        # (the schedule lists what is still to come, and an emergency is not).
        return RedirectResponse(f"/app/?ok=emergency&a={made['id']}", status_code=303)
    ok = "draft" if made.get("status") == "draft" else ("updated" if aid else "created")
    return RedirectResponse(f"/app/schedule?ok={ok}#a-{made['id']}", status_code=303)


@router.get("/app/compose/meeting-hint")
def compose_meeting_hint(request: Request) -> JSONResponse:
    """Whether the title and text typed read as a meeting invitation (for meeting.js)."""
    hub = hub_of(request)
    require_page(request, hub, "head")
    q = request.query_params
    now_local = local_naive(hub.clock.now(), hub.settings.tz)
    hint = meetings.invitation_hint(
        translator(request),
        q.get("title", "")[:FIELD_LIMIT],
        q.get("text", "")[:HINT_TEXT],
        q.get("category", "notice"),
        now_local,
    )
    return JSONResponse(hint)


@router.get("/app/compose/describe")
def compose_describe(request: Request) -> JSONResponse:
    """The picker's schedule in words, with its RRULE and the next times (for staff.js)."""
    hub = hub_of(request)
    require_page(request, hub, "head")
    f = Fields((k, v[:FIELD_LIMIT]) for k, v in request.query_params.multi_items())
    return JSONResponse(preview(hub, translator(request), f))
