"""Numbers in words: the one number reader every other normaliser rule calls.

Northern standard reading: nghìn, linh, mốt (21), tư (24), lăm (15, 25). Vietnamese
writes ``.`` between thousands and ``,`` before decimals; English-formatted numbers
(``1,500,000``, ``2.5 kg``) are recognised by their shape and by the unit after them.
"""

from __future__ import annotations

import re

_DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")


def _below_thousand(n: int, *, full: bool) -> list[str]:
    """0 < n < 1000. ``full``: the group sits inside a larger number (1005 → "không trăm linh")."""
    hundreds, rest = divmod(n, 100)
    tens, units = divmod(rest, 10)
    words: list[str] = []
    if hundreds or full:
        words += [_DIGITS[hundreds], "trăm"]
    if tens == 0:
        if units:
            # "linh" marks the empty tens after a hundred: 105 = một trăm linh năm.
            words += ["linh", _DIGITS[units]] if words else [_DIGITS[units]]
    elif tens == 1:
        words.append("mười")  # never "một mươi"
        if units:
            words.append("lăm" if units == 5 else _DIGITS[units])  # 15 mười lăm, 11 mười một
    else:
        words += [_DIGITS[tens], "mươi"]
        if units == 1:
            words.append("mốt")  # 21 hai mươi mốt
        elif units == 4:
            words.append("tư")  # 24 hai mươi tư
        elif units == 5:
            words.append("lăm")  # 25 hai mươi lăm
        elif units:
            words.append(_DIGITS[units])
    return words


def _below_billion(n: int, *, full: bool) -> list[str]:
    words: list[str] = []
    for scale, name in ((1_000_000, "triệu"), (1_000, "nghìn"), (1, "")):
        group, n = divmod(n, scale)
        if group == 0:
            continue  # an empty group is skipped: 1.000.500 = một triệu năm trăm
        words += _below_thousand(group, full=full or bool(words))
        if name:
            words.append(name)
    return words


def _number_words(n: int) -> list[str]:
    if n >= 1_000_000_000:
        high, low = divmod(n, 1_000_000_000)
        words = [*_number_words(high), "tỷ"]
        if low:
            words += _below_billion(low, full=True)
        return words
    return _below_billion(n, full=False)


def read_number(n: int) -> str:
    """A non-negative integer in words: 1005 → "một nghìn không trăm linh năm"."""
    if n < 0:
        return "âm " + read_number(-n)
    if n == 0:
        return "không"
    return " ".join(_number_words(n))


def read_digits(digits: str) -> str:
    """Digit by digit (phone numbers, codes): "0912" → "không chín một hai"."""
    return " ".join(_DIGITS[int(d)] for d in digits if d.isdigit())


def read_ordinal(n: int) -> str:
    """After "thứ": thứ nhất, thứ hai, thứ tư (never "thứ một", "thứ bốn")."""
    return {1: "nhất", 4: "tư"}.get(n) or read_number(n)


def read_month(m: int) -> str:
    """After "tháng": tháng tư, not tháng bốn."""
    return "tư" if m == 4 else read_number(m)


def read_fraction_digits(frac: str) -> str:
    """Digits after the decimal mark: leading zeros one by one, then a short number."""
    stripped = frac.lstrip("0")
    words = ["không"] * (len(frac) - len(stripped))
    if stripped:
        words.append(read_number(int(stripped)) if len(stripped) <= 3 else read_digits(stripped))
    return " ".join(words)


_DOT_GROUPED = re.compile(r"\d{1,3}(?:\.\d{3})+")
_COMMA_GROUPED = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")  # English: 1,500,000 / 1,234.5

# A written number: Vietnamese dotted thousands with an optional decimal comma; English
# comma thousands (two groups at least, or one group then a decimal point); a plain
# integer with an optional decimal comma; a decimal point followed by one or two digits.
NUM = (
    r"\d{1,3}(?:\.\d{3})+(?:,\d+)?"
    r"|\d{1,3}(?:,\d{3}){2,}(?:\.\d+)?|\d{1,3},\d{3}\.\d+"
    r"|\d+,\d+|\d+\.\d{1,2}(?![\d.])|\d+"
)
NUM_START = r"(?<![\d.,])"


def read_numeral(token: str, *, measure: bool = False) -> str:
    """One written number: 50.000, 1,5, 1.200.000,75, 1,500,000, 3.5, 2026, 007.

    ``measure``: a unit or a quantity word follows, so ``3.5`` is a decimal ("ba phẩy
    năm"); alone it is a section number ("mục 3.5": "ba chấm năm").
    """
    if _COMMA_GROUPED.fullmatch(token) and (token.count(",") > 1 or "." in token):
        whole, _, frac = token.replace(",", "").partition(".")
        spoken = read_number(int(whole))
        return f"{spoken} phẩy {read_fraction_digits(frac)}" if frac else spoken
    if "," in token:
        whole, frac = token.split(",", 1)
        return f"{read_number(int(whole.replace('.', '')))} phẩy {read_fraction_digits(frac)}"
    if _DOT_GROUPED.fullmatch(token):
        return read_number(int(token.replace(".", "")))
    if "." in token:  # an English decimal point (3.5 kg) or a section number (mục 2.1)
        whole, frac = token.split(".", 1)
        mark = "phẩy" if measure else "chấm"
        return f"{read_number(int(whole))} {mark} {read_fraction_digits(frac)}"
    if (len(token) > 1 and token.startswith("0")) or len(token) > 15:
        return read_digits(token)  # a code or an identifier, not a quantity
    return read_number(int(token))


def read_fraction(numerator: int, denominator: int) -> str:
    """1/2 → "một phần hai", 3/4 → "ba phần tư" (the 4 of a fraction is "tư")."""
    below = "tư" if denominator == 4 else read_number(denominator)
    return f"{read_number(numerator)} phần {below}"


# --- roman numerals --------------------------------------------------------------------

ROMAN = r"M{0,3}(?:CM|CD|D?C{0,3})(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3})"
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}


def roman_value(text: str) -> int:
    """The value of a well-formed roman numeral (the caller matched :data:`ROMAN`)."""
    total = 0
    for i, char in enumerate(text):
        value = _ROMAN_VALUES[char]
        following = _ROMAN_VALUES[text[i + 1]] if i + 1 < len(text) else 0
        total += -value if value < following else value
    return total


def pad(text: str, match: re.Match[str]) -> str:
    """Keep a space between words we produce and letters glued to the match (QL1A)."""
    before = match.string[match.start() - 1] if match.start() > 0 else " "
    after = match.string[match.end()] if match.end() < len(match.string) else " "
    left = " " if before.isalpha() else ""
    right = " " if after.isalpha() else ""
    return f"{left}{text}{right}"


def word_before(match: re.Match[str]) -> str:
    """The word just before the match, lower case ("" at the start)."""
    words = re.findall(r"[^\W\d_]+|\S", match.string[: match.start()])
    return words[-1].lower() if words else ""


def word_after(match: re.Match[str]) -> str:
    """The word just after the match, lower case ("" at the end)."""
    found = re.match(r"\s*([^\W\d_]+)", match.string[match.end() :])
    return found.group(1).lower() if found else ""
