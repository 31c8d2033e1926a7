"""Phone numbers, e-mail and web addresses: what a listener must be able to write down.

Phone numbers are read digit by digit in their usual groupings (0912 345 678,
0912.345.678, +84 912 345 678); short numbers and hotlines after "gọi", "hotline"...
E-mail and web addresses are spelled out the way a commune official reads them on the
loudspeaker: "chấm" for ``.``, "a còng" for ``@``, letters by their Vietnamese names
when a part is not a word one can say (``vn`` "vê en"), known words as they are said.
"""

from __future__ import annotations

import re

from audio.normalize.numbers import read_digits

# --- phone numbers ---------------------------------------------------------------------

# 0 or +84 followed by groups of digits separated by one space, dot or hyphen. The
# number of digits decides (10 or 11 with the leading 0; 9 or 10 after +84).
PHONE = re.compile(r"(?<![\w+.,])(\(\+84\)|\+84|0)([ .-]?\d{1,4}(?:[ .-]?\d{2,4}){0,4})(?!\d)")
# Short numbers and hotlines are read digit by digit after these words: "gọi 113".
PHONE_CONTEXT = re.compile(
    r"(?i)(?<!\w)(gọi(?: ngay| đến| tới)?(?: số)?|hotline|đường dây nóng|tổng đài"
    r"|(?:số )?điện thoại|SĐT|ĐT|(?:số )?tài khoản|STK)(:?[ \t]*)(\d(?:[ .-]?\d){2,})(?![\w,]|\.\d)"
)
# Hotlines 1800/1900 (free and paid numbers) in their groupings: "1900 9095", "1800.1091".
HOTLINE = re.compile(r"(?<![\w.,])(1[89]00(?:[ .]?\d{3,4}){1,2})(?![\w]|[.,]\d)")
# The emergency numbers 111 to 115 standing alone (not "115 hộ"): "gọi ngay 114,", ": 114;".
EMERGENCY = re.compile(r"(?<![\w.,])(11[1-5])(?=[ \t]*(?:[,;.)!]|$|hoặc|và))")


def digits(match: re.Match[str]) -> str:
    return read_digits(match.group(1))


def phone(match: re.Match[str]) -> str:
    prefix, body = match.group(1), match.group(2)
    groups = re.findall(r"[ .-]?\d+", body)
    wanted = (9, 10)  # after the 0 or the +84: 9 for a mobile, 10 for a landline
    count, used = 0, 0
    for i, group in enumerate(groups):
        count += sum(c.isdigit() for c in group)
        if count in wanted:
            used = i + 1
        if count >= max(wanted):
            break
    if not used:
        return match.group(0)
    digits = "".join(groups[:used])
    rest = "".join(groups[used:])
    spoken = ("cộng tám bốn " if "84" in prefix else "không ") + read_digits(digits)
    return spoken + rest


def phone_context(match: re.Match[str]) -> str:
    word = match.group(1)
    if word.upper() == "ĐT" and not match.group(3).startswith("0"):
        return match.group(0)  # "ĐT 391" is a provincial road (markers.py), not a phone
    if word.upper() == "ĐT":
        word = "điện thoại"  # "ĐT: 0912..." (a road "ĐT 391" has no leading 0)
    elif word.upper() == "SĐT":
        word = "số điện thoại"
    elif word.upper() == "STK":
        word = "số tài khoản"
    return f"{word}{match.group(2) or ' '}{read_digits(match.group(3))}"


# --- e-mail and web addresses ----------------------------------------------------------

# Vietnamese names of the Latin letters, as read when spelling on the loudspeaker.
_LETTERS = {
    "a": "a", "b": "bê", "c": "xê", "d": "đê", "đ": "đê", "e": "e", "f": "ép", "g": "giê",
    "h": "hát", "i": "i", "j": "gi", "k": "ca", "l": "lờ", "m": "em", "n": "en", "o": "o",
    "p": "pê", "q": "quy", "r": "rờ", "s": "ét", "t": "tê", "u": "u", "v": "vê",
    "w": "vê kép", "x": "ích", "y": "i", "z": "dét",
}  # fmt: skip
# Parts said as a word rather than spelled.
_KNOWN_PARTS = {
    "gmail": "gờ meo",
    "yahoo": "da hu",
    "hotmail": "hót meo",
    "outlook": "ao lúc",
    "com": "com",
    "gov": "gờ o vê",
    "org": "o rờ giê",
    "edu": "e đê u",
    "info": "in phô",
    "net": "nét",
    "www": "vê kép vê kép vê kép",
    "zalo": "da lô",
    "facebook": "phây búc",
}
_SEPARATORS = {
    ".": "chấm",
    "@": "a còng",
    "-": "gạch ngang",
    "_": "gạch dưới",
    "/": "gạch chéo",
    ":": "hai chấm",
}

_TLD = r"(?:vn|com|net|org|gov|edu|info)"
# The trailing dot of a sentence is not part of an address.
EMAIL = re.compile(r"(?<![\w.@])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}(?<!\.)")
WEB = re.compile(
    r"(?i)(?<![\w.@/])(?:https?://)?(?:www\.[\w.-]+|[\w-]+(?:\.[\w-]+)*\." + _TLD + r")"
    r"(?:/[\w./%-]*)?(?<![./])(?![\w@])"
)


# A Vietnamese syllable written without its tone marks: onset, vowels, final consonant.
_ONSET = r"(?:ngh|ng|nh|ch|gh|gi|kh|ph|qu|th|tr|[bcdđghklmnpqrstvx])?"
_NUCLEUS = r"[aeiouyăâêôơư]+"
_FINALS = ("", "c", "m", "n", "p", "t", "ch", "ng", "nh")


def _syllables(word: str) -> list[str] | None:
    """ "xadongphong" → ["xa", "dong", "phong"]; None when the word is not all syllables.

    A consonant between two vowels starts the next syllable when it can ("moitruong": moi
    truong, not moit ruong), so the shortest final is tried first, then longer ones
    (bounded: the caller passes words of at most 30 letters).
    """
    if not word:
        return []
    head = re.match(_ONSET + _NUCLEUS, word)
    if not head:
        return None
    for final in _FINALS:
        end = head.end() + len(final)
        if word[head.end() : end] != final:
            continue
        rest = _syllables(word[end:])
        if rest is not None:
            return [word[:end], *rest]
    return None


def _spell_part(part: str) -> str:
    lower = part.lower()
    if lower in _KNOWN_PARTS:
        return _KNOWN_PARTS[lower]
    if part.isdigit():
        return read_digits(part)
    syllables = _syllables(lower) if len(lower) <= 30 else None
    if syllables:
        return " ".join(syllables)  # a name the engine can say: "xa dong phong"
    # Not syllables: letters one by one ("vn" vê en, "ubnd" u bê en đê).
    return " ".join(
        read_digits(c) if c.isdigit() else _LETTERS.get(c, c) for c in lower if c.isalnum()
    )


def spell_address(match: re.Match[str]) -> str:
    # "https://" is not read aloud: the listener types the address without it.
    address = re.sub(r"(?i)^https?://", "", match.group(0))
    pieces = re.findall(r"[^\W_]+|[.@\-_/:]", address)
    spoken = [_SEPARATORS[p] if p in _SEPARATORS else _spell_part(p) for p in pieces]
    return " ".join(s for s in spoken if s)
