"""Times and lengths in words, as the village head reads them: "Hôm nay, 19:30", "5 phút"."""

from __future__ import annotations

from datetime import date, datetime, timedelta, tzinfo

from hub.clock import local_time
from hub.words import Translator, date_text

#: RFC 5545 weekday codes, Monday first (the order of ``date.weekday()``).
WEEKDAYS: tuple[str, ...] = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
WORKDAYS: tuple[str, ...] = WEEKDAYS[:5]


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def weekday_name(t: Translator, d: date) -> str:
    return t(f"wd.{WEEKDAYS[d.weekday()]}")


def when_text(t: Translator, ts: float, tz: tzinfo, now: float) -> str:
    """A time as the head reads it: "Hôm nay, 19:30", "Ngày mai, 06:00", "Thứ Năm 03/12, 19:30"."""
    d = local_time(ts, tz)
    today = local_time(now, tz).date()
    hm = f"{d:%H:%M}"
    if d.date() == today:
        return t("when.today", time=hm)
    if d.date() == today + timedelta(days=1):
        return t("when.tomorrow", time=hm)
    return t(
        "when.day",
        weekday=cap(weekday_name(t, d.date())),
        date=date_text(d.date(), t.lang, year=d.year != today.year),
        time=hm,
    )


def local_text(t: Translator, local: datetime) -> str:
    """A local wall-clock time in full: "19:30 thứ Ba 01/12/2026" / "Tuesday 1 Dec 2026, 19:30"."""
    return t(
        "when.full",
        weekday=weekday_name(t, local.date()),
        date=date_text(local.date(), t.lang),
        time=f"{local:%H:%M}",
    )


def duration_text(t: Translator, seconds: float) -> str:
    """30 giây, 5 phút, 2 giờ, 1 ngày (and 1 phút 30 giây when it is not round)."""
    s = round(seconds)
    if s >= 86_400 and s % 86_400 == 0:
        return t("dur.d", n=s // 86_400)
    if s >= 3600 and s % 3600 == 0:
        return t("dur.h", n=s // 3600)
    if s >= 60:
        m, rest = divmod(s, 60)
        minutes = t("dur.min", n=m)
        return minutes if not rest else f"{minutes} {t('dur.s', n=rest)}"
    return t("dur.s", n=s)


def clock_text(seconds: float | None) -> str:
    """A recording's length: 0:42, 12:05."""
    if seconds is None:
        return ""
    s = round(seconds)
    return f"{s // 60}:{s % 60:02d}"


def ts_of(value: str | None) -> float | None:
    """An ISO 8601 time as the API gives it (``…Z``) -> epoch seconds; the reverse of
    :func:`hub.clock.iso`."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
