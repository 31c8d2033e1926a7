"""The web pages: the residents' page at ``/`` and the staff pages under ``/app/``.

Pages are rendered on the server (Jinja2, autoescaped) and work without
JavaScript; ``static/app.js`` adds live updates over ``/api/stream``. Page
handlers are plain functions (FastAPI runs them in its thread pool, where the
store is read); form handlers read the form on the loop and do the work —
Argon2 hashing, SQLite writes — in the thread pool.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from devices.events import DEVICE_KINDS
from hub import __version__
from hub.api.alerts_ack import ack_alert
from hub.api.deps import iso
from hub.api.users import UserError, add_user, change_user, reset_password
from hub.app import Hub
from hub.errors import AuthError
from hub.services.users import ROLES, Role
from hub.web import views
from hub.web.charts import line_chart
from hub.web.i18n import LANG_NAMES, LANGS, Translator, pick_lang
from hub.web.session import (
    LANG_COOKIE,
    CsrfFailed,
    LoginRequired,
    PageForbidden,
    Session,
    check_form,
    check_login_form,
    clear_session,
    login_csrf,
    require_page,
    safe_next,
    session_of,
    set_login_csrf,
    set_session,
)

if TYPE_CHECKING:
    from fastapi.templating import Jinja2Templates
    from jinja2 import Environment

HERE = Path(__file__).parent
STATIC = HERE / "static"

_templates: Jinja2Templates | None = None
_templates_lock = threading.Lock()


def templates() -> Jinja2Templates:
    """The page templates, made at the first page rendered, not at start-up: Jinja2 takes
    over 1 MB of resident memory, which a hub nobody opens a page of does not need. Made
    once, under a lock: the first pages may be rendered by several worker threads at once."""
    global _templates
    if _templates is None:
        with _templates_lock:
            if _templates is None:
                from fastapi.templating import Jinja2Templates
                from jinja2 import Environment, FileSystemLoader, select_autoescape

                env = Environment(
                    loader=FileSystemLoader(HERE / "templates"),
                    autoescape=select_autoescape(default=True, default_for_string=True),
                    trim_blocks=True,
                    lstrip_blocks=True,
                )
                _templates = Jinja2Templates(env=env)
    return _templates


def template_env() -> Environment:
    """The Jinja2 environment of :func:`templates`, for a fragment rendered on its own."""
    return templates().env


router = APIRouter(include_in_schema=False)

#: Strings the page's script needs (live badges, alerts, relative times).
SCRIPT_KEYS = ("status.", "severity.", "ago.", "live.", "alert.", "alerts.", "metric.")
#: Form fields are short: names, roles, passwords, tokens.
MAX_FIELD = 512


# -- rendering --------------------------------------------------------------------------
def hub_of(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def translator(request: Request) -> Translator:
    return Translator(pick_lang(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)))


def _lang_url(request: Request, code: str) -> str:
    query = {k: v for k, v in request.query_params.items() if k not in ("lang", "ok")}
    query["lang"] = code
    return f"{request.url.path}?{urlencode(query)}"


def _nav(session: Session | None, t: Translator, active: str) -> list[dict[str, Any]]:
    if session is None:
        return []
    user = session.user
    # Five tabs for the head and for a technician (a phone's width); an admin, who has
    # them all, scrolls the bar.
    items: list[tuple[str, str, str, tuple[Role, ...]]] = [
        ("dashboard", "/app/", "nav.dashboard", ()),
        ("compose", "/app/compose", "nav.compose", ("head",)),
        ("devices", "/app/devices", "nav.devices", ("technician",)),
        ("alerts", "/app/alerts", "nav.alerts", ("technician",)),
        ("schedule", "/app/schedule", "nav.schedule", ("head", "technician")),
        ("feedback", "/app/feedback", "nav.inbox", ("head",)),
        ("rules", "/app/rules", "nav.rules", ("technician", "head")),
        ("users", "/app/users", "nav.users", ("admin",)),
    ]
    return [
        {"id": key, "url": url, "label": t(label), "active": key == active}
        for key, url, label, roles in items
        if not roles or user.has(*roles)
    ]


def render(
    request: Request,
    name: str,
    *,
    t: Translator,
    session: Session | None,
    active: str = "",
    status: int = 200,
    live: bool = False,
    data: Mapping[str, Any] | None = None,
    **context: Any,
) -> HTMLResponse:
    hub = hub_of(request)
    now = hub.clock.now().timestamp()
    staff = session is not None and session.user.has("technician")
    open_ids: list[str] = []
    if staff:
        open_ids = [r["id"] for r in hub.store.query("SELECT id FROM alerts WHERE state='raised'")]
    page_data: dict[str, Any] = {
        "lang": t.lang,
        "now": now,
        "staff": staff,
        "csrf": session.csrf if session else None,
        "open_alerts": open_ids,
        "mark": request.app.state.bus.mark if live else None,
        "t": t.subset(SCRIPT_KEYS),
        **(data or {}),
    }
    ctx = {
        "_": t,
        "t": t,
        "lang": t.lang,
        "languages": [
            {"code": c, "name": LANG_NAMES[c], "url": _lang_url(request, c), "current": c == t.lang}
            for c in LANGS
        ],
        "site": hub.settings.site,
        "version": __version__,
        "session": session,
        "user": session.user if session else None,
        "csrf": session.csrf if session else None,
        "nav": _nav(session, t, active),
        "open_alert_count": len(open_ids),
        "live": live,
        "now": now,
        "tz": hub.settings.tz,
        "ago": lambda ts: t.ago(ts, now),
        "when": lambda ts: t.when(ts, hub.settings.tz),
        "iso": _iso,
        "page_data": page_data,
        **context,
    }
    response = templates().TemplateResponse(request, name, ctx, status_code=status)
    if request.query_params.get("lang") in LANGS:
        response.set_cookie(
            LANG_COOKIE, t.lang, max_age=365 * 86_400, samesite="lax", path="/", httponly=True
        )
    if session is not None:
        response.headers["Cache-Control"] = "no-store"
    return response


def _parse_iso(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _iso(ts: float | None) -> str:
    return iso(ts) or ""


def error_page(
    request: Request,
    *,
    session: Session | None,
    status: int,
    title: str,
    text: str,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    t = translator(request)
    response = render(
        request,
        "error.html",
        t=t,
        session=session,
        status=status,
        title=t(title),
        text=text,
    )
    for k, v in (headers or {}).items():
        response.headers[k] = v
    return response


async def read_form(request: Request) -> dict[str, str]:
    """The form's text fields (no files), each cut to a sane length."""
    form = await request.form(max_files=0, max_fields=24)
    try:
        return {k: v[:MAX_FIELD] for k, v in form.items() if isinstance(v, str)}
    finally:
        await form.close()


def _signed_in_form(request: Request, hub: Hub, form: Mapping[str, str], *roles: Role) -> Session:
    """A staff form: a session (else sign in), its CSRF token (else 403), the role (else 403)."""
    session = session_of(request, hub)
    if session is None:
        raise LoginRequired("/app/")
    check_form(session, form.get("csrf"))
    if roles and not session.user.has(*roles):
        raise PageForbidden(session, roles)
    return session


# -- the residents' page ----------------------------------------------------------------
@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    hub = hub_of(request)
    t = translator(request)
    return render(
        request,
        "public.html",
        t=t,
        session=session_of(request, hub),
        announcements=getattr(request.app.state, "announcements", None)
        or getattr(hub, "announcements", None),
    )


@router.get("/favicon.ico")
def favicon() -> FileResponse:
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")


# -- signing in and out -----------------------------------------------------------------
@router.get("/app/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None, bye: int = 0) -> Response:
    hub = hub_of(request)
    if session_of(request, hub) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_form(request, next_url=safe_next(next), notice="login.signed_out" if bye else "")


def _login_form(
    request: Request,
    *,
    next_url: str,
    error: str = "",
    notice: str = "",
    username: str = "",
    status: int = 200,
) -> HTMLResponse:
    t = translator(request)
    value, fresh = login_csrf(request)
    response = render(
        request,
        "login.html",
        t=t,
        session=None,
        status=status,
        login_csrf=value,
        next_url=next_url,
        error=error,
        notice=notice,
        username=username,
    )
    if fresh:
        set_login_csrf(response, request, value)
    return response


@router.post("/app/login", response_class=HTMLResponse)
async def login_submit(request: Request) -> Response:
    form = await read_form(request)
    check_login_form(request, form.get("csrf"))
    hub = hub_of(request)
    t = translator(request)
    username = form.get("username", "").strip()[:64]
    next_url = safe_next(form.get("next"))
    outcome, value = await run_in_threadpool(
        _sign_in, request, hub, username, form.get("password", "")
    )
    if outcome == "ok":
        response = RedirectResponse(next_url, status_code=303)
        set_session(response, request, value, max_age=int(hub.settings.http.token_ttl_h * 3600))
        return response
    if outcome == "throttled":
        r = _login_form(
            request,
            next_url=next_url,
            error=t("login.throttled", s=value),
            username=username,
            status=429,
        )
        r.headers["Retry-After"] = value
        return r
    return _login_form(request, next_url=next_url, error=t(value), username=username, status=401)


def _sign_in(
    request: Request, hub: Hub, username: str, password: str
) -> tuple[Literal["ok", "throttled", "failed"], str]:
    """The same throttle as POST /api/auth/token: failures per (name, address)."""
    throttle = request.app.state.throttle
    http = hub.settings.http
    now = hub.clock.monotonic()
    key = (username.lower(), request.client.host if request.client else "?")
    wait = throttle.blocked(key, now, http.login_attempts, http.login_window_s)
    if wait > 0:
        return "throttled", str(int(wait) + 1)
    try:
        user = hub.users.authenticate(username, password)
    except AuthError as e:
        throttle.fail(key, now)
        return "failed", "login.disabled" if "disabled" in str(e) else "login.failed"
    throttle.reset(key)
    token = hub.users.issue_token(
        user, now=hub.clock.now().timestamp(), ttl_s=http.token_ttl_h * 3600
    )
    return "ok", token


@router.post("/app/logout")
async def logout(request: Request) -> Response:
    form = await read_form(request)
    hub = hub_of(request)
    session = await run_in_threadpool(session_of, request, hub)
    response = RedirectResponse("/app/login?bye=1", status_code=303)
    if session is not None:
        check_form(session, form.get("csrf"))
        await run_in_threadpool(hub.users.revoke, session.token, now=hub.clock.now().timestamp())
    clear_session(response, request)
    return response


# -- staff pages ------------------------------------------------------------------------
@router.get("/app", include_in_schema=False)
def app_root() -> RedirectResponse:
    return RedirectResponse("/app/", status_code=302)


@router.get("/app/", response_class=HTMLResponse)
def dashboard(request: Request, ok: str = "") -> HTMLResponse:
    # hub.web.staff imports this module: it is imported here, once both are loaded.
    from hub.web.staff import upcoming_items
    from hub.web.staff_words import zones_text

    hub = hub_of(request)
    session = require_page(request, hub)
    t = translator(request)
    staff = session.user.has("technician")
    cards = views.devices(hub) if staff else []
    announcements, on_air = _broadcasts(request, hub)
    upcoming = upcoming_items(hub, t, session) if announcements is not None else []
    return render(
        request,
        "dashboard.html",
        t=t,
        session=session,
        active="dashboard",
        live=staff or announcements is not None,
        data={"devices": {d.id: d.status for d in cards}, "page": "dashboard"},
        staff=staff,
        parse_iso=_parse_iso,
        counts=views.status_counts(cards),
        total=len(cards),
        alerts=views.open_alerts(hub)[:5] if staff else [],
        alert_title=lambda a: views.alert_title(t, a),
        announcements=announcements,
        on_air=on_air,
        upcoming=upcoming,
        head=session.user.has("head"),
        full=False,
        zones_text=lambda z: zones_text(t, z, hub.settings.gpio.zone_names),
        notice=t(f"dash.ok.{ok}") if ok in ("stopped", "idle") else "",
    )


def _broadcasts(request: Request, hub: Hub) -> tuple[Any, Mapping[str, Any] | None]:
    """(the announcements service or None, what is on air)."""
    service = getattr(request.app.state, "announcements", None) or getattr(
        hub, "announcements", None
    )
    playout = getattr(hub, "playout", None)
    if service is None:
        return None, None
    on_air = None
    state = getattr(playout, "state", None)
    if state is not None and state.state == "playing":
        on_air = {
            "title": state.title or state.announcement_id,
            "priority": state.priority,
            "started_at": state.started_at.timestamp() if state.started_at else None,
        }
    return service, on_air


@router.get("/app/devices", response_class=HTMLResponse)
def devices_page(request: Request, kind: str | None = None, q: str = "") -> HTMLResponse:
    hub = hub_of(request)
    session = require_page(request, hub, "technician")
    t = translator(request)
    everything = views.devices(hub)
    kinds = [k for k in DEVICE_KINDS if any(d.kind == k for d in everything)]
    if kind not in kinds:
        kind = None
    q = q.strip()[:64]
    shown = [
        d
        for d in everything
        if (kind is None or d.kind == kind) and (not q or q.lower() in d.search_text)
    ]
    return render(
        request,
        "devices.html",
        t=t,
        session=session,
        active="devices",
        live=True,
        data={"devices": {d.id: d.status for d in everything}, "page": "devices"},
        cards=shown,
        kinds=kinds,
        kind=kind,
        q=q,
        total=len(everything),
        key_metrics=lambda d: [
            (views.metric_label(t, n), views.metric_text(t, n, d.metrics[n]))
            for n in views.ordered_metrics(d.metrics)
            if n not in views.NOT_CHARTED and not n.endswith(views.COUNTERS_SUFFIX)
        ][:3],
    )


@router.get("/app/devices/{device_id}", response_class=HTMLResponse)
def device_page(request: Request, device_id: str, range: str = "24h") -> HTMLResponse:
    hub = hub_of(request)
    session = require_page(request, hub, "technician")
    t = translator(request)
    d = views.device(hub, device_id)
    if d is None:
        return error_page(
            request,
            session=session,
            status=404,
            title="error.not_found",
            text=t("error.not_found_text"),
        )
    if range not in views.RANGES:
        range = "24h"
    t1 = hub.clock.now().timestamp()
    t0 = t1 - views.RANGES[range]
    charts = []
    for i, name in enumerate(
        n for n in views.ordered_metrics(d.metrics) if n not in views.NOT_CHARTED
    ):
        label = views.metric_label(t, name)
        points = views.series(hub, device_id, name, t0, t1)
        charts.append(
            {
                "name": name,
                "label": label,
                "unit": views.metric_unit(name),
                "empty": not points,
                "svg": line_chart(
                    points,
                    t0=t0,
                    t1=t1,
                    tz=hub.settings.tz,
                    label=label,
                    unit=views.metric_unit(name),
                    number=t.number,
                    day=t.day,
                    summary=partial(_chart_summary, t, label),
                    chart_id=f"chart-{i}",
                ),
            }
        )
    return render(
        request,
        "device.html",
        t=t,
        session=session,
        active="devices",
        live=True,
        data={"devices": {d.id: d.status}, "page": "device"},
        d=d,
        reason=views.reason_text(t, d.status_reason) if d.status != "online" else "",
        range=range,
        ranges=list(views.RANGES),
        charts=charts,
        metrics=[
            (views.metric_label(t, n), views.metric_text(t, n, d.metrics[n]))
            for n in views.ordered_metrics(d.metrics)
        ],
        alerts=views.open_alerts(hub, device_id) + views.cleared_alerts(hub, device_id, 10),
        alert_title=lambda a: views.alert_title(t, a),
        events=views.recent_events(hub, t, device_id),
    )


def _chart_summary(t: Translator, label: str, lo: str, hi: str, last: str) -> str:
    return t("chart.summary", label=label, min=lo, max=hi, last=last)


@router.get("/app/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, ok: str = "") -> HTMLResponse:
    hub = hub_of(request)
    session = require_page(request, hub, "technician")
    t = translator(request)
    return render(
        request,
        "alerts.html",
        t=t,
        session=session,
        active="alerts",
        live=True,
        data={"page": "alerts"},
        open=views.open_alerts(hub),
        cleared=views.cleared_alerts(hub),
        alert_title=lambda a: views.alert_title(t, a),
        notice=t("alerts.acked_ok") if ok == "acked" else "",
    )


@router.post("/app/alerts/{alert_id}/ack")
async def ack_form(request: Request, alert_id: str) -> Response:
    form = await read_form(request)
    hub = hub_of(request)
    session = await run_in_threadpool(_signed_in_form, request, hub, form, "technician")
    try:
        await run_in_threadpool(
            ack_alert, hub, alert_id, session.user.username, request.app.state.bus
        )
    except KeyError:
        t = translator(request)
        return error_page(
            request,
            session=session,
            status=404,
            title="error.not_found",
            text=t("error.not_found_text"),
        )
    back = safe_next(form.get("next"), "/app/alerts")
    if back.startswith("/app/alerts"):
        back = "/app/alerts?ok=acked"
    return RedirectResponse(back, status_code=303)


# -- users (admin) ----------------------------------------------------------------------
@router.get("/app/users", response_class=HTMLResponse)
def users_page(request: Request, ok: str = "") -> HTMLResponse:
    hub = hub_of(request)
    session = require_page(request, hub, "admin")
    t = translator(request)
    key = f"users.ok.{ok}"
    return _users(request, hub, session, t, notice=t(key) if ok and t.has(key) else "")


def _users(
    request: Request,
    hub: Hub,
    session: Session,
    t: Translator,
    *,
    notice: str = "",
    error: str = "",
    status: int = 200,
    form: Mapping[str, str] | None = None,
) -> HTMLResponse:
    return render(
        request,
        "users.html",
        t=t,
        session=session,
        active="users",
        status=status,
        users=hub.users.list_users(),
        roles=ROLES,
        notice=notice,
        error=error,
        form=form or {},
    )


async def _users_write(request: Request, action: str, user_id: int | None = None) -> Response:
    form = await read_form(request)
    hub = hub_of(request)
    session = await run_in_threadpool(_signed_in_form, request, hub, form, "admin")
    actor = session.user
    try:
        if action == "added":
            await run_in_threadpool(
                add_user,
                hub,
                actor,
                form.get("username", "").strip(),
                form.get("role", ""),
                form.get("password", ""),
            )
        elif action == "role":
            assert user_id is not None
            await run_in_threadpool(
                lambda: change_user(hub, actor, user_id, role=_role(form.get("role")))
            )
        elif action == "password":
            assert user_id is not None
            await run_in_threadpool(reset_password, hub, actor, user_id, form.get("password", ""))
        else:
            assert user_id is not None
            await run_in_threadpool(
                lambda: change_user(hub, actor, user_id, disabled=action == "disabled")
            )
    except UserError as e:
        refused = e
    else:
        # Post/redirect/get: a reload does not send the form twice.
        return RedirectResponse(f"/app/users?ok={action}", status_code=303)
    t = translator(request)
    kept = {"username": form.get("username", ""), "role": form.get("role", "")}
    return await run_in_threadpool(
        lambda: _users(
            request, hub, session, t, error=t(refused.key), status=refused.status, form=kept
        )
    )


def _role(value: str | None) -> str:
    if value not in ROLES:
        raise UserError(422, "users.err.invalid", f"role must be one of {', '.join(ROLES)}")
    return value


@router.post("/app/users")
async def users_add(request: Request) -> Response:
    return await _users_write(request, "added")


@router.post("/app/users/{user_id}/role")
async def users_role(request: Request, user_id: int) -> Response:
    return await _users_write(request, "role", user_id)


@router.post("/app/users/{user_id}/password")
async def users_password(request: Request, user_id: int) -> Response:
    return await _users_write(request, "password", user_id)


@router.post("/app/users/{user_id}/disable")
async def users_disable(request: Request, user_id: int) -> Response:
    return await _users_write(request, "disabled", user_id)


@router.post("/app/users/{user_id}/enable")
async def users_enable(request: Request, user_id: int) -> Response:
    return await _users_write(request, "enabled", user_id)


# -- how the pages answer the exceptions of hub.web.session -----------------------------
async def on_login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    target = "/app/login"
    if exc.next_url and exc.next_url != "/app/":
        target += "?" + urlencode({"next": exc.next_url})
    # A form posted after the session ended: 303 turns the POST into a GET.
    return RedirectResponse(target, status_code=302 if request.method == "GET" else 303)


async def on_forbidden(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageForbidden)
    t = translator(request)
    return await run_in_threadpool(
        lambda: error_page(
            request,
            session=exc.session,
            status=403,
            title="error.forbidden",
            text=t(
                "error.forbidden_text",
                roles=", ".join(t(f"role.{r}") for r in dict.fromkeys((*exc.roles, "admin"))),
                role=t(f"role.{exc.session.user.role}"),
            ),
        )
    )


async def on_csrf(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CsrfFailed)
    t = translator(request)
    response = await run_in_threadpool(
        lambda: error_page(
            request,
            session=exc.session,
            status=403,
            title="error.csrf",
            text=t("error.csrf_text"),
        )
    )
    response.headers["X-Refused"] = exc.reason
    return response
