"""The words people read (the pages, the feed, the calendar): the catalogue and its Translator.

The word tables are data, UTF-8 JSON beside this module, one per side of the hub:
``common.json`` (the frame, devices, alerts, sign-in), ``public.json`` (the residents'
pages, the feed, the calendar, the feedback form), ``staff.json`` (the announcement
pages and the rules) and one per later part; ``schedule.json`` holds the sentences of
:mod:`hub.words.schedule`, ``devices.json`` what the loudspeakers say for a device.
Each table maps a language to ``{key: text}``, Vietnamese first. They are read once, at
the first word asked for, and never change while the hub runs. Templates call
``_("nav.devices")``, Python ``t("ago.now")``; numbers and times are written the
village's way here (``12,5``; ``19:30 01/12/2026``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from types import MappingProxyType
from zoneinfo import ZoneInfo

from hub.clock import local_time

HERE = Path(__file__).parent

LANGS: tuple[str, ...] = ("vi", "en")
DEFAULT_LANG = "vi"
#: Shown in the language switch, each in its own language.
LANG_NAMES: Mapping[str, str] = MappingProxyType({"vi": "Tiếng Việt", "en": "English"})
#: Word tables that are not the pages' catalogue: the schedule's sentences and what the
#: loudspeakers say for a device (:mod:`hub.words.devices`).
NOT_CATALOGUE = frozenset({"schedule", "devices"})
#: The tables of the catalogue: every other ``*.json`` here, the frame's first (a new part
#: of the hub brings its own table). A key is defined in one of them only (a test says).
_FRAME = ("common", "public", "staff")
TABLES: tuple[str, ...] = (
    *_FRAME,
    *sorted(p.stem for p in HERE.glob("*.json") if p.stem not in NOT_CATALOGUE.union(_FRAME)),
)

MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@functools.cache
def table(name: str) -> Mapping[str, Mapping[str, str]]:
    """One table of the catalogue (``common``, ``public``, ``staff``): language -> texts."""
    data = json.loads((HERE / f"{name}.json").read_text(encoding="utf-8"))
    return MappingProxyType({lang: MappingProxyType(data[lang]) for lang in data})


@functools.cache
def catalogue(lang: str) -> Mapping[str, str]:
    """Every key of every table in one language."""
    merged: dict[str, str] = {}
    for name in TABLES:
        merged.update(table(name)[lang])
    return MappingProxyType(merged)


def date_text(d: date, lang: str, *, year: bool = True) -> str:
    """01/12/2026 or 1 Dec 2026 (without the year when it goes without saying)."""
    if lang == "vi":
        return f"{d:%d/%m/%Y}" if year else f"{d:%d/%m}"
    return f"{d.day} {MONTHS_EN[d.month - 1]}" + (f" {d.year}" if year else "")


class Translator:
    """``t("ago.minutes", n=3)``: the text in one language (else Vietnamese, else the key)."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGS else DEFAULT_LANG
        self._texts = catalogue(self.lang)

    def __call__(self, key: str, /, **values: object) -> str:
        text = self._texts.get(key) or catalogue(DEFAULT_LANG).get(key) or key
        return text.format(**values) if values else text

    def has(self, key: str) -> bool:
        return key in self._texts

    def join(self, items: Sequence[str]) -> str:
        """ "thứ Hai, thứ Tư và thứ Sáu": a list as a sentence says it."""
        if len(items) < 2:
            return "".join(items)
        return self("list.and", first=", ".join(items[:-1]), last=items[-1])

    def subset(self, prefixes: tuple[str, ...]) -> dict[str, str]:
        """The keys the page's script needs, as plain data."""
        return {k: v for k, v in self._texts.items() if k.startswith(prefixes)}

    # -- numbers and times, written the way this language writes them ------------------
    def number(self, value: float, digits: int = 1) -> str:
        if value == int(value) and abs(value) < 1e15:
            text = f"{int(value):,}"
        else:
            text = f"{value:,.{digits}f}".rstrip("0").rstrip(".")
        if self.lang == "vi":  # 1.234,5
            text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
        return text.replace("-", "−")

    def ago(self, ts: float | None, now: float) -> str:
        if ts is None:
            return self("ago.never")
        s = max(0.0, now - ts)
        if s < 60:
            return self("ago.now")
        if s < 3600:
            return self("ago.minutes", n=int(s // 60))
        if s < 86_400:
            return self("ago.hours", n=int(s // 3600))
        return self("ago.days", n=int(s // 86_400))

    def when(self, ts: float | None, tz: ZoneInfo) -> str:
        if ts is None:
            return "—"
        d = local_time(ts, tz)
        if self.lang == "vi":
            return d.strftime("%H:%M %d/%m/%Y")
        return f"{date_text(d, self.lang)}, {d:%H:%M}"

    def day(self, d: date) -> str:
        """A short date for chart ticks: 01/12 or 1 Dec."""
        return date_text(d, self.lang, year=False)
