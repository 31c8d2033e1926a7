"""Pronunciation (``/app/lexicon``, "Cách đọc"): the village's own words and how the
loudspeakers say them, with a listen button beside each, a sentence to try, and the list
as a CSV file to download and import.

The head (and admin) adds, changes and deletes; technicians read and listen. Every change
goes through :class:`hub.services.lexicon.LexiconBook`, as ``/api/lexicon`` does (checked,
audited, the coming announcements that use the word rendered again); a refusal is said next
to its field (``lex.err.<reason>``), a refused file with its line. Without JavaScript every
form still posts: "listen" answers with the audio itself, the import posts the file here
(within the staff forms' 16 KiB); ``static/lexicon.js`` plays in the page and imports larger
files through the API.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from audio.lexicon import canonical
from hub.api.lexicon import for_hub
from hub.app import Hub
from hub.broadcast.rendering import AUDIO_TYPES
from hub.errors import NotFound
from hub.services.lexicon import (
    MAX_CSV_BYTES,
    MAX_ENTRIES,
    MAX_NOTE,
    MAX_SAY,
    MAX_WORD,
    LexiconRefused,
    LexiconTooLarge,
)
from hub.web.render import SCRIPT_KEYS, hub_of, not_found, read_form, render, translator
from hub.web.session import Session, form_session, require_page
from hub.words import Translator
from hub.words.times import ts_of

router = APIRouter(include_in_schema=False)

PAGE = "/app/lexicon"
OK = ("saved", "deleted", "imported")
#: What an import said, carried over the redirect (``?ok=imported&added=3...``).
COUNTS = ("added", "changed", "removed", "unchanged")


def anchor(word: str) -> str:
    """An entry's element id: stable for any spelling of the word, safe in a URL."""
    return "e-" + hashlib.sha1(canonical(word).encode()).hexdigest()[:12]


@router.get(PAGE, response_class=HTMLResponse)
def lexicon_page(request: Request, ok: str = "", q: str = "") -> HTMLResponse:
    hub = hub_of(request)
    session = require_page(request, hub, "head", "technician")
    t = translator(request)
    notice = ""
    if ok == "imported":
        counts = {k: _count(request.query_params.get(k)) for k in COUNTS}
        notice = t("lex.ok.imported", **counts)
    elif ok in OK:
        notice = t(f"lex.ok.{ok}")
    return _page(request, hub, session, t, notice=notice, q=q[:64])


def _count(value: str | None) -> int:
    return int(value) if value and value.isdigit() and len(value) < 6 else 0


def _page(
    request: Request,
    hub: Hub,
    session: Session,
    t: Translator,
    *,
    notice: str = "",
    q: str = "",
    errors: Mapping[str, str] | None = None,
    form: Mapping[str, str] | None = None,
    file_error: str = "",
    status: int = 200,
) -> HTMLResponse:
    book = for_hub(hub)
    entries = book.entries()
    wanted = q.strip().casefold()
    for e in entries:
        e["anchor"] = anchor(e["word"])
        e["search"] = " ".join(str(e[k] or "") for k in ("word", "say", "note")).casefold()
        e["shown"] = not wanted or wanted in e["search"]
    return render(
        request,
        "staff_lexicon.html",
        t=t,
        session=session,
        active="lexicon",
        status=status,
        entries=entries,
        shown=sum(1 for e in entries if e["shown"]),
        q=q,
        can_edit=session.user.has("head"),
        notice=notice,
        errors=errors or {},
        form=form or {},
        file_error=file_error,
        limits={
            "word": MAX_WORD,
            "say": MAX_SAY,
            "note": MAX_NOTE,
            "entries": MAX_ENTRIES,
            "csv": MAX_CSV_BYTES,
        },
        parse_iso=ts_of,
        data={"t": t.subset((*SCRIPT_KEYS, "ljs."))},
    )


def _refusal(t: Translator, refused: LexiconRefused | LexiconTooLarge) -> str:
    reason = t(f"lex.err.{refused.reason}")
    line = getattr(refused, "line", None)
    return t("lex.err.line", line=line, reason=reason) if line else reason


@router.post(PAGE)
async def lexicon_save(request: Request) -> Response:
    form = await read_form(request)
    hub = hub_of(request)
    session = await run_in_threadpool(form_session, request, hub, form.get("csrf"), "head")
    kept = {k: form.get(k, "") for k in ("word", "say", "note")}
    try:
        entry, _ = await run_in_threadpool(
            lambda: for_hub(hub).put(
                kept["word"], kept["say"], kept["note"] or None, actor=session.user.username
            )
        )
    except (LexiconRefused, LexiconTooLarge) as refused:
        t = translator(request)
        errors = {getattr(refused, "field", "word"): _refusal(t, refused)}
        status = 413 if isinstance(refused, LexiconTooLarge) else 422
        return await run_in_threadpool(
            lambda: _page(
                request,
                hub,
                session,
                t,
                errors=errors,
                form=kept,
                status=status,
            )
        )
    # Post/redirect/get, back at the entry: a reload does not post it twice.
    return RedirectResponse(f"{PAGE}?ok=saved#{anchor(entry['word'])}", status_code=303)


@router.post(PAGE + "/delete")
async def lexicon_delete(request: Request) -> Response:
    form = await read_form(request)
    hub = hub_of(request)
    session = await run_in_threadpool(form_session, request, hub, form.get("csrf"), "head")
    word = form.get("word", "")
    try:
        await run_in_threadpool(lambda: for_hub(hub).delete(word, actor=session.user.username))
    except NotFound:
        return await run_in_threadpool(not_found, request, session, "lex.not_found")
    return RedirectResponse(f"{PAGE}?ok=deleted", status_code=303)


@router.post(PAGE + "/listen", response_model=None)
async def lexicon_listen(request: Request) -> Response:
    """Without JavaScript: the audio itself (the phone's player opens it)."""
    form = await read_form(request)
    hub = hub_of(request)
    session = await run_in_threadpool(
        form_session, request, hub, form.get("csrf"), "head", "technician"
    )
    word, say = form.get("word") or None, form.get("say") or None
    try:
        r = await run_in_threadpool(
            lambda: for_hub(hub).listen(form.get("text") or None, word=word, say=say)
        )
    except LexiconRefused as refused:
        t = translator(request)
        kept = {k: form.get(k, "") for k in ("word", "say", "note", "text")}
        errors = {refused.field: _refusal(t, refused)}
        return await run_in_threadpool(
            lambda: _page(
                request,
                hub,
                session,
                t,
                errors=errors,
                form=kept,
                status=422,
            )
        )
    return FileResponse(r.web_path, media_type=AUDIO_TYPES.get(r.web_path.suffix, "audio/ogg"))


@router.post(PAGE + "/import")
async def lexicon_import(request: Request) -> Response:
    hub = hub_of(request)
    t = translator(request)
    # The file's form: one file, a few fields (the staff forms' 16 KiB cap holds).
    form = await request.form(max_files=1, max_fields=4)
    try:
        sent = form.get("csrf")
        session = await run_in_threadpool(
            form_session, request, hub, sent if isinstance(sent, str) else None, "head"
        )
        file = form.get("file")
        data = await file.read(MAX_CSV_BYTES + 1) if isinstance(file, UploadFile) else b""
        replace = form.get("replace") == "1"
    finally:
        await form.close()
    if not data:
        return await run_in_threadpool(
            lambda: _page(request, hub, session, t, file_error=t("lex.err.no_file"), status=422)
        )
    try:
        done = await run_in_threadpool(
            lambda: for_hub(hub).import_csv(data, actor=session.user.username, replace=replace)
        )
    except (LexiconRefused, LexiconTooLarge) as refused:
        status = 413 if isinstance(refused, LexiconTooLarge) else 422
        text = _refusal(t, refused)
        return await run_in_threadpool(
            lambda: _page(request, hub, session, t, file_error=text, status=status)
        )
    counts = "&".join(f"{k}={done[k]}" for k in COUNTS)
    return RedirectResponse(f"{PAGE}?ok=imported&{counts}", status_code=303)
