"""The staff's announcement pages: compose, schedule, history, rules (the page end of the flow).

The village head composes and schedules announcements here; technicians and the
head read the as-run log and maintain the event rules. Every page works without
JavaScript (``static/staff.js`` adds the TTS preview, recording, uploads and the
live RRULE preview); every write is a form with the session's CSRF token and goes
through the same service calls, checks and audit as the JSON API
(:mod:`hub.api.announcements`, :mod:`hub.api.rules`).

Schedules are written in the village's wall-clock time. The recurrence picker (every
day, weekdays, some days of the week, a day of the month; an end after N times or on a
date) maps to an RFC 5545 RRULE in :mod:`hub.web.staff_words` (:func:`picker_rrule`) and,
for the live preview, in ``staff.js`` — the same mapping, tested against each other;
:func:`describe_rrule` says an RRULE in words. Both are imported here, for the pages.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from audio.errors import AudioError
from hub.api.announcements import AUDIO_TYPES, stop_broadcast
from hub.api.rules import add_rule, delete_rule, patch_rule
from hub.app import Hub
from hub.automation.rules import Rule
from hub.broadcast.announcements import (
    Actor,
    AnnouncementError,
    AnnouncementIn,
    AnnouncementPatch,
)
from hub.broadcast.recurrence import Recurrence, local_naive, to_utc
from hub.services.users import Role
from hub.web.i18n import Translator
from hub.web.pages import SCRIPT_KEYS, error_page, hub_of, render, translator
from hub.web.session import (
    LoginRequired,
    PageForbidden,
    Session,
    check_form,
    require_page,
    safe_next,
    session_of,
)
from hub.web.staff_words import (
    FIELD_LIMIT,
    WEEKDAYS,
    Fields,
    FormProblem,
    RuleTextError,
    action_words,
    cap,
    cause_words,
    clock_text,
    condition_words,
    date_text,
    describe_schedule,
    detail_text,
    duration_text,
    int_or_none,
    local_text,
    parse_date,
    parse_rule_text,
    parse_time,
    picker_fields,
    picker_rrule,
    result_parts,
    rule_toml,
    trigger_words,
    ts_of,
    weekday_name,
    when_text,
    zones_text,
)
from hub.web.staff_words import (
    describe_rrule as describe_rrule,  # the schedule in words, for whoever needs it
)

router = APIRouter(include_in_schema=False)

CATEGORIES = ("notice", "news", "meeting", "emergency")
PRIORITIES = ("normal", "high", "emergency")
VOICES = ("north", "central", "south")
BROADCAST_STATUSES = ("played", "missed", "preempted", "failed", "cancelled")
#: The recurrence picker's choices (``custom`` takes an RRULE as written).
FREQS = ("daily", "weekdays", "weekly", "monthly", "custom")
#: Strings staff.js needs (with the base page's own).
JS_KEYS = (*SCRIPT_KEYS, "sjs.")
#: Rows on the history page (the CSV export has them all, up to EXPORT_ROWS).
HISTORY_ROWS = 300
EXPORT_ROWS = 50_000
#: Occurrences of one announcement drawn in a week (an hourly one would fill the page).
WEEK_PER_ANNOUNCEMENT = 40


async def read_fields(request: Request) -> Fields:
    """The form's text fields. Forms are posted as multipart (a long Vietnamese text stays
    about its own size; url-encoded, each accented letter takes 6-9 bytes); no files."""
    form = await request.form(max_files=0, max_fields=128)
    try:
        return Fields((k, v) for k, v in form.multi_items() if isinstance(v, str))
    finally:
        await form.close()


def form_session(request: Request, hub: Hub, fields: Fields, *roles: Role) -> Session:
    """A staff form: a session (else sign in), its CSRF token (else 403), the role (else 403)."""
    session = session_of(request, hub)
    if session is None:
        raise LoginRequired(request.url.path)
    check_form(session, fields.one("csrf"))
    if roles and not session.user.has(*roles):
        raise PageForbidden(session, roles)
    return session


def actor(session: Session) -> Actor:
    return Actor(session.user.username, session.user.role)


# -- the compose form -> an announcement --------------------------------------------------
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
    voice = f.one("voice") or None
    return {
        "title": title,
        "text": text,
        "audio_id": audio_id,
        "category": f.one("category", "notice"),
        "priority": priority,
        "zones": zones,
        "start_at": start,
        "rrule": rrule,
        "repeat": repeat,
        "expires_at": expires,
        "voice": voice,
        "published": f.one("published") == "yes",
    }


#: The form field that each of AnnouncementIn's fields is typed in.
_FIELD_OF = {
    "start_at": "time",
    "rrule": "freq",
    "audio_id": "source",
    "expires_at": "expires_date",
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
        return _FIELD_OF.get(field, field), t("compose.err.invalid"), f"{loc}: {err['msg']}"
    reason = str(e)
    field = reason.split(":", 1)[0] if ":" in reason else ""
    if "every occurrence is in the past" in reason:
        key = "compose.err.past_all"
    elif reason.startswith("zones: unknown zone"):
        key = "compose.err.zone_unknown"
    elif reason.startswith("rrule"):
        key, field = "compose.err.rrule", "freq"
    elif reason.startswith("audio_id"):
        key = "compose.err.audio_missing"
    elif isinstance(e, AudioError):
        key, field = "compose.err.audio_bad", "text"
    else:
        key = "compose.err.refused"
    return _FIELD_OF.get(field, field), t(key), reason


# -- reading the schedule -----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Item:
    """An announcement as the schedule shows it."""

    id: str
    title: str
    text: str | None
    category: str
    priority: str
    status: str
    zones: list[str]
    next_run: float | None
    when: str
    words: str
    duration: str
    created_by: str | None
    approved_by: str | None
    may_approve: bool


def items(hub: Hub, t: Translator, session: Session, *, limit: int = 200) -> list[Item]:
    """The announcements still to play (drafts too), soonest first."""
    tz = hub.settings.tz
    now = hub.clock.now().timestamp()
    user = session.user
    out = []
    for a in hub.announcements.list_all(staff=True, upcoming=True, limit=limit):
        if a["status"] not in ("scheduled", "draft"):
            continue
        start_local = local_naive(datetime.fromisoformat(a["start_at"].replace("Z", "+00:00")), tz)
        next_run = ts_of(a["next_run"])
        out.append(
            Item(
                id=a["id"],
                title=a["title"],
                text=a["text"],
                category=a["category"],
                priority=a["priority"],
                status=a["status"],
                zones=a["zones"],
                next_run=next_run,
                when=when_text(t, next_run, tz, now) if next_run else "",
                words=describe_schedule(a["rrule"], start_local, t),
                duration=clock_text(a["duration_s"]),
                created_by=a.get("created_by"),
                approved_by=a.get("approved_by"),
                may_approve=a["status"] == "draft"
                and user.has("head")
                and a.get("created_by") != user.username,
            )
        )
    return out


def upcoming_items(hub: Hub, t: Translator, session: Session) -> list[Item]:
    """The next broadcasts for the dashboard."""
    return items(hub, t, session, limit=5)


def _recurrence(row: Any, tz: tzinfo) -> Recurrence | None:
    try:
        return Recurrence(
            datetime.fromisoformat(row["start_local"]),
            tz,
            row["rrule"],
            tuple(datetime.fromisoformat(d) for d in json.loads(row["exdates"])),
            datetime.fromtimestamp(row["expires_at"], UTC) if row["expires_at"] else None,
        )
    except (ValueError, TypeError):
        return None


def week(hub: Hub, t: Translator, offset: int) -> dict[str, Any]:
    """Seven days from Monday (``offset`` weeks from this one), each with its broadcasts:
    occurrences still to come from the recurrences, and what the log says of the past."""
    tz = hub.settings.tz
    now = hub.clock.now()
    today = local_naive(now, tz).date()
    monday = today - timedelta(days=today.weekday()) + timedelta(weeks=offset)
    lo = to_utc(datetime.combine(monday, time()), tz)
    hi = to_utc(datetime.combine(monday + timedelta(days=7), time()), tz)
    found: dict[tuple[str, float], dict[str, Any]] = {}
    for row in hub.store.query(
        "SELECT * FROM announcements WHERE status IN ('scheduled', 'draft')"
    ):
        rec = _recurrence(row, tz)
        if rec is None:
            continue
        for at in rec.between(max(lo, now), hi, inclusive=True)[:WEEK_PER_ANNOUNCEMENT]:
            found[(row["id"], at.timestamp())] = {
                "id": row["id"],
                "title": row["title"],
                "priority": row["priority"],
                "status": "draft" if row["status"] == "draft" else "upcoming",
                "at": at.timestamp(),
            }
    for b in hub.store.query(
        "SELECT b.*, a.title FROM broadcasts b JOIN announcements a ON a.id = b.announcement_id"
        " WHERE b.scheduled_for >= ? AND b.scheduled_for < ? ORDER BY b.id",
        (lo.timestamp(), hi.timestamp()),
    ):
        found[(b["announcement_id"], b["scheduled_for"])] = {
            "id": b["announcement_id"],
            "title": b["title"],
            "priority": b["priority"],
            "status": b["status"],
            "at": b["scheduled_for"],
        }
    days = []
    for i in range(7):
        d = monday + timedelta(days=i)
        entries = sorted(
            (e for e in found.values() if _local_date(e["at"], tz) == d), key=lambda e: e["at"]
        )
        for e in entries:
            e["time"] = f"{datetime.fromtimestamp(e['at'], UTC).astimezone(tz):%H:%M}"
        days.append(
            {
                "date": d,
                "weekday": cap(weekday_name(t, d)),
                "label": date_text(d, t.lang, year=False),
                "today": d == today,
                "past": d < today,
                "entries": entries,
            }
        )
    sunday = monday + timedelta(days=6)
    return {
        "days": days,
        "offset": offset,
        "title": t(
            "sched.week_of",
            start=date_text(monday, t.lang, year=monday.year != sunday.year),
            end=date_text(sunday, t.lang),
        ),
    }


def _local_date(ts: float, tz: tzinfo) -> date:
    return datetime.fromtimestamp(ts, UTC).astimezone(tz).date()


# -- the as-run log -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LogFilter:
    status: str | None
    since: date | None
    until: date | None

    @classmethod
    def of(cls, status: str, since: str, until: str) -> LogFilter:
        return cls(
            status if status in BROADCAST_STATUSES else None,
            parse_date(since),
            parse_date(until),
        )

    def query(self) -> dict[str, str]:
        q = {"status": self.status or "", "from": "", "to": ""}
        if self.since:
            q["from"] = self.since.isoformat()
        if self.until:
            q["to"] = self.until.isoformat()
        return {k: v for k, v in q.items() if v}


def log_rows(hub: Hub, flt: LogFilter, limit: int) -> list[Any]:
    """Lines of the playout log, newest first (dates are village dates, both included)."""
    tz = hub.settings.tz
    sql = (
        "SELECT b.*, a.title FROM broadcasts b JOIN announcements a ON a.id = b.announcement_id"
        " WHERE 1=1"
    )
    args: list[Any] = []
    if flt.since:
        sql += " AND b.scheduled_for >= ?"
        args.append(to_utc(datetime.combine(flt.since, time()), tz).timestamp())
    if flt.until:
        sql += " AND b.scheduled_for < ?"
        args.append(to_utc(datetime.combine(flt.until + timedelta(days=1), time()), tz).timestamp())
    if flt.status:
        sql += " AND b.status = ?"
        args.append(flt.status)
    return hub.store.query(
        sql + " ORDER BY b.scheduled_for DESC, b.id DESC LIMIT ?", [*args, limit]
    )


def _local_stamp(ts: float | None, tz: tzinfo) -> str:
    """2026-12-01 19:30:00 in village time: what a spreadsheet reads as a date and time."""
    if ts is None:
        return ""
    return f"{datetime.fromtimestamp(ts, UTC).astimezone(tz):%Y-%m-%d %H:%M:%S}"


def as_run_csv(hub: Hub, t: Translator, rows: Sequence[Any]) -> str:
    """The as-run report: a header row, then one line per broadcast; the caller adds the BOM."""
    tz = hub.settings.tz
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow([t(f"hist.col.{c}") for c in HISTORY_COLUMNS])
    for r in rows:
        w.writerow(
            [
                _local_stamp(r["scheduled_for"], tz),
                _local_stamp(r["started_at"], tz),
                _local_stamp(r["ended_at"], tz),
                t(f"bc.{r['status']}"),
                r["title"],
                t(f"prio.{r['priority']}"),
                zones_text(t, json.loads(r["zones"]), hub.settings.gpio.zone_names),
                detail_text(t, r["detail"]),
            ]
        )
    return out.getvalue()


HISTORY_COLUMNS = (
    "scheduled",
    "started",
    "ended",
    "status",
    "title",
    "priority",
    "zones",
    "detail",
)


def check_rule(hub: Hub, data: Mapping[str, Any]) -> Rule:
    """Rule.model_validate, then the engine's cross-checks; RuleTextError with the reason
    exactly as POST /api/rules gives it."""
    try:
        rule = Rule.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        raise RuleTextError(f"{'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    try:
        hub.rules.validate(rule)
    except ValueError as e:
        raise RuleTextError(str(e)) from None
    return rule


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
    last: Any


def rule_views(hub: Hub, t: Translator, rule_id: str | None = None) -> list[RuleView]:
    sql, args = "SELECT * FROM rules", tuple[str, ...]()
    if rule_id is not None:
        sql, args = sql + " WHERE id=?", (rule_id,)
    out = []
    for row in hub.store.query(sql + " ORDER BY id", args):
        try:
            rule = Rule.model_validate_json(row["definition"])
        except ValidationError:
            continue  # the engine skips it too (and logs why)
        last = hub.store.one(
            "SELECT * FROM rule_firings WHERE rule_id=? ORDER BY at DESC, id DESC LIMIT 1",
            (rule.id,),
        )
        out.append(
            RuleView(
                rule=rule,
                source=row["source"],
                updated_at=row["updated_at"],
                created_by=row["created_by"],
                trigger=trigger_words(t, rule),
                conditions=condition_words(t, rule.conditions, hub.settings.gpio.zone_names),
                actions=[
                    (action_words(t, a, hub.settings.gpio.zone_names), a) for a in rule.actions
                ],
                cooldown=duration_text(t, rule.cooldown_s),
                last=last,
            )
        )
    return out


# -- pages: compose -------------------------------------------------------------------------
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
        "published": "yes" if a.get("published", True) else "",
        **picker_fields(a["rrule"]),
    }
    if expires:
        e = local_naive(datetime.fromisoformat(expires.replace("Z", "+00:00")), tz)
        form.update(expires_date=e.date().isoformat(), expires_time=f"{e:%H:%M}")
    return form


def _preview_of(hub: Hub, t: Translator, form: Mapping[str, Any]) -> dict[str, Any]:
    """The schedule the form describes, in words, with the next few times it plays."""
    f = Fields((k, x) for k, v in form.items() for x in (v if isinstance(v, list) else [v]))
    return preview(hub, t, f)


def preview(hub: Hub, t: Translator, f: Fields) -> dict[str, Any]:
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
        "words": describe_schedule(rrule or None, start, t),
        "rrule": rrule,
        "next": nxt,
        "error": "" if nxt else t("compose.err.past_all"),
    }


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
            "max_upload_mb": _max_mb(hub),
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
        voices=VOICES,
        weekdays=WEEKDAYS,
        freqs=FREQS,
        approval=hub.settings.announcements.require_approval,
        sched=_preview_of(hub, t, form),
        emergency_repeats=hub.settings.announcements.emergency_repeats,
    )


def _max_mb(hub: Hub) -> float:
    return float(hub.settings.audio.max_upload_mb)


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
    session = await run_in_threadpool(form_session, request, hub, fields, "head")
    t = translator(request)
    service = hub.announcements
    try:
        body = announcement_body(fields, local_naive(hub.clock.now(), hub.settings.tz))
        if aid is None:
            made = await run_in_threadpool(
                service.create, AnnouncementIn.model_validate(body), actor(session)
            )
        else:
            patch = AnnouncementPatch.model_validate(body)
            made = await run_in_threadpool(service.update, aid, patch, actor(session))
    except (FormProblem, ValidationError, AnnouncementError, AudioError) as e:
        status = getattr(e, "status", 422)
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
                request,
                hub,
                session,
                t,
                form=fields.kept(),
                aid=aid,
                problem=problem,
                status=422,
            )
        )
    ok = "draft" if made.get("status") == "draft" else ("updated" if aid else "created")
    return RedirectResponse(f"/app/schedule?ok={ok}#a-{made['id']}", status_code=303)


@router.get("/app/compose/describe")
def compose_describe(request: Request) -> JSONResponse:
    """The picker's schedule in words, with its RRULE and the next times (for staff.js)."""
    hub = hub_of(request)
    require_page(request, hub, "head")
    f = Fields((k, v[:FIELD_LIMIT]) for k, v in request.query_params.multi_items())
    return JSONResponse(preview(hub, translator(request), f))


# -- pages: the schedule --------------------------------------------------------------------
SCHEDULE_OK = ("created", "draft", "updated", "cancelled", "approved")


@router.get("/app/schedule", response_class=HTMLResponse)
def schedule_page(
    request: Request, view: str = "list", week: int = 0, ok: str = ""
) -> HTMLResponse:
    hub = hub_of(request)
    session = require_page(request, hub, "head", "technician")
    return _schedule(request, hub, session, translator(request), view=view, offset=week, ok=ok)


def _schedule(
    request: Request,
    hub: Hub,
    session: Session,
    t: Translator,
    *,
    view: str = "list",
    offset: int = 0,
    ok: str = "",
    error: str = "",
    status: int = 200,
) -> HTMLResponse:
    offset = max(-52, min(52, offset))
    view = "week" if view == "week" else "list"
    return render(
        request,
        "staff_schedule.html",
        t=t,
        session=session,
        active="schedule",
        status=status,
        data={
            "page": "schedule",
            "t": t.subset(JS_KEYS),
            "mark": request.app.state.bus.mark,
        },
        view=view,
        items=items(hub, t, session) if view == "list" else [],
        wk=week(hub, t, offset) if view == "week" else None,
        head=session.user.has("head"),
        approval=hub.settings.announcements.require_approval,
        notice=t(f"sched.ok.{ok}") if ok in SCHEDULE_OK else "",
        error=error,
        zones_text=lambda z: zones_text(t, z, hub.settings.gpio.zone_names),
    )


@router.get("/app/partials/upcoming", response_class=HTMLResponse)
def upcoming_partial(request: Request, full: bool = False) -> HTMLResponse:
    """The next broadcasts alone (the dashboard's five, or the schedule's cards with
    ``full``): the pages fetch it again when the stream says something changed."""
    hub = hub_of(request)
    session = require_page(request, hub, "head", "technician")
    t = translator(request)
    return render(
        request,
        "staff_upcoming.html",
        t=t,
        session=session,
        upcoming=items(hub, t, session, limit=200 if full else 5),
        full=full,
        head=session.user.has("head"),
        approval=hub.settings.announcements.require_approval,
        zones_text=lambda z: zones_text(t, z, hub.settings.gpio.zone_names),
    )


async def _announcement_action(request: Request, aid: str, what: str) -> Response:
    fields = await read_fields(request)
    hub = hub_of(request)
    session = await run_in_threadpool(form_session, request, hub, fields, "head")
    service = hub.announcements
    call = service.cancel if what == "cancelled" else service.approve
    try:
        await run_in_threadpool(call, aid, actor(session))
    except AnnouncementError as e:
        t = translator(request)
        key = {403: "sched.err.own", 404: "error.not_found_text"}.get(e.status, "")
        message = t(key) if key else f"{t('sched.err.refused')} ({e})"
        status = e.status
        return await run_in_threadpool(
            lambda: _schedule(request, hub, session, t, error=message, status=status)
        )
    return RedirectResponse(f"/app/schedule?ok={what}", status_code=303)


@router.post("/app/announcements/{aid}/cancel")
async def cancel_form(request: Request, aid: str) -> Response:
    return await _announcement_action(request, aid, "cancelled")


@router.post("/app/announcements/{aid}/approve")
async def approve_form(request: Request, aid: str) -> Response:
    return await _announcement_action(request, aid, "approved")


@router.get("/app/announcements/{aid}/audio")
def announcement_audio(request: Request, aid: str) -> Response:
    """An announcement's rendered audio for the staff (drafts too), with the session."""
    hub = hub_of(request)
    require_page(request, hub, "head", "technician")
    path = hub.announcements.audio_file(aid, staff=True)
    if path is None:
        raise HTTPException(404, f"no audio for announcement {aid!r}")
    return FileResponse(path, media_type=AUDIO_TYPES.get(path.suffix, "application/octet-stream"))


@router.post("/app/broadcasts/stop")
async def stop_form(request: Request) -> Response:
    """The dashboard's stop button: the same call and audit as POST /api/broadcasts/stop."""
    fields = await read_fields(request)
    hub = hub_of(request)
    session = await run_in_threadpool(form_session, request, hub, fields, "head")
    result = await run_in_threadpool(stop_broadcast, hub, session.user)
    stopped = json.loads(bytes(result.body)).get("stopped")
    back = safe_next(fields.one("next"), "/app/")
    return RedirectResponse(
        f"{back}{'&' if '?' in back else '?'}ok={'stopped' if stopped else 'idle'}",
        status_code=303,
    )


# -- pages: history -------------------------------------------------------------------------
@router.get("/app/history", response_class=HTMLResponse)
def history_page(request: Request) -> HTMLResponse:
    hub = hub_of(request)
    session = require_page(request, hub, "head", "technician")
    t = translator(request)
    q = request.query_params
    flt = LogFilter.of(q.get("status", ""), q.get("from", ""), q.get("to", ""))
    rows = log_rows(hub, flt, HISTORY_ROWS + 1)
    tz = hub.settings.tz
    now = hub.clock.now().timestamp()
    return render(
        request,
        "staff_history.html",
        t=t,
        session=session,
        active="schedule",
        data={"page": "history"},
        flt=flt,
        statuses=BROADCAST_STATUSES,
        rows=[
            {
                "title": r["title"],
                "status": r["status"],
                "priority": r["priority"],
                "zones": zones_text(t, json.loads(r["zones"]), hub.settings.gpio.zone_names),
                "scheduled": when_text(t, r["scheduled_for"], tz, now),
                "scheduled_iso": views_iso(r["scheduled_for"]),
                "started": f"{_local(r['started_at'], tz):%H:%M:%S}" if r["started_at"] else "",
                "length": duration_text(t, r["ended_at"] - r["started_at"])
                if r["started_at"] and r["ended_at"] and r["ended_at"] - r["started_at"] >= 1
                else "",
                "detail": detail_text(t, r["detail"]),
            }
            for r in rows[:HISTORY_ROWS]
        ],
        more=len(rows) > HISTORY_ROWS,
        export=f"/app/history.csv?{urlencode(flt.query())}" if flt.query() else "/app/history.csv",
    )


def _local(ts: float, tz: tzinfo) -> datetime:
    return datetime.fromtimestamp(ts, UTC).astimezone(tz)


def views_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@router.get("/app/history.csv")
def history_csv(request: Request) -> Response:
    """The as-run report for the commune: UTF-8 with a BOM (so Excel reads the accents)."""
    hub = hub_of(request)
    require_page(request, hub, "head", "technician")
    t = translator(request)
    q = request.query_params
    flt = LogFilter.of(q.get("status", ""), q.get("from", ""), q.get("to", ""))
    body = "\ufeff" + as_run_csv(hub, t, log_rows(hub, flt, EXPORT_ROWS))
    stamp = (
        "_".join(x.isoformat() for x in (flt.since, flt.until) if x)
        or local_naive(hub.clock.now(), hub.settings.tz).date().isoformat()
    )
    name = f"phat-thanh_{hub.settings.site}_{stamp}.csv"
    return Response(
        body.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# -- pages: rules ---------------------------------------------------------------------------
RULES_OK = ("added", "saved", "enabled", "disabled", "deleted")


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
        rules=rule_views(hub, t),
        notice=t(f"rules.ok.{ok}") if ok in RULES_OK else "",
        error=error,
        reason=reason,
        text=text,
        open_form=bool(error),
        when=lambda ts: t.when(ts, tz),
    )


def _refusal(e: RuleTextError | HTTPException) -> tuple[str, int]:
    """Why a rule was refused, and the status to answer with (the API's own, or 422)."""
    if isinstance(e, HTTPException):
        return str(e.detail), e.status_code
    return str(e), 422


@router.post("/app/rules")
async def rules_add(request: Request) -> Response:
    fields = await read_fields(request)
    hub = hub_of(request)
    session = await run_in_threadpool(form_session, request, hub, fields, "technician", "head")
    text = fields.one("definition")
    try:
        rule = check_rule(hub, parse_rule_text(text))
        await run_in_threadpool(add_rule, hub, session.user, rule)
    except (RuleTextError, HTTPException) as e:
        t = translator(request)
        reason, code = _refusal(e)
        return await run_in_threadpool(
            lambda: _rules(
                request,
                hub,
                session,
                t,
                error=t("rules.err.refused"),
                reason=reason,
                text=text,
                status=code,
            )
        )
    return RedirectResponse(f"/app/rules?ok=added#r-{rule.id}", status_code=303)


@router.get("/app/rules/{rule_id}", response_class=HTMLResponse)
def rule_page(request: Request, rule_id: str, ok: str = "") -> HTMLResponse:
    hub = hub_of(request)
    session = require_page(request, hub, "technician", "head")
    return _rule(request, hub, session, translator(request), rule_id, ok=ok)


def _rule(
    request: Request,
    hub: Hub,
    session: Session,
    t: Translator,
    rule_id: str,
    *,
    ok: str = "",
    error: str = "",
    reason: str = "",
    text: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    found = rule_views(hub, t, rule_id)
    if not found:
        return error_page(
            request,
            session=session,
            status=404,
            title="error.not_found",
            text=t("rules.not_found", id=rule_id),
        )
    rv = found[0]
    tz = hub.settings.tz
    firings = []
    for f in hub.store.query(
        "SELECT * FROM rule_firings WHERE rule_id=? ORDER BY at DESC, id DESC LIMIT 100",
        (rule_id,),
    ):
        firings.append(
            {
                "at": t.when(f["at"], tz),
                "iso": views_iso(f["at"]),
                "device": f["device_id"],
                "state": f["state"],
                "cause": cause_words(t, json.loads(f["cause"]), tz),
                "results": [result_parts(t, r) for r in json.loads(f["actions"])],
            }
        )
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
        notice=t(f"rules.ok.{ok}") if ok in RULES_OK else "",
        error=error,
        reason=reason,
        when=lambda ts: t.when(ts, tz),
    )


@router.post("/app/rules/{rule_id}")
async def rule_save(request: Request, rule_id: str) -> Response:
    fields = await read_fields(request)
    hub = hub_of(request)
    session = await run_in_threadpool(form_session, request, hub, fields, "technician", "head")
    text = fields.one("definition")
    try:
        data = parse_rule_text(text)
        if data.get("id", rule_id) != rule_id:
            raise RuleTextError("id: a rule keeps its id (delete it and add a new one)")
        rule = check_rule(hub, {**data, "id": rule_id})
        await run_in_threadpool(
            patch_rule, hub, session.user, rule_id, json.loads(rule.model_dump_json())
        )
    except (RuleTextError, HTTPException) as e:
        t = translator(request)
        reason, code = _refusal(e)
        return await run_in_threadpool(
            lambda: _rule(
                request,
                hub,
                session,
                t,
                rule_id,
                error=t("rules.err.refused"),
                reason=reason,
                text=text,
                status=code,
            )
        )
    return RedirectResponse(f"/app/rules/{rule_id}?ok=saved", status_code=303)


@router.post("/app/rules/{rule_id}/toggle")
async def rule_toggle(request: Request, rule_id: str) -> Response:
    """Switch a rule on or off: PATCH {"enabled": …}, as the API does it (audited)."""
    fields = await read_fields(request)
    hub = hub_of(request)
    session = await run_in_threadpool(form_session, request, hub, fields, "technician", "head")
    enabled = fields.one("enabled") == "1"
    try:
        await run_in_threadpool(patch_rule, hub, session.user, rule_id, {"enabled": enabled})
    except HTTPException as e:
        return error_page(
            request, session=session, status=e.status_code, title="error.title", text=str(e.detail)
        )
    back = safe_next(fields.one("next"), "/app/rules")
    back = back.split("?")[0].split("#")[0]
    ok = "enabled" if enabled else "disabled"
    return RedirectResponse(f"{back}?ok={ok}#r-{rule_id}", status_code=303)


@router.post("/app/rules/{rule_id}/delete")
async def rule_delete(request: Request, rule_id: str) -> Response:
    """Delete a rule: only with the confirmation box ticked (works without JavaScript)."""
    fields = await read_fields(request)
    hub = hub_of(request)
    session = await run_in_threadpool(form_session, request, hub, fields, "technician", "head")
    t = translator(request)
    if fields.one("confirm") != "yes":
        return await run_in_threadpool(
            lambda: _rule(
                request, hub, session, t, rule_id, error=t("rules.err.confirm"), status=422
            )
        )
    try:
        await run_in_threadpool(delete_rule, hub, session.user, rule_id)
    except HTTPException as e:
        return error_page(
            request, session=session, status=e.status_code, title="error.title", text=str(e.detail)
        )
    return RedirectResponse("/app/rules?ok=deleted", status_code=303)
