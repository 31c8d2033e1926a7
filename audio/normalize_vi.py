"""Vietnamese text normaliser: the first step from an announcement's text to speech.

A speech engine reads ``19h30`` or ``50.000đ`` badly; a village listener expects
"mười chín giờ ba mươi phút" and "năm mươi nghìn đồng". ``normalize`` rewrites times,
dates, numbers (Vietnamese grouping: ``.`` thousands, ``,`` decimal), money, units,
phone numbers and the abbreviations of local government into words, and leaves every
other word as it is. Its output holds no digit nor known abbreviation, so it is
idempotent. The rules follow northern standard reading (nghìn, linh); the southern
engines (espeak ``vi-vn-x-south``) read these words just as well.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

__all__ = ["normalize", "read_digits", "read_number"]

_DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")

# Not preceded / followed by a letter (digits allowed: "QL1A", "UBND2" stay readable).
_NO_LETTER_BEFORE = r"(?<![^\W\d_])"
_NO_LETTER_AFTER = r"(?![^\W\d_])"


# --- numbers ---------------------------------------------------------------------------


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


def _read_fraction(frac: str) -> str:
    """Digits after the decimal mark: leading zeros one by one, then a short number."""
    stripped = frac.lstrip("0")
    words = ["không"] * (len(frac) - len(stripped))
    if stripped:
        words.append(read_number(int(stripped)) if len(stripped) <= 3 else read_digits(stripped))
    return " ".join(words)


_GROUPED = re.compile(r"\d{1,3}(?:\.\d{3})+")


def _read_numeral(token: str) -> str:
    """One written number: 50.000, 1,5, 1.200.000,75, 3.5, 2026, 007."""
    if "," in token:
        whole, frac = token.split(",", 1)
        return f"{read_number(int(whole.replace('.', '')))} phẩy {_read_fraction(frac)}"
    if _GROUPED.fullmatch(token):
        return read_number(int(token.replace(".", "")))
    if "." in token:  # an English decimal point (3.5) or a section number (2.1)
        whole, frac = token.split(".", 1)
        return f"{read_number(int(whole))} chấm {_read_fraction(frac)}"
    if (len(token) > 1 and token.startswith("0")) or len(token) > 15:
        return read_digits(token)  # a code or an identifier, not a quantity
    return read_number(int(token))


# A written number: dotted thousands with an optional decimal comma, a plain integer with
# an optional decimal comma, or an English decimal point followed by one or two digits.
_NUM = r"\d{1,3}(?:\.\d{3})+(?:,\d+)?|\d+,\d+|\d+\.\d{1,2}(?![\d.])|\d+"
_NUM_START = r"(?<![\d.,])"


def _pad(text: str, match: re.Match[str]) -> str:
    """Keep a space between words we produce and letters glued to the number (QL1A)."""
    before = match.string[match.start() - 1] if match.start() > 0 else " "
    after = match.string[match.end()] if match.end() < len(match.string) else " "
    left = " " if before.isalpha() else ""
    right = " " if after.isalpha() else ""
    return f"{left}{text}{right}"


# --- phone numbers ---------------------------------------------------------------------

# 0 or +84 followed by groups of digits separated by one space, dot or hyphen. The
# number of digits decides (10 or 11 with the leading 0; 9 or 10 after +84).
_PHONE = re.compile(r"(?<![\w+.,])(\(\+84\)|\+84|0)([ .-]?\d{1,4}(?:[ .-]?\d{2,4}){0,4})(?!\d)")
# Short numbers and hotlines are read digit by digit after these words: "gọi 113".
_PHONE_CONTEXT = re.compile(
    r"(?i)(?<!\w)(gọi(?: ngay| đến| tới)?(?: số)?|hotline|đường dây nóng|tổng đài"
    r"|(?:số )?điện thoại|SĐT)(:?[ \t]*)(\d(?:[ .-]?\d){2,})(?![\w,]|\.\d)"
)


def _phone(match: re.Match[str]) -> str:
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


def _phone_context(match: re.Match[str]) -> str:
    return f"{match.group(1)}{match.group(2) or ' '}{read_digits(match.group(3))}"


# --- abbreviations ---------------------------------------------------------------------

# Whole word and case-sensitive: "CA" is the police, "Ca" and "ca" are other words.
_ABBREVIATIONS = {
    "UBND": "Ủy ban nhân dân",
    "HĐND": "Hội đồng nhân dân",
    "UBMTTQ": "Ủy ban Mặt trận Tổ quốc",
    "MTTQ": "Mặt trận Tổ quốc",
    "NTM": "nông thôn mới",
    "HTX": "hợp tác xã",
    "THCS": "trung học cơ sở",
    "THPT": "trung học phổ thông",
    "BHYT": "bảo hiểm y tế",
    "BHXH": "bảo hiểm xã hội",
    "CA": "công an",
    "CSGT": "cảnh sát giao thông",
    "PCCC": "phòng cháy chữa cháy",
    "PCTT": "phòng chống thiên tai",
    "TKCN": "tìm kiếm cứu nạn",
    "ATTP": "an toàn thực phẩm",
    "ATGT": "an toàn giao thông",
    "GPMB": "giải phóng mặt bằng",
    "CNTT": "công nghệ thông tin",
    "KT-XH": "kinh tế - xã hội",
    "CLB": "câu lạc bộ",
    "TDTT": "thể dục thể thao",
    "KHHGĐ": "kế hoạch hóa gia đình",
    "GĐVH": "gia đình văn hóa",
    "HLHPN": "Hội Liên hiệp Phụ nữ",
    "HPN": "Hội Phụ nữ",
    "HND": "Hội Nông dân",
    "ĐTN": "Đoàn Thanh niên",
    "CCB": "Cựu chiến binh",
    "TP.HCM": "Thành phố Hồ Chí Minh",
    "TPHCM": "Thành phố Hồ Chí Minh",
    "TP": "thành phố",
    "QL": "quốc lộ",
    "SĐT": "số điện thoại",
    "COVID": "cô-vít",
}
_ABBREVIATION = re.compile(
    _NO_LETTER_BEFORE
    + "("
    + "|".join(re.escape(k) for k in sorted(_ABBREVIATIONS, key=len, reverse=True))
    + ")"
    + _NO_LETTER_AFTER
)


# --- dates -----------------------------------------------------------------------------

_DATE_START = r"(?<![\w/.,:-])"
_DATE_END = r"(?![\w/]|[.,-]\d)"
_DMY = re.compile(_DATE_START + r"(\d{1,2})([/.-])(\d{1,2})\2(\d{4})" + _DATE_END)
_MY = re.compile(_DATE_START + r"(\d{1,2})/(\d{4})" + _DATE_END)
_DM = re.compile(_DATE_START + r"(\d{1,2})/(\d{1,2})" + _DATE_END)
# Before these words "5/12" is an address (số nhà 5/12), read "năm trên mười hai".
_ADDRESS_WORDS = {"số", "nhà", "hẻm", "ngõ", "ngách", "kiệt", "phòng", "lô", "tổ", "xóm"}


def _month(m: int) -> str:
    return "tư" if m == 4 else read_number(m)  # tháng tư, not tháng bốn


def _word_before(match: re.Match[str]) -> str:
    words = match.string[: match.start()].split()
    return words[-1].lower() if words else ""


def _day_prefix(match: re.Match[str]) -> str:
    return "" if _word_before(match) in {"ngày", "mùng", "mồng"} else "ngày "


def _dmy(match: re.Match[str]) -> str:
    d, m, y = int(match.group(1)), int(match.group(3)), int(match.group(4))
    if not (1 <= d <= 31 and 1 <= m <= 12):
        return match.group(0)
    return f"{_day_prefix(match)}{read_number(d)} tháng {_month(m)} năm {read_number(y)}"


def _my(match: re.Match[str]) -> str:
    m, y = int(match.group(1)), int(match.group(2))
    if not 1 <= m <= 12:
        return match.group(0)
    prefix = "" if _word_before(match) == "tháng" else "tháng "
    return f"{prefix}{_month(m)} năm {read_number(y)}"


def _dm(match: re.Match[str]) -> str:
    d, m = int(match.group(1)), int(match.group(2))
    if _word_before(match) in _ADDRESS_WORDS or not (1 <= d <= 31 and 1 <= m <= 12):
        return f"{read_number(d)} trên {read_number(m)}"
    return f"{_day_prefix(match)}{read_number(d)} tháng {_month(m)}"


# --- times -----------------------------------------------------------------------------

_TIME = (
    r"\d{1,2}[hHgG]\d{2}(?:p|ph|')?"  # 19h30, 7g30, 19h30p
    r"|\d{1,2}:\d{2}(?::\d{2})?"  # 7:05, 07:05:30
    r"|\d{1,2}[ \t]?[hH]"  # 19h, 7 h
    r"|\d{1,2}g(?=[ \t]+(?:sáng|trưa|chiều|tối|đêm))"  # 7g sáng (bare g is grams elsewhere)
)
_TIME_END = r"(?![^\W\d_]|[:.,]\d)"
_ONE_TIME = re.compile(r"(?<![\w:.,/])(" + _TIME + ")" + _TIME_END)
_TIME_RANGE = re.compile(
    r"(?<![\w:.,/])(" + _TIME + r")[ \t]*[-–][ \t]*(" + _TIME + ")" + _TIME_END
)


def _time_words(token: str) -> str | None:
    parts = [int(p) for p in re.findall(r"\d+", token)]
    hour, rest = parts[0], parts[1:]
    if ":" in token and (hour > 24 or any(p > 59 for p in rest)):
        return None  # 2:75 is a score or a ratio, not a time
    if rest and rest[0] > 59:
        return None
    words = [read_number(hour), "giờ"]
    for value, unit in zip(rest, ("phút", "giây"), strict=False):
        if value:
            words += [read_number(value), unit]
    if len(rest) == 2 and rest[1] and not rest[0]:
        words[2:2] = ["không", "phút"]
    return " ".join(words)


def _one_time(match: re.Match[str]) -> str:
    spoken = _time_words(match.group(1))
    return match.group(0) if spoken is None else _pad(spoken, match)


def _time_range(match: re.Match[str]) -> str:
    a, b = _time_words(match.group(1)), _time_words(match.group(2))
    if a is None or b is None:
        return match.group(0)
    return _pad(f"{a} đến {b}", match)


# --- ordinals and months in words ------------------------------------------------------

_ORDINAL = re.compile(r"(?<!\w)([Tt]hứ)[ \t]+(\d{1,3})(?!\w|[.,]\d)")
_MONTH_WORD = re.compile(r"(?<!\w)([Tt]háng)[ \t]+(\d{1,2})(?!\w|[.,/]\d)")


def _ordinal(match: re.Match[str]) -> str:
    n = int(match.group(2))
    spoken = {1: "nhất", 4: "tư"}.get(n) or read_number(n)  # thứ nhất, thứ tư
    return f"{match.group(1)} {spoken}"


def _month_word(match: re.Match[str]) -> str:
    n = int(match.group(2))
    return f"{match.group(1)} {_month(n) if 1 <= n <= 12 else read_number(n)}"


# --- units and money -------------------------------------------------------------------

# (written, spoken, may stand after a space). Single letters that are also words or
# other units (g, l, k, tr) only count when glued to the number: 500g, 2l, 50k, 2tr.
_UNITS: tuple[tuple[str, str, bool], ...] = (
    ("km/h", "ki-lô-mét trên giờ", True),
    ("m/s", "mét trên giây", True),
    ("km²", "ki-lô-mét vuông", True),
    ("km2", "ki-lô-mét vuông", True),
    ("m²", "mét vuông", True),
    ("m2", "mét vuông", True),
    ("m³", "mét khối", True),
    ("m3", "mét khối", True),
    ("km", "ki-lô-mét", True),
    ("cm", "xăng-ti-mét", True),
    ("mm", "mi-li-mét", True),
    ("m", "mét", True),
    ("kg", "ki-lô-gam", True),
    ("ha", "héc-ta", True),
    ("ml", "mi-li-lít", True),
    ("kWh", "ki-lô-oát giờ", True),
    ("kW", "ki-lô-oát", True),
    ("°C", "độ C", True),
    ("℃", "độ C", True),
    ("oC", "độ C", False),
    ("°", "độ", False),
    ("%", "phần trăm", True),
    ("VNĐ", "đồng", True),
    ("VND", "đồng", True),
    ("vnđ", "đồng", True),
    ("vnd", "đồng", True),
    ("USD", "đô la Mỹ", True),
    ("đ", "đồng", True),
    ("g", "gam", False),
    ("l", "lít", False),
    ("k", "nghìn", False),
    ("tr", "triệu", False),
)
_UNIT_SPOKEN = {written: spoken for written, spoken, _ in _UNITS}


def _unit_alternatives(spaced: bool) -> str:
    units = [u for u, _, may_space in _UNITS if may_space or not spaced]
    return "|".join(re.escape(u) for u in sorted(units, key=len, reverse=True))


_UNIT_AFTER = r"(?![^\W\d_]|\d)"
_NUM_UNIT = re.compile(
    _NUM_START
    + "("
    + _NUM
    + ")(?:[ \t]("
    + _unit_alternatives(spaced=True)
    + ")|("
    + _unit_alternatives(spaced=False)
    + "))"
    + _UNIT_AFTER
)
# "50.000đ/kg", "200.000 đồng/người": the price of one unit, "năm mươi nghìn đồng một ki-lô-gam".
_PER = re.compile(r"(?<=đồng)/([^\W\d_]+|m2|m²|m3|m³)")


def _num_unit(match: re.Match[str]) -> str:
    unit = match.group(2) or match.group(3)
    return _pad(f"{_read_numeral(match.group(1))} {_UNIT_SPOKEN[unit]}", match)


def _per(match: re.Match[str]) -> str:
    unit = match.group(1)
    return " một " + _UNIT_SPOKEN.get(unit, unit)


# --- ranges, signs, plain numbers ------------------------------------------------------

_RANGE = re.compile(r"(?<=\d)[ \t]*[-–][ \t]*(?=\d)")  # 5-7 người, 20 – 25°C
_NEGATIVE = re.compile(r"(?<![\w)\].,])[-−](?=\d)")  # -5°C
_PLAIN = re.compile(_NUM_START + "(" + _NUM + ")")


def _plain(match: re.Match[str]) -> str:
    return _pad(_read_numeral(match.group(1)), match)


_Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str] | str]

# Order matters: phones and dates contain what would otherwise be read as numbers and
# ranges; times before units (7h is not a unit); units before plain numbers.
_RULES: tuple[_Rule, ...] = (
    (_PHONE_CONTEXT, _phone_context),
    (_PHONE, _phone),
    (_ABBREVIATION, lambda m: _ABBREVIATIONS[m.group(1)]),
    (_DMY, _dmy),
    (_MY, _my),
    (_DM, _dm),
    (_TIME_RANGE, _time_range),
    (_ONE_TIME, _one_time),
    (_ORDINAL, _ordinal),
    (_MONTH_WORD, _month_word),
    (_RANGE, " đến "),
    (_NEGATIVE, "âm "),
    (_NUM_UNIT, _num_unit),
    (_PER, _per),
    (_PLAIN, _plain),
)


def normalize(text: str) -> str:
    """Rewrite what a Vietnamese listener would not hear right into words (idempotent)."""
    # Phones and macOS send decomposed (NFD) Vietnamese; the rules and espeak want NFC.
    text = unicodedata.normalize("NFC", text).replace("\u00a0", " ").replace("\u202f", " ")
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return re.sub(r"[ \t]{2,}", " ", text)
