"""Render, step 0: the village's own words (a hamlet, a family, a local abbreviation) said
the way the village says them, before the built-in normaliser rules read the rest.

Pure: the hub keeps the entries (``hub/store/lexicon.py``) and hands them here, where they
become one matcher (:func:`compile_lexicon`, cached). The renderer applies it to an
announcement's text before ``normalize_vi.normalize``, so the render cache key follows
the lexicon: an edited entry is a new render.

How a word matches:
- whole words only: an entry whose first (last) character is a letter or digit needs a
  non-letter before (after) it; Vietnamese letters are letters (``\\w`` on NFC text), so
  "Đông" is not found inside "Đôngg" nor "XĐông";
- any case ("tyt", "TYT"), and the look-alike "Ð" (U+00D0, Icelandic eth, which some
  keyboards type) as "Đ" (U+0110);
- an entry may hold spaces and dots ("Tr.", "X. Đông", "đ/c"); a space in an entry matches
  any run of spaces;
- the longest entry first ("X. Đông" before "Đông"), the leftmost match wins;
- once: what an entry says is never looked at again (no substitution of a substitution).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["EMPTY", "Lexicon", "canonical", "compile_lexicon", "spelled"]

#: Characters folded before matching, one for one (positions stay the same).
_FOLD = str.maketrans({"\u00d0": "\u0110", "\u00f0": "\u0111"})
_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"\w")


def spelled(word: str) -> str:
    """An entry's word as it is kept: NFC, look-alikes folded, spaces collapsed."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", word).translate(_FOLD)).strip()


def canonical(word: str) -> str:
    """The key two spellings of one entry share: :func:`spelled`, case folded."""
    return spelled(word).casefold()


def _pattern(word: str) -> str:
    parts = [re.escape(p) for p in word.split(" ")]
    body = r"\s+".join(parts)
    before = r"(?<!\w)" if _WORD.match(word[0]) else ""
    after = r"(?!\w)" if _WORD.match(word[-1]) else ""
    return before + body + after


@dataclass(frozen=True)
class Lexicon:
    """Entries ``word -> say`` compiled into one matcher; ``apply`` the text."""

    entries: tuple[tuple[str, str], ...] = ()
    _says: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    _regex: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def _say(self, found: str) -> str:
        key = canonical(found)
        said = self._says.get(key)
        if said is not None:
            return said
        # Case folding and the regex's IGNORECASE may disagree on a rare letter: find the
        # entry the regex matched by matching each.
        for word, say in self.entries:
            if re.fullmatch(_pattern(word), found, re.IGNORECASE):
                return say
        return found

    def apply(self, text: str) -> str:
        """``text`` with every entry said its way; unchanged (as given) when none is used."""
        if self._regex is None:
            return text
        nfc = unicodedata.normalize("NFC", text)
        folded = nfc.translate(_FOLD)
        out: list[str] = []
        last = 0
        for m in self._regex.finditer(folded):
            say = self._say(m.group())
            # "Tr.Đông" with "Tr." -> "trưởng": "trưởng Đông", never "trưởngĐông".
            if _WORD.match(say[-1:]) and _WORD.match(nfc[m.end() : m.end() + 1]):
                say += " "
            if _WORD.match(say[:1]) and m.start() and _WORD.match(nfc[m.start() - 1]):
                say = " " + say
            out += [nfc[last : m.start()], say]
            last = m.end()
        if not out:
            return text
        out.append(nfc[last:])
        return "".join(out)

    def used_in(self, text: str) -> list[str]:
        """The entries' words ``text`` uses, in :func:`canonical` form, in order."""
        if self._regex is None:
            return []
        folded = unicodedata.normalize("NFC", text).translate(_FOLD)
        return [canonical(m.group()) for m in self._regex.finditer(folded)]


#: No entries: every text as it is.
EMPTY = Lexicon()


def compile_lexicon(entries: Iterable[tuple[str, str]]) -> Lexicon:
    """One matcher for ``(word, say)`` pairs (a later spelling of a word wins). Cached: the
    renderer asks for it at every render, and the entries seldom change."""
    kept: dict[str, tuple[str, str]] = {}
    for word, say in entries:
        w = spelled(word)
        if w:
            kept[w.casefold()] = (w, say)
    return _compiled(tuple(sorted(kept.values())))


@functools.lru_cache(maxsize=8)
def _compiled(entries: tuple[tuple[str, str], ...]) -> Lexicon:
    if not entries:
        return EMPTY
    # Longest first: at one position the alternation takes the first that matches.
    ordered = sorted(entries, key=lambda e: (-len(e[0]), e[0]))
    regex = re.compile("|".join(_pattern(w) for w, _ in ordered), re.IGNORECASE)
    return Lexicon(entries, {w.casefold(): s for w, s in entries}, regex)
