"""Quantities: numbers with their units, money, rates per unit, ranges and plain numbers.

"50.000đ/hộ/tháng" is "năm mươi nghìn đồng một hộ một tháng" (a price per thing reads
"một"); "60 km/h", "m³/s" and "người/km²" are rates and read "trên"; "100 mm/24h" is
"một trăm mi-li-mét trong hai mươi bốn giờ". Money is written "đ", "VNĐ", "k" (nghìn),
"tr" (triệu), "tỷ"; "1tr2" is "một triệu hai". A number with ``.`` and one or two digits
is a decimal when a unit follows ("2.5 kg": "hai phẩy năm ki-lô-gam").
"""

from __future__ import annotations

import re

from audio.normalize.numbers import NUM, NUM_START, pad, read_number, read_numeral, word_before

# (written, spoken, may stand after a space). Single letters that are also words or
# other units (g, l, k) only count when glued to the number: 500g, 2l, 50k.
_UNITS: tuple[tuple[str, str, bool], ...] = (
    ("km/h", "ki-lô-mét trên giờ", True),
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
    ("kV", "ki-lô-vôn", True),
    ("kVA", "ki-lô-vôn-ampe", True),
    ("V", "vôn", False),
    ("W", "oát", False),
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
    ("tr", "triệu", True),
    ("g", "gam", False),
    ("l", "lít", False),
    ("k", "nghìn", False),
    ("s", "giây", False),
    ("h", "giờ", False),
)
UNIT_SPOKEN = {written: spoken for written, spoken, _ in _UNITS}
# Denominators that make a rate "trên" (speed, flow, density), not a price "một".
_TIME_UNITS = {"s", "h"}
_MONEY = {"đ", "VNĐ", "VND", "vnđ", "vnd", "đồng"}
# Words that make "2.5" a quantity ("2.5 tấn": hai phẩy năm tấn), not a section number.
_MEASURE_WORDS = {
    "tấn", "tạ", "yến", "lít", "mét", "sào", "mẫu", "héc-ta", "độ", "lần", "triệu", "tỷ",
    "nghìn", "ngàn", "đồng", "giờ", "ngày", "tháng", "năm", "người", "hộ", "con", "cây",
}  # fmt: skip


def _unit_alternatives(spaced: bool) -> str:
    # "s" and "h" only follow a slash (m/s, km/h): "7h" is a time, read in dates.py.
    units = [u for u, _, may_space in _UNITS if (may_space or not spaced) and u not in _TIME_UNITS]
    return "|".join(re.escape(u) for u in sorted(units, key=len, reverse=True))


_UNIT_AFTER = r"(?![^\W\d_]|\d)"
NUM_UNIT = re.compile(
    NUM_START
    + "("
    + NUM
    + ")(?:[ \t]("
    + _unit_alternatives(spaced=True)
    + ")|("
    + _unit_alternatives(spaced=False)
    + "))"
    + _UNIT_AFTER
)


def _numeral(token: str, unit: str) -> str:
    # "1,500 đ" / "1,500đ": a comma then three digits before money is an English thousands
    # separator (nobody writes money with three decimals).
    if unit in _MONEY and re.fullmatch(r"\d{1,3},\d{3}", token):
        return read_number(int(token.replace(",", "")))
    return read_numeral(token, measure=True)


def num_unit(match: re.Match[str]) -> str:
    unit = match.group(2) or match.group(3)
    return pad(f"{_numeral(match.group(1), unit)} {UNIT_SPOKEN[unit]}", match)


# --- rates: đồng/người/tháng, kg/sào, người/km², m³/s ----------------------------------

_UNIT_TOKEN = (
    "(?:" + "|".join(re.escape(u) for u in sorted(UNIT_SPOKEN, key=len, reverse=True)) + ")"
    r"(?![^\W\d_]|\d)|[^\W\d_]+"
)
_PER_PART = r"/(?:\d{1,3}[ \t]?(?:h|giờ)(?![^\W\d_])|" + _UNIT_TOKEN + ")"
# A number, its unit, then one or more "/unit": "50.000 đồng/người/tháng", "20 kg/sào".
RATE = re.compile(NUM_START + "(" + NUM + r")[ \t]?(" + _UNIT_TOKEN + ")((?:" + _PER_PART + ")+)")
# Without a number, after "đồng": "mức thu đồng/hộ" (kept from the first rules).
PER_AFTER_MONEY = re.compile(r"(?<=đồng)((?:" + _PER_PART + ")+)")
_AREA_UNITS = {"km²", "km2"}


def _per(numerator: str, parts: str) -> str:
    spoken: list[str] = []
    for part in re.findall(_PER_PART, parts):
        unit = part[1:]
        hours = re.fullmatch(r"(\d+)[ \t]?(?:h|giờ)", unit)
        if hours:  # "100 mm/24h": in twenty-four hours
            spoken.append(f"trong {read_number(int(hours.group(1)))} giờ")
            continue
        rate = unit in _TIME_UNITS or (unit in _AREA_UNITS and numerator not in _MONEY)
        spoken.append(f"{'trên' if rate else 'một'} {UNIT_SPOKEN.get(unit, unit)}")
    return " ".join(spoken)


def rate(match: re.Match[str]) -> str:
    number, unit, parts = match.groups()
    head = f"{_numeral(number, unit)} {UNIT_SPOKEN.get(unit, unit)}"
    return pad(f"{head} {_per(unit, parts)}", match)


def per_after_money(match: re.Match[str]) -> str:
    return " " + _per("đồng", match.group(1))


# "1tr2", "5tr5": a million and a fraction of it, as said at the market; "1tr2/tháng".
MILLIONS = re.compile(NUM_START + r"(\d{1,3})tr(\d)((?:" + _PER_PART + r")*)(?!\w|[.,]\d)")


def millions(match: re.Match[str]) -> str:
    tenth = int(match.group(2))
    rest = "rưỡi" if tenth == 5 else read_number(tenth)
    spoken = f"{read_number(int(match.group(1)))} triệu {rest}"
    if match.group(3):
        spoken += " " + _per("triệu", match.group(3))
    return pad(spoken, match)


# "dưới 1m2", "cao 1m5": a height in metres and tenths, not square metres.
_HEIGHT_WORDS = {"dưới", "cao", "trên", "ngập", "sâu", "dài", "rộng", "quá"}
HEIGHT = re.compile(NUM_START + r"(\d)m(\d{1,2})(?![\w²³]|[.,]\d)")


def height(match: re.Match[str]) -> str:
    if word_before(match) not in _HEIGHT_WORDS:
        return match.group(0)
    return pad(f"{read_number(int(match.group(1)))} mét {read_number(int(match.group(2)))}", match)


# "412/520 hộ", "1.245/1.310 phiếu", "19/19 tiêu chí" (what is left after dates): a count
# out of a total, "trên".
# "24/24h" is round the clock: "hai mươi tư trên hai mươi tư giờ".
RATIO = re.compile(NUM_START + "(" + NUM + ")/(" + NUM + r")(h?)(?![\w/]|[.,]\d)")


def ratio(match: re.Match[str]) -> str:
    hours = " giờ" if match.group(3) else ""
    return pad(f"{read_numeral(match.group(1))} trên {read_numeral(match.group(2))}{hours}", match)


# A slash between words: "thóc/sào/vụ" is per (một sào một vụ), "ông/bà" an either-or.
_PER_WORDS = {
    "sào", "mẫu", "ha", "vụ", "hộ", "người", "khẩu", "tháng", "năm", "ngày", "tuần", "lượt",
    "con", "bản", "suất", "lần", "kg", "tấn", "tạ", "lít", "m²", "m2", "m³", "m3", "xe",
}  # fmt: skip
WORD_SLASH = re.compile(r"(?<=[^\W\d_])/([^\W\d_]+[²³]?)(?=[\s,.;:!?)/]|$)")


def word_slash(match: re.Match[str]) -> str:
    word = match.group(1)
    if word.lower() in _PER_WORDS:
        return f" một {UNIT_SPOKEN.get(word, word)}"
    return f" {word}"


# --- ranges, signs, plain numbers ------------------------------------------------------

RANGE = re.compile(r"(?<=\d)[ \t]*[-–][ \t]*(?=\d)")  # 5-7 người, 20 – 25°C
NEGATIVE = re.compile(r"(?<![\w)\].,])[-−](?=\d)")  # -5°C
PLAIN = re.compile(NUM_START + "(" + NUM + ")")


def plain(match: re.Match[str]) -> str:
    after = re.match(r"[ \t]*([^\W\d_][\w-]*)", match.string[match.end() :])
    measure = after is not None and after.group(1).lower() in _MEASURE_WORDS
    return pad(read_numeral(match.group(1), measure=measure), match)
