"""Road codes, km markers, flood alarm levels and roman numerals: read by their context.

"QL1A" is "quốc lộ một A", "ĐT.391" "đường tỉnh ba trăm chín mươi mốt", "Km 15+200"
"cây số mười lăm cộng hai trăm", "BĐ2" "báo động hai". A roman numeral is read only
after a word that takes one (thế kỷ XXI, quý IV, khóa XV, Điều III, lần thứ II):
elsewhere "CD", "MC" or "DC" are words or names, and stay as written.
"""

from __future__ import annotations

import re

from audio.normalize.numbers import ROMAN, read_number, read_ordinal, roman_value

# --- road codes ------------------------------------------------------------------------

ROADS = {"QL": "quốc lộ", "ĐT": "đường tỉnh", "TL": "tỉnh lộ", "ĐH": "đường huyện",
         "HL": "hương lộ", "ĐX": "đường xã"}  # fmt: skip
# QL1A, QL 6, QL.18, ĐT391, ĐT.391, TL 295B, ĐH.12. The letter after the number is part of
# the road's name (1A) and is kept as a letter.
ROAD = re.compile(
    r"(?<![^\W\d_])(" + "|".join(ROADS) + r")[ .]?(\d{1,4})([A-Z]?)(?![^\W\d_]|[.,]\d)"
)


def road(match: re.Match[str]) -> str:
    letter = f" {match.group(3)}" if match.group(3) else ""
    return f"{ROADS[match.group(1)]} {read_number(int(match.group(2)))}{letter}"


# --- km markers ------------------------------------------------------------------------

# "Km 15+200", "Km15+200", "km 3": a place on a road, not a distance (a distance has its
# number before: "3 km 500 m"). A range "Km 15+200 - Km 16+500" reads "đến".
_KM = r"(?<![^\W\d_])(?<!\d)(?<!\d )[Kk][Mm][ \t]?(\d{1,4})(?:\+(\d{1,3}))?(?![\w,.]\d|[^\W\d_])"
KM_MARKER = re.compile(_KM + r"(?:[ \t]*[-–][ \t]*" + _KM.replace("(?<!\\d)(?<!\\d )", "") + ")?")


def _km(km: str, metres: str | None) -> str:
    spoken = f"cây số {read_number(int(km))}"
    return f"{spoken} cộng {read_number(int(metres))}" if metres else spoken


def km_marker(match: re.Match[str]) -> str:
    first = _km(match.group(1), match.group(2))
    if match.group(3) is None:
        return first
    return f"{first} đến {_km(match.group(3), match.group(4))}"


# --- flood alarm levels ----------------------------------------------------------------

# "BĐ1", "BĐ 2", "BĐIII", "báo động II": the three levels of a river's alarm.
ALARM = re.compile(
    r"(?<![^\W\d_])(BĐ|[Bb]áo động(?: số| cấp)?)[ \t]?(?:([1-3])|(I{1,3}))(?![^\W\d_]|[.,]?\d)"
)


def alarm(match: re.Match[str]) -> str:
    level = int(match.group(2)) if match.group(2) else len(match.group(3))
    head = "báo động" if match.group(1) == "BĐ" else match.group(1)
    return f"{head} {read_number(level)}"


# --- roman numerals in context ---------------------------------------------------------

# Words after which a roman numeral is a number; "thứ" makes it an ordinal (thứ tư).
_ROMAN_CONTEXT = (
    r"[Tt]hế kỷ|[Tt]hế kỉ|[Qq]uý|[Kk]hóa|[Kk]hoá|[Đđ]iều|[Cc]hương|[Pp]hần|[Mm]ục|[Tt]ập"
    r"|[Đđ]ại hội|[Gg]iai đoạn|[Đđ]ợt|[Hh]ạng|[Ll]oại|[Cc]ấp|[Kk]ỳ|[Vv]ùng|[Kk]hu vực"
    r"|[Ll]ần thứ|[Kk]ỳ họp thứ|[Tt]hứ"
)
ROMAN_NUMERAL = re.compile(
    r"(?<!\w)(" + _ROMAN_CONTEXT + r")([ \t]+)(?=[IVXLCDM])(" + ROMAN + r")(?!\w)"
)


def roman_numeral(match: re.Match[str]) -> str:
    context, space, numeral = match.groups()
    if not numeral:
        return match.group(0)
    value = roman_value(numeral)
    spoken = read_ordinal(value) if context.lower().endswith("thứ") else read_number(value)
    return f"{context}{space}{spoken}"
