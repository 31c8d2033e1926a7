"""What every page shares: the templates, the page's language, the frame, the error page.

Pages are rendered on the server (Jinja2, autoescaped) and work without JavaScript;
``static/app.js`` adds live updates over ``/api/stream``. Page handlers are plain
functions (FastAPI runs them in its thread pool, where the store is read); form
handlers read the form on the loop and do the work in the thread pool.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse

from hub import __version__
from hub.app import Hub
from hub.clock import iso
from hub.services.users import Role
from hub.web import views
from hub.web.session import LANG_COOKIE, Session
from hub.words import DEFAULT_LANG, LANG_NAMES, LANGS, Translator
from hub.words.times import clock_text

if TYPE_CHECKING:
    from fastapi.templating import Jinja2Templates
    from jinja2 import Environment

HERE = Path(__file__).parent
STATIC = HERE / "static"

#: Strings the page's script needs (live badges, alerts, relative times).
SCRIPT_KEYS = ("status.", "severity.", "ago.", "live.", "alert.", "alerts.", "metric.")
#: Form fields are short: names, roles, passwords, tokens.
MAX_FIELD = 512

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
                # m:ss of a recording, where a page says how long it is.
                env.globals["clock_text"] = clock_text
                _templates = Jinja2Templates(env=env)
    return _templates


def template_env() -> Environment:
    """The Jinja2 environment of :func:`templates`, for a fragment rendered on its own."""
    return templates().env


def hub_of(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def pick_lang(query: str | None, cookie: str | None) -> str:
    """The page's language: ``?lang=``, else the ``lang`` cookie, else Vietnamese."""
    for candidate in (query, cookie):
        if candidate in LANGS:
            return candidate
    return DEFAULT_LANG


def translator(request: Request) -> Translator:
    return Translator(pick_lang(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)))


def base_url(request: Request) -> str:
    """Where QR codes and the feeds' links point: ``http.public_url``, else this hub's
    address as the browser reached it."""
    public: str | None = hub_of(request).settings.http.public_url
    return public or str(request.base_url).rstrip("/")


def iso_text(ts: float | None) -> str:
    """:func:`hub.clock.iso` for a ``datetime=""`` attribute: empty rather than None."""
    return iso(ts) or ""


def _lang_url(request: Request, code: str) -> str:
    query = {k: v for k, v in request.query_params.items() if k not in ("lang", "ok")}
    query["lang"] = code
    return f"{request.url.path}?{urlencode(query)}"


#: The staff's tabs: (id, address, label, the roles that see it; none: everybody).
NAV: tuple[tuple[str, str, str, tuple[Role, ...]], ...] = (
    ("dashboard", "/app/", "nav.dashboard", ()),
    ("compose", "/app/compose", "nav.compose", ("head",)),
    ("devices", "/app/devices", "nav.devices", ("technician",)),
    ("alerts", "/app/alerts", "nav.alerts", ("technician",)),
    ("schedule", "/app/schedule", "nav.schedule", ("head", "technician")),
    ("feedback", "/app/feedback", "nav.inbox", ("head",)),
    ("rules", "/app/rules", "nav.rules", ("technician", "head")),
    ("households", "/app/households", "nav.households", ("head", "technician")),
    ("lexicon", "/app/lexicon", "nav.lexicon", ("head", "technician")),
    ("users", "/app/users", "nav.users", ("admin",)),
)


def _nav(session: Session | None, t: Translator, active: str) -> list[dict[str, Any]]:
    # A phone's bar holds five; beyond that base.html puts the rest under "More".
    if session is None:
        return []
    return [
        {"id": key, "url": url, "label": t(label), "active": key == active}
        for key, url, label, roles in NAV
        if not roles or session.user.has(*roles)
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
    """A page in the frame (``base.html``): the staff's tabs, the language switch, the
    page data its script reads; ``context`` goes to the template as it is."""
    hub = hub_of(request)
    now = hub.clock.now().timestamp()
    staff = session is not None and session.user.has("technician")
    open_ids = [a.id for a in views.open_alerts(hub)] if staff else []
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
        "site": hub.settings.village,
        "version": __version__,
        "session": session,
        "user": session.user if session else None,
        "csrf": session.csrf if session else None,
        "nav": _nav(session, t, active),
        "open_alert_count": len(open_ids),
        # New residents' reports, on the inbox's tab: the head sees them from any page.
        "new_feedback": (
            hub.feedback.counts()["new"] if session and session.user.has("head") else 0
        ),
        "live": live,
        "now": now,
        "tz": hub.settings.tz,
        "ago": lambda ts: t.ago(ts, now),
        "when": lambda ts: t.when(ts, hub.settings.tz),
        "iso": iso_text,
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


def error_page(
    request: Request,
    *,
    session: Session | None,
    status: int,
    title: str,
    text: str,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """The error page: ``title`` a catalogue key, ``text`` already in words."""
    t = translator(request)
    response = render(
        request, "error.html", t=t, session=session, status=status, title=t(title), text=text
    )
    for k, v in (headers or {}).items():
        response.headers[k] = v
    return response


def not_found(
    request: Request, session: Session | None, text_key: str, **values: Any
) -> HTMLResponse:
    """The 404 page, saying what was not found."""
    t = translator(request)
    return error_page(
        request, session=session, status=404, title="error.not_found", text=t(text_key, **values)
    )


async def read_form(request: Request) -> dict[str, str]:
    """The form's text fields (no files), each cut to a sane length."""
    form = await request.form(max_files=0, max_fields=24)
    try:
        return {k: v[:MAX_FIELD] for k, v in form.items() if isinstance(v, str)}
    finally:
        await form.close()
