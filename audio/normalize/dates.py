"""Dates, ranges of days, fractions, weekdays and times of day.

"5/12" is "ngày năm tháng mười hai" unless its context makes it a fraction ("1/2 diện
tích": "một phần hai diện tích") or an address ("số nhà 5/12": "năm trên mười hai").
Ranges read "đến" and repeat the word a listener needs: "từ 10-12/12" is "từ ngày mười
đến ngày mười hai tháng mười hai", "thứ 2-6" "thứ hai đến thứ sáu", "7h-11h" "bảy giờ
đến mười một giờ". Weekdays written short (T2..T7, CN) are read in full.
"""

from __future__ import annotations

import re

from audio.normalize.numbers import (
    read_fraction,
    read_month,
    read_number,
    read_ordinal,
    word_after,
    word_before,
)

_START = r"(?<![\w/.,:-])"
_END = r"(?![\w/]|[.,-]\d)"
_DASH = r"[ \t]*[-–][ \t]*"

# Before these words "5/12" is an address (số nhà 5/12), read "năm trên mười hai".
_ADDRESS_WORDS = {"số", "nhà", "hẻm", "ngõ", "ngách", "kiệt", "phòng", "lô", "tổ", "xóm"}
_DAY_WORDS = {"ngày", "mùng", "mồng"}
# A date is the default; these make "1/2" a fraction: the word after names what is
# divided ("1/2 diện tích", "2/3 số hộ"), or the word before is a quantity's ("chiếm 1/3").
_FRACTION_AFTER = {
    "diện", "số", "dân", "tổng", "sản", "lượng", "kinh", "chi", "giá", "thời", "quãng",
    "đoạn", "phần", "mức", "vốn", "quỹ", "đất", "ruộng", "học", "lúa", "cây", "đàn",
}  # fmt: skip
# ("tới 1/3", "còn 1/3" may be dates: "từ nay tới ngày 1/3"; they are not in the list.)
_FRACTION_BEFORE = {"chiếm", "khoảng", "gần", "hơn", "bằng", "đạt"}


# "các ngày 14, 15/5", "ngày 1 và 2/6": the second day of a list shares the first's "ngày".
_DAY_LIST = re.compile(
    r"(?i)(?:ngày|mùng|mồng)[ \t]+\d{1,2}(?:[ \t]*,[ \t]*\d{1,2})*[ \t]*(?:,|và)[ \t]*$"
)


def _day_prefix(match: re.Match[str]) -> str:
    if word_before(match) in _DAY_WORDS or _DAY_LIST.search(match.string, 0, match.start()):
        return ""
    return "ngày "


def _is_date(d: int, m: int) -> bool:
    return 1 <= d <= 31 and 1 <= m <= 12


# --- ranges of days --------------------------------------------------------------------

# "10-12/12", "10 - 12/12/2026": two days of one month.
DAY_RANGE = re.compile(_START + r"(\d{1,2})" + _DASH + r"(\d{1,2})/(\d{1,2})(?:/(\d{4}))?" + _END)
# "10/12-15/12", "28/11 - 2/12/2026", "18/11/1930 - 18/11/2025": two dates.
DATE_RANGE = re.compile(
    _START
    + r"(\d{1,2})/(\d{1,2})(?:/(\d{4}))?"
    + _DASH
    + r"(\d{1,2})/(\d{1,2})(?:/(\d{4}))?"
    + _END
)


def _year(y: str | None) -> str:
    return f" năm {read_number(int(y))}" if y else ""


def day_range(match: re.Match[str]) -> str:
    d1, d2, m = (int(g) for g in match.group(1, 2, 3))
    if not (_is_date(d1, m) and _is_date(d2, m)):
        return match.group(0)
    month = f"tháng {read_month(m)}{_year(match.group(4))}"
    return f"{_day_prefix(match)}{read_number(d1)} đến ngày {read_number(d2)} {month}"


def date_range(match: re.Match[str]) -> str:
    d1, m1, d2, m2 = (int(g) for g in match.group(1, 2, 4, 5))
    if not (_is_date(d1, m1) and _is_date(d2, m2)):
        return match.group(0)
    first = f"{_day_prefix(match)}{read_number(d1)} tháng {read_month(m1)}{_year(match.group(3))}"
    return f"{first} đến ngày {read_number(d2)} tháng {read_month(m2)}{_year(match.group(6))}"


# "tháng 6-8", "tháng 6 - 8/2025": two months.
MONTH_RANGE = re.compile(
    r"(?<!\w)([Tt]háng)[ \t]+(\d{1,2})" + _DASH + r"(\d{1,2})(?:/(\d{4}))?" + _END
)


def month_range(match: re.Match[str]) -> str:
    m1, m2 = int(match.group(2)), int(match.group(3))
    if not (1 <= m1 <= 12 and 1 <= m2 <= 12):
        return match.group(0)
    return f"{match.group(1)} {read_month(m1)} đến tháng {read_month(m2)}{_year(match.group(4))}"


# --- single dates and fractions --------------------------------------------------------

DMY = re.compile(_START + r"(\d{1,2})([/.-])(\d{1,2})\2(\d{4})" + _END)
MY = re.compile(_START + r"(?:(T)|(?<![^\W\d_]))(\d{1,2})/(\d{4})" + _END)
DM = re.compile(_START + r"(\d{1,2})/(\d{1,2})" + _END)


def dmy(match: re.Match[str]) -> str:
    d, m, y = int(match.group(1)), int(match.group(3)), int(match.group(4))
    if not _is_date(d, m):
        return match.group(0)
    return f"{_day_prefix(match)}{read_number(d)} tháng {read_month(m)} năm {read_number(y)}"


def my(match: re.Match[str]) -> str:
    m, y = int(match.group(2)), int(match.group(3))
    if not 1 <= m <= 12:
        return match.group(0)
    prefix = "" if word_before(match) == "tháng" and not match.group(1) else "tháng "
    return f"{prefix}{read_month(m)} năm {read_number(y)}"


def dm(match: re.Match[str]) -> str:
    d, m = int(match.group(1)), int(match.group(2))
    before = word_before(match)
    if before in _ADDRESS_WORDS:
        return f"{read_number(d)} trên {read_number(m)}"
    if before not in _DAY_WORDS and d < m <= 10 and _is_fraction(match):
        return read_fraction(d, m)
    if not _is_date(d, m):
        return f"{read_number(d)} trên {read_number(m)}"
    return f"{_day_prefix(match)}{read_number(d)} tháng {read_month(m)}"


def _is_fraction(match: re.Match[str]) -> bool:
    return word_after(match) in _FRACTION_AFTER or word_before(match) in _FRACTION_BEFORE


# --- weekdays, ordinals, months --------------------------------------------------------

# "thứ 2-6", "thứ 2 - thứ 6", "T2-T6", "T2 - CN": a span of weekdays.
WEEKDAY_RANGE = re.compile(
    r"(?<!\w)(?:([Tt]hứ)[ \t]+|T)([2-7])" + _DASH + r"(?:(?:thứ[ \t]+|T)?([2-7])|(CN))(?!\w|[.,]\d)"
)
# "thứ 3, 5, 7", "thứ 2, 4 và 6": each day of the list is a "thứ".
WEEKDAY_LIST = re.compile(
    r"(?<!\w)([Tt]hứ)[ \t]+([2-7])((?:[ \t]*(?:,|và)[ \t]*[2-7](?![\w/]|[.,]\d))+)"
)
# T2..T7 standing alone: the days of a schedule ("T7, CN").
WEEKDAY_SHORT = re.compile(r"(?<![\w/])T([2-7])(?![\w/])")


def weekday_range(match: re.Match[str]) -> str:
    first = f"{match.group(1) or 'thứ'} {read_ordinal(int(match.group(2)))}"
    last = "chủ nhật" if match.group(4) else f"thứ {read_ordinal(int(match.group(3)))}"
    return f"{first} đến {last}"


def weekday_list(match: re.Match[str]) -> str:
    days = re.findall(r"(,|và)[ \t]*([2-7])", match.group(3))
    rest = "".join(f"{',' if sep == ',' else ' và'} thứ {read_ordinal(int(d))}" for sep, d in days)
    return f"{match.group(1)} {read_ordinal(int(match.group(2)))}{rest}"


def weekday_short(match: re.Match[str]) -> str:
    return f"thứ {read_ordinal(int(match.group(1)))}"


ORDINAL = re.compile(r"(?<!\w)([Tt]hứ)[ \t]+(\d{1,3})(?!\w|[.,]\d)")
MONTH_WORD = re.compile(r"(?<!\w)([Tt]háng)[ \t]+(\d{1,2})(?!\w|[.,/]\d)")


def ordinal(match: re.Match[str]) -> str:
    return f"{match.group(1)} {read_ordinal(int(match.group(2)))}"


def month_word(match: re.Match[str]) -> str:
    n = int(match.group(2))
    return f"{match.group(1)} {read_month(n) if 1 <= n <= 12 else read_number(n)}"


# --- times -----------------------------------------------------------------------------

_TIME = (
    r"\d{1,2}[hHgG]\d{2}(?:p|ph|')?"  # 19h30, 7g30, 19h30p
    r"|\d{1,2}:\d{2}(?::\d{2})?"  # 7:05, 07:05:30
    r"|\d{1,2}[ \t]?[hH]"  # 19h, 7 h
    r"|\d{1,2}g(?=[ \t]+(?:sáng|trưa|chiều|tối|đêm))"  # 7g sáng (bare g is grams elsewhere)
)
_TIME_END = r"(?![^\W\d_]|[:.,]\d)"
ONE_TIME = re.compile(r"(?<![\w:.,/])(" + _TIME + ")" + _TIME_END)
TIME_RANGE = re.compile(r"(?<![\w:.,/])(" + _TIME + ")" + _DASH + "(" + _TIME + ")" + _TIME_END)


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


def _pad(text: str, match: re.Match[str]) -> str:
    after = match.string[match.end()] if match.end() < len(match.string) else " "
    return f"{text} " if after.isalpha() else text


def one_time(match: re.Match[str]) -> str:
    spoken = _time_words(match.group(1))
    return match.group(0) if spoken is None else _pad(spoken, match)


def time_range(match: re.Match[str]) -> str:
    a, b = _time_words(match.group(1)), _time_words(match.group(2))
    if a is None or b is None:
        return match.group(0)
    return _pad(f"{a} đến {b}", match)
