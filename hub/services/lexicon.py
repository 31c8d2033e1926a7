"""Lexicon service: the village's own words (a hamlet, a family name, a local abbreviation)
and how the loudspeakers say them, kept by the village head.

The head (and admin) edits it on ``/app/lexicon`` and through ``/api/lexicon``, one entry
at a time or as a CSV file (``word,say,note``); technicians read it. Every change is checked
(lengths, no control characters, a word with a letter in it, at most :data:`MAX_ENTRIES`),
audited, and then handed to ``changed``: the coming announcements whose text uses a changed
word are rendered again, and so are the emergency texts the rules pre-render
(:meth:`hub.broadcast.render_upkeep.RenderUpkeep.words_changed`). The renderer reads the
entries at every render (:func:`lexicon_source`) and applies them before the normaliser.

A refusal names its field and a reason key (the page says it in words: ``lex.err.<reason>``);
a refused CSV names its line, and nothing of it is imported.
"""

from __future__ import annotations

import csv
import io
import sqlite3
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from audio.lexicon import Lexicon, canonical, compile_lexicon, spelled
from hub.clock import Clock
from hub.errors import Invalid, NotFound, TooLarge
from hub.store import Store
from hub.store import lexicon as repo

if TYPE_CHECKING:
    from audio.cache import Rendered

#: Entries kept at most (a village has a few dozen to a few hundred).
MAX_ENTRIES = 2000
MAX_WORD = 40
MAX_SAY = 200
MAX_NOTE = 200
#: A CSV of 2,000 full entries stays under this; FormLimit caps API bodies at 256 KiB.
MAX_CSV_BYTES = 200 * 1024
#: What the listen button may read: a sentence or two.
MAX_LISTEN = 2000
#: Headers a CSV may start with (the export's, and the page's Vietnamese column names).
_HEADERS = ({"word", "say"}, {"từ", "cách đọc"})
#: Words named in an import's audit row (the counts are always there).
_AUDIT_WORDS = 50


class EntryIn(BaseModel):
    """How to say a word (the word is in the address)."""

    model_config = ConfigDict(extra="forbid")

    say: str = Field(
        min_length=1,
        max_length=MAX_SAY,
        description="How the loudspeakers say the word, in plain Vietnamese words.",
    )
    note: str | None = Field(
        None, max_length=MAX_NOTE, description="Why, or who asked (for the village head)."
    )


class ListenIn(BaseModel):
    """A text to hear as the loudspeakers would say it, optionally with an entry not saved
    yet (``word`` said as ``say``)."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(
        None, min_length=1, max_length=MAX_LISTEN, description="Without it: the word alone."
    )
    word: str | None = Field(None, min_length=1, max_length=MAX_WORD * 2)
    say: str | None = Field(None, min_length=1, max_length=MAX_SAY)
    voice: str | None = Field(None, max_length=40)


class LexiconRefused(Invalid):
    """A field is wrong (422): ``field`` and a ``reason`` key for the page's words; ``line``
    of a CSV file."""

    def __init__(self, field: str, reason: str, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.field, self.reason, self.line = field, reason, line


class LexiconTooLarge(TooLarge):
    """Over a limit (413): a ``reason`` key for the page's words."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Entry:
    word: str
    say: str
    note: str | None


def _has_control(text: str) -> bool:
    return any(unicodedata.category(c).startswith("C") for c in text)


def check_entry(word: str, say: str, note: str | None = None, *, line: int | None = None) -> Entry:
    """An entry as it is kept (NFC, spaces collapsed), or :class:`LexiconRefused`."""
    w = spelled(word)
    if _has_control(word.replace("\t", " ").replace("\n", " ").replace("\r", " ")):
        raise LexiconRefused("word", "control", "word: holds a control character", line)
    if not w:
        raise LexiconRefused("word", "word_empty", "word: write the word or abbreviation", line)
    if len(w) > MAX_WORD:
        raise LexiconRefused(
            "word", "word_long", f"word: {MAX_WORD} characters at most ({len(w)} given)", line
        )
    if not any(c.isalnum() for c in w):
        raise LexiconRefused("word", "no_letter", "word: needs a letter or a digit", line)
    s = spelled(say)
    if _has_control(say.replace("\t", " ").replace("\n", " ").replace("\r", " ")):
        raise LexiconRefused("say", "control", "say: holds a control character", line)
    if not s:
        raise LexiconRefused("say", "say_empty", "say: write how to say the word", line)
    if len(s) > MAX_SAY:
        raise LexiconRefused(
            "say", "say_long", f"say: {MAX_SAY} characters at most ({len(s)} given)", line
        )
    n = " ".join((note or "").split()) or None
    if n is not None and (_has_control(n) or len(n) > MAX_NOTE):
        raise LexiconRefused("note", "note_bad", f"note: {MAX_NOTE} plain characters at most", line)
    return Entry(w, s, n)


def _find(conn: sqlite3.Connection, word: str) -> sqlite3.Row | None:
    """The row of ``word`` in any case or spelling of spaces (SQLite's NOCASE is ASCII's)."""
    key = canonical(word)
    return next((r for r in repo.rows(conn) if canonical(r["word"]) == key), None)


def lexicon_source(store: Store) -> Callable[[], Lexicon]:
    """What the renderer reads at every render: the entries, compiled (cached while they
    stay the same). Runs in the renderer's caller, through that thread's connection."""
    return lambda: compile_lexicon(repo.pairs(store.connection()))


class LexiconBook:
    """The ``lexicon`` table for the pages and the API (worker threads). ``changed`` gets
    the canonical words whose saying changed, after each commit; ``preview`` renders a
    text with a given lexicon (the listen button)."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        changed: Callable[[frozenset[str]], None] | None = None,
        preview: Callable[[str, str | None, Lexicon], Rendered] | None = None,
    ) -> None:
        self.store, self.clock = store, clock
        self._changed = changed or (lambda words: None)
        self._preview = preview

    # -- reads --------------------------------------------------------------------------------
    def entries(self, q: str | None = None, limit: int = MAX_ENTRIES) -> list[dict[str, Any]]:
        """By word (in any case); ``q`` keeps those whose word, saying or note holds it."""
        rows = sorted(repo.rows(self.store.connection()), key=lambda r: canonical(r["word"]))
        wanted = spelled(q or "").casefold()
        found = [
            repo.entry_json(r)
            for r in rows
            if not wanted or any(wanted in (r[k] or "").casefold() for k in ("word", "say", "note"))
        ]
        return found[:limit]

    def count(self) -> int:
        return repo.count(self.store.connection())

    def get(self, word: str) -> dict[str, Any] | None:
        row = _find(self.store.connection(), word)
        return repo.entry_json(row) if row is not None else None

    # -- writes -------------------------------------------------------------------------------
    def put(
        self, word: str, say: str, note: str | None, *, actor: str
    ) -> tuple[dict[str, Any], bool]:
        """Add or change an entry (a new spelling of a word replaces the old one); audited.
        Returns the entry and whether it is new."""
        e = check_entry(word, say, note)
        now = self.clock.now().timestamp()
        with self.store.transaction() as conn:
            old = _find(conn, e.word)
            if old is not None and (old["word"], old["say"], old["note"]) == (
                e.word,
                e.say,
                e.note,
            ):
                return repo.entry_json(old), False  # nothing changes: nothing to write
            if old is None and repo.count(conn) >= MAX_ENTRIES:
                raise LexiconTooLarge("full", f"the lexicon holds {MAX_ENTRIES} entries at most")
            if old is not None and old["word"] != e.word:
                repo.delete(conn, old["word"])
            repo.put(conn, word=e.word, say=e.say, note=e.note, by=actor, at=now)
            self.store.audit(
                conn,
                ts=now,
                actor=actor,
                action="lexicon.put",
                target=e.word,
                detail={"say": e.say, "note": e.note, "was": old["say"] if old else None},
            )
            row = _find(conn, e.word)
        assert row is not None  # written just above, in this transaction
        if old is None or old["say"] != e.say:
            self._changed(frozenset({canonical(e.word)}))
        return repo.entry_json(row), old is None

    def delete(self, word: str, *, actor: str) -> None:
        now = self.clock.now().timestamp()
        with self.store.transaction() as conn:
            old = _find(conn, word)
            if old is None:
                raise NotFound(f"no entry {spelled(word)[:MAX_WORD]!r} in the lexicon")
            repo.delete(conn, old["word"])
            self.store.audit(
                conn,
                ts=now,
                actor=actor,
                action="lexicon.delete",
                target=old["word"],
                detail={"say": old["say"], "note": old["note"]},
            )
        self._changed(frozenset({canonical(old["word"])}))

    # -- CSV ----------------------------------------------------------------------------------
    def export_csv(self) -> bytes:
        """``word,say,note`` with a BOM: a spreadsheet opens the Vietnamese letters right."""
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\r\n")
        w.writerow(["word", "say", "note"])
        for e in self.entries():
            w.writerow([e["word"], e["say"], e["note"] or ""])
        return ("\ufeff" + out.getvalue()).encode("utf-8")

    def import_csv(self, data: bytes, *, actor: str, replace: bool = False) -> dict[str, int]:
        """Add and change the file's entries (``replace``: and remove the others), all or
        nothing; audited as one import. Returns how many were added, changed, removed and
        left as they were."""
        entries = parse_csv(data)
        now = self.clock.now().timestamp()
        result = {"added": 0, "changed": 0, "removed": 0, "unchanged": 0}
        touched: set[str] = set()
        with self.store.transaction() as conn:
            existing = {canonical(r["word"]): r for r in repo.rows(conn)}
            for e in entries:
                key = canonical(e.word)
                old = existing.pop(key, None)
                if old is not None and (old["word"], old["say"], old["note"]) == (
                    e.word,
                    e.say,
                    e.note,
                ):
                    result["unchanged"] += 1
                    continue
                if old is not None and old["word"] != e.word:
                    repo.delete(conn, old["word"])
                repo.put(conn, word=e.word, say=e.say, note=e.note, by=actor, at=now)
                result["changed" if old is not None else "added"] += 1
                if old is None or old["say"] != e.say:
                    touched.add(key)
            if replace:
                for key, old in existing.items():
                    repo.delete(conn, old["word"])
                    result["removed"] += 1
                    touched.add(key)
            total = repo.count(conn)
            if total > MAX_ENTRIES:
                raise LexiconTooLarge(
                    "full",
                    f"the lexicon would hold {total} entries, {MAX_ENTRIES} at most: "
                    "import with replace, or delete some first",
                )
            self.store.audit(
                conn,
                ts=now,
                actor=actor,
                action="lexicon.import",
                detail={
                    **result,
                    "replace": replace,
                    "rows": len(entries),
                    "words": sorted(touched)[:_AUDIT_WORDS],
                },
            )
        if touched:
            self._changed(frozenset(touched))
        return result

    # -- listening ----------------------------------------------------------------------------
    def with_entry(self, word: str | None, say: str | None) -> Lexicon:
        """The lexicon as it is, with ``word`` said as ``say`` (an entry being typed)."""
        pairs: list[tuple[str, str]] = repo.pairs(self.store.connection())
        if word and say:
            e = check_entry(word, say)
            pairs = [p for p in pairs if canonical(p[0]) != canonical(e.word)] + [(e.word, e.say)]
        return compile_lexicon(pairs)

    def listen(
        self,
        text: str | None,
        *,
        word: str | None = None,
        say: str | None = None,
        voice: str | None = None,
    ) -> Rendered:
        """``text`` (else the word alone) as the loudspeakers would say it, once."""
        said = (text or "").strip() or (word or "").strip()
        if not said:
            raise LexiconRefused("text", "listen_empty", "text: write something to listen to")
        if len(said) > MAX_LISTEN:
            raise LexiconRefused("text", "listen_long", f"text: {MAX_LISTEN} characters at most")
        if self._preview is None:
            raise RuntimeError("this lexicon service was built without the renderer")
        return self._preview(said, voice, self.with_entry(word, say))


def parse_csv(data: bytes) -> list[Entry]:
    """A CSV file's entries (UTF-8, with or without a BOM; ``word,say[,note]``; a header
    row is optional), or the first problem with its line number. Nothing is half-read."""
    if len(data) > MAX_CSV_BYTES:
        raise LexiconTooLarge(
            "file_large", f"the file is larger than {MAX_CSV_BYTES // 1024} KB: split it"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise LexiconRefused(
            "file", "not_utf8", "not UTF-8 text: save the file as CSV UTF-8", line
        ) from None
    entries: list[Entry] = []
    seen: dict[str, int] = {}
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    first = True
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if first and {c.strip().casefold() for c in row[:2]} in _HEADERS:
                first = False
                continue
            first = False
            if len(row) < 2 or len(row) > 3:
                raise LexiconRefused(
                    "file",
                    "columns",
                    f"{len(row)} columns: write word,say or word,say,note",
                    line,
                )
            entry = check_entry(row[0], row[1], row[2] if len(row) == 3 else None, line=line)
            key = canonical(entry.word)
            if key in seen:
                raise LexiconRefused(
                    "file", "twice", f"{entry.word!r} is on line {seen[key]} already", line
                )
            seen[key] = line
            entries.append(entry)
            if len(entries) > MAX_ENTRIES:
                raise LexiconTooLarge(
                    "rows", f"line {line}: the file holds more than {MAX_ENTRIES} entries"
                )
    except csv.Error as e:
        raise LexiconRefused("file", "csv", f"not CSV ({e})", reader.line_num) from None
    if not entries:
        raise LexiconRefused("file", "no_rows", "the file holds no entry (word,say,note)")
    return entries
