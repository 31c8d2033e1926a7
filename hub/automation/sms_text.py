"""SMS text: the words of a notification shaped into what a phone network carries.

Pure functions, any thread; used by the SMS gateway (``hub/automation/sms.py``). Two forms:
Unicode (UCS-2: Vietnamese as written, 70 characters in one SMS, 67 per part of a long
one) and unaccented GSM-7 (diacritics taken off, đ -> d, 160 characters per SMS).
"""

from __future__ import annotations

import math
import unicodedata

#: One SMS in UCS-2; a part of a concatenated one (the 6-byte header takes 3 characters).
UCS2_SINGLE = 70
UCS2_PART = 67
#: One SMS in the GSM 03.38 default alphabet.
GSM7_SINGLE = 160

# GSM 03.38 basic character set: these cost one septet each. The extension table
# (^ { } \\ [ ] ~ | €) costs two and old phones show it badly, so it is mapped away.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_ASCII_FOR = {
    "đ": "d",
    "Đ": "D",
    "–": "-",
    "—": "-",
    "‘": "'",
    "’": "'",
    "“": '"',
    "”": '"',
    "…": "...",
    "·": "-",
    "•": "-",
    "[": "(",
    "]": ")",
    "{": "(",
    "}": ")",
    "~": "-",
    "|": "/",
    "\\": "/",
    "^": "",
    "€": "EUR",
    "\t": " ",
}


def unaccented(text: str) -> str:
    """Vietnamese without its marks, in the GSM-7 basic set: "Đường lũ" -> "Duong lu".
    What has no GSM-7 form becomes "?"."""
    out: list[str] = []
    for ch in text:
        if ch in _ASCII_FOR:
            out.append(_ASCII_FOR[ch])
            continue
        base = "".join(
            c for c in unicodedata.normalize("NFD", ch) if unicodedata.category(c) != "Mn"
        )
        for c in base:
            out.append(c if c in GSM7_BASIC else _ASCII_FOR.get(c, "?"))
    return " ".join("".join(out).split())  # one line: new lines cost as much as letters


def ucs2_length(text: str) -> int:
    """Characters as UCS-2 counts them (one outside the BMP takes two)."""
    return len(text.encode("utf-16-le")) // 2


def unicode_parts(text: str) -> int:
    n = ucs2_length(text)
    return 1 if n <= UCS2_SINGLE else math.ceil(n / UCS2_PART)


def fit_unicode(text: str, max_parts: int) -> str:
    """``text`` cut (with …) to what ``max_parts`` parts hold."""
    room = UCS2_SINGLE if max_parts == 1 else UCS2_PART * max_parts
    if ucs2_length(text) <= room:
        return text
    cut = text
    while ucs2_length(cut) > room - 1:
        cut = cut[:-1]
    return cut.rstrip() + "…"


def gsm7_chunks(text: str, max_parts: int, size: int = GSM7_SINGLE) -> list[str]:
    """``text`` (already unaccented) in messages of at most ``size`` characters, broken
    between words; past ``max_parts`` the last one ends with "..."."""
    words = text.split()
    chunks: list[str] = []
    current = ""
    for word in words:
        while len(word) > size:  # a "word" longer than a message (a URL): split it
            if current:
                chunks.append(current)
                current = ""
            chunks.append(word[:size])
            word = word[size:]
        candidate = f"{current} {word}" if current else word
        if len(candidate) <= size:
            current = candidate
        else:
            chunks.append(current)
            current = word
    if current:
        chunks.append(current)
    if len(chunks) > max_parts:
        last = chunks[max_parts - 1]
        chunks = [*chunks[: max_parts - 1], last[: size - 3].rstrip() + "..."]
    return chunks or [""]
