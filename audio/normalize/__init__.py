"""Vietnamese text normaliser: the first step from an announcement's text to speech.

A speech engine reads ``19h30``, ``50.000đ/hộ`` or ``45/2024/QĐ-UBND`` badly; a village
listener expects "mười chín giờ ba mươi phút", "năm mươi nghìn đồng một hộ" and "số bốn
mươi lăm năm hai nghìn không trăm hai mươi tư quyết định Ủy ban nhân dân". ``normalize``
runs a table of rules, one module per topic:

- :mod:`contacts`: e-mail and web addresses, phone numbers;
- :mod:`abbreviations`: document numbers and codes, local-government abbreviations;
- :mod:`markers`: road codes, km markers, flood alarm levels, roman numerals in context;
- :mod:`dates`: ranges of days, dates, fractions, weekdays, months, times;
- :mod:`units`: money, units and rates, ranges and plain numbers;

all of them reading numbers with :mod:`numbers` (northern standard: nghìn, linh). Every
other word stays as it is. The output holds no digit nor known abbreviation, so
``normalize`` is idempotent.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from audio.normalize import abbreviations, contacts, dates, markers, units
from audio.normalize.numbers import read_digits, read_number

__all__ = ["normalize", "read_digits", "read_number"]

_Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str] | str]

# Order matters: each rule takes what the later ones would misread. Addresses and
# phones first (their dots and digits are not numbers), then codes whose slashes and
# hyphens are not dates nor ranges, then weekdays before the abbreviation "CN", dates
# and ranges of dates before the generic range "5-7", times before units (7h is not a
# unit), rates before single units, and plain numbers last.
_RULES: tuple[_Rule, ...] = (
    (contacts.EMAIL, contacts.spell_address),
    (contacts.WEB, contacts.spell_address),
    (contacts.PHONE_CONTEXT, contacts.phone_context),
    (contacts.PHONE, contacts.phone),
    (contacts.HOTLINE, contacts.digits),
    (contacts.EMERGENCY, contacts.digits),
    (abbreviations.DOCUMENT_NUMBER, abbreviations.document_number),
    (abbreviations.DOCUMENT_CODE, abbreviations.document_code),
    (markers.KM_MARKER, markers.km_marker),
    (markers.ROAD, markers.road),
    (markers.ALARM, markers.alarm),
    (markers.ROMAN_NUMERAL, markers.roman_numeral),
    (dates.WEEKDAY_RANGE, dates.weekday_range),
    (dates.WEEKDAY_LIST, dates.weekday_list),
    (dates.WEEKDAY_SHORT, dates.weekday_short),
    (abbreviations.ABBREVIATION, abbreviations.abbreviation),
    (dates.DAY_RANGE, dates.day_range),
    (dates.DATE_RANGE, dates.date_range),
    (dates.MONTH_RANGE, dates.month_range),
    (dates.DMY, dates.dmy),
    (dates.MY, dates.my),
    (dates.DM, dates.dm),
    (units.RATIO, units.ratio),
    (dates.TIME_RANGE, dates.time_range),
    (units.RANGE, " đến "),
    (dates.ONE_TIME, dates.one_time),
    (dates.ORDINAL, dates.ordinal),
    (dates.MONTH_WORD, dates.month_word),
    (units.NEGATIVE, "âm "),
    (units.MILLIONS, units.millions),
    (units.HEIGHT, units.height),
    (units.RATE, units.rate),
    (units.NUM_UNIT, units.num_unit),
    (units.PER_AFTER_MONEY, units.per_after_money),
    (units.WORD_SLASH, units.word_slash),
    (units.PLAIN, units.plain),
)


def normalize(text: str) -> str:
    """Rewrite what a Vietnamese listener would not hear right into words (idempotent)."""
    # Phones and macOS send decomposed (NFD) Vietnamese; the rules and espeak want NFC.
    text = unicodedata.normalize("NFC", text).replace("\u00a0", " ").replace("\u202f", " ")
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return re.sub(r"[ \t]{2,}", " ", text)
