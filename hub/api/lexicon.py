"""/api/lexicon: the village's own words and how the loudspeakers say them.

Thin: :class:`hub.services.lexicon.LexiconBook` checks, stores, audits and has what uses a
changed word rendered again. The head (and admin) edits; technicians read and listen.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from audio.cache import Rendered
from audio.lexicon import Lexicon
from hub.api.deps import HubDep, read_body, require
from hub.api.errors import documented
from hub.api.schemas import AUDIO, json_of
from hub.app import Hub
from hub.broadcast.rendering import AUDIO_TYPES
from hub.services.lexicon import (
    MAX_CSV_BYTES,
    MAX_ENTRIES,
    EntryIn,
    LexiconBook,
    ListenIn,
)
from hub.services.users import User


def for_hub(hub: Hub) -> LexiconBook:
    """The service over a built hub (stateless: made per request by the API and the page):
    a change re-renders what uses it, then the rules' emergency texts."""
    upkeep = hub.announcements.upkeep
    renderer = hub.announcements.renderer

    def changed(words: frozenset[str]) -> None:
        upkeep.words_changed(words, then=hub.prerender)

    def preview(text: str, voice: str | None, lexicon: Lexicon) -> Rendered:
        return renderer.preview(text, voice, keep=upkeep.keep(), lexicon=lexicon)

    return LexiconBook(hub.store, hub.clock, changed=changed, preview=preview)


router = APIRouter(tags=["lexicon"])

Head = Annotated[User, Depends(require("head"))]
Reader = Annotated[User, Depends(require("head", "technician"))]
Word = Annotated[
    str,
    Path(
        min_length=1,
        max_length=80,
        description="The word or abbreviation, in any case (it may hold a slash: đ/c).",
    ),
]

#: The kinds of body the import reads: the file itself, or a form with it.
_RAW = ("text/csv", "text/plain", "application/octet-stream", "application/vnd.ms-excel")


class EntryOut(BaseModel):
    """An entry of the lexicon."""

    word: str
    say: str = Field(description="How the loudspeakers say it.")
    note: str | None
    updated_by: str
    updated_at: str = Field(description="ISO 8601, UTC.")


class ImportOut(BaseModel):
    """What an import did (all of it, or nothing)."""

    added: int
    changed: int
    removed: int = Field(description="Only with replace=true: entries not in the file.")
    unchanged: int


@router.get(
    "/api/lexicon",
    response_model=None,
    responses={200: json_of(list[EntryOut]), **documented(401, 403, 422)},
)
def list_entries(
    hub: HubDep,
    user: Reader,
    q: Annotated[str | None, Query(max_length=64, description="In a word, saying or note.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ENTRIES)] = MAX_ENTRIES,
) -> list[dict[str, Any]]:
    """The lexicon, by word."""
    return for_hub(hub).entries(q, limit)


@router.get(
    "/api/lexicon.csv",
    response_class=Response,
    responses={
        200: {
            "description": "word,say,note in UTF-8 with a BOM (a spreadsheet opens it)",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **documented(401, 403),
    },
)
def export_entries(hub: HubDep, user: Reader) -> Response:
    """The lexicon as a CSV file, to keep or to edit in a spreadsheet and import again."""
    return Response(
        for_hub(hub).export_csv(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="lexicon.csv"'},
    )


@router.post(
    "/api/lexicon/import",
    response_model=None,
    responses={200: json_of(ImportOut), **documented(400, 401, 403, 413, 415, 422)},
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": f"word,say[,note] lines, UTF-8 (a BOM is fine), at most "
            f"{MAX_CSV_BYTES // 1024} KB and {MAX_ENTRIES} entries; a header line is optional.",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                        "required": ["file"],
                    }
                },
            },
        }
    },
)
async def import_entries(
    request: Request,
    hub: HubDep,
    user: Head,
    replace: Annotated[
        bool, Query(description="Also remove the entries the file does not hold.")
    ] = False,
) -> dict[str, int]:
    """Add and change entries from a CSV file, all or nothing: a bad line is named (422)
    and nothing is imported. Audited; what uses a changed word is rendered again."""
    data = await _csv_body(request)
    book = for_hub(hub)
    return await run_in_threadpool(
        lambda: book.import_csv(data, actor=user.username, replace=replace)
    )


async def _csv_body(request: Request) -> bytes:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        # A broken multipart body: Starlette answers 400 itself.
        form = await request.form(max_files=1, max_fields=4)
        try:
            file = form.get("file")
            if not isinstance(file, UploadFile):
                raise HTTPException(422, "file: attach the CSV file as the form's file field")
            data = await file.read(MAX_CSV_BYTES + 1)
        finally:
            await form.close()
        if len(data) > MAX_CSV_BYTES:
            raise HTTPException(413, f"the file is larger than {MAX_CSV_BYTES // 1024} KB")
        return data
    if kind and kind not in _RAW:
        raise HTTPException(415, "send the CSV file itself (text/csv) or a form with it")
    return await read_body(request, MAX_CSV_BYTES)


@router.post(
    "/api/lexicon/listen",
    response_class=FileResponse,
    responses={200: AUDIO, **documented(400, 401, 403, 413, 422)},
)
def listen(hub: HubDep, user: Reader, body: ListenIn) -> FileResponse:
    """A text (or a word alone) as the loudspeakers would say it with the lexicon, said
    once; with ``word`` and ``say``, as if that entry were saved (to hear it first)."""
    r = for_hub(hub).listen(body.text, word=body.word, say=body.say, voice=body.voice)
    return FileResponse(r.web_path, media_type=AUDIO_TYPES.get(r.web_path.suffix, "audio/ogg"))


# Each entry route twice: the documented one, and one whose word may hold a slash ("đ/c",
# sent as it is), which the schema cannot describe (OpenAPI path parameters hold no "/").
@router.get(
    "/api/lexicon/{word}",
    response_model=None,
    responses={200: json_of(EntryOut), **documented(401, 403, 404, 422)},
)
@router.get("/api/lexicon/{word:path}", response_model=None, include_in_schema=False)
def get_entry(hub: HubDep, user: Reader, word: Word) -> dict[str, Any]:
    """One entry, by its word in any case."""
    found = for_hub(hub).get(word)
    if found is None:
        raise HTTPException(404, f"no entry {word[:40]!r} in the lexicon")
    return found


@router.put(
    "/api/lexicon/{word}",
    response_model=None,
    responses={
        200: json_of(EntryOut, "Changed"),
        201: json_of(EntryOut, "Added"),
        **documented(400, 401, 403, 413, 422),
    },
)
@router.put("/api/lexicon/{word:path}", response_model=None, include_in_schema=False)
def put_entry(hub: HubDep, user: Head, word: Word, body: EntryIn, response: Response) -> Any:
    """Add an entry or change how a word is said; audited. The coming announcements that
    use the word are rendered again (a moment later), and so are the rules' emergencies."""
    entry, created = for_hub(hub).put(word, body.say, body.note, actor=user.username)
    response.status_code = 201 if created else 200
    return entry


@router.delete("/api/lexicon/{word}", status_code=204, responses=documented(401, 403, 404, 422))
@router.delete("/api/lexicon/{word:path}", status_code=204, include_in_schema=False)
def delete_entry(hub: HubDep, user: Head, word: Word) -> Response:
    """Remove an entry (the word is read by the built-in rules again); audited."""
    for_hub(hub).delete(word, actor=user.username)
    return Response(status_code=204)
