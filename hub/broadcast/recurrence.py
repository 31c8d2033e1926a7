"""Schedules: one-off and RFC 5545 RRULE occurrences in the village's time zone.

Pure functions over a :class:`Recurrence`; the playout's scheduler asks them for
the next occurrence and what to do with one that was missed. Times go in and
out as aware UTC datetimes; the recurrence itself is written in local wall
time, so "every day at 06:00" stays 06:00 whatever the offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal

from dateutil.rrule import (
    DAILY,
    HOURLY,
    MONTHLY,
    WEEKLY,
    YEARLY,
    rrulestr,
)
from dateutil.rrule import rrule as RRule

#: Loudspeakers are not a clock chime: nothing recurs more often than hourly.
ALLOWED_FREQS = {HOURLY, DAILY, WEEKLY, MONTHLY, YEARLY}


def local_naive(dt: datetime, tz: tzinfo) -> datetime:
    """UTC (or any aware time) -> the village's wall-clock time, without tzinfo."""
    return dt.astimezone(tz).replace(tzinfo=None)


def to_utc(local: datetime, tz: tzinfo) -> datetime:
    return local.replace(tzinfo=tz).astimezone(UTC)


#: A rule must match some date between this (leap) year and 9999, dateutil's last.
PROBE_YEAR = 9988

#: Periods of a fixed length in wall time: a rule moved by whole periods is the same rule.
_FIXED_STEP = {HOURLY: timedelta(hours=1), DAILY: timedelta(days=1), WEEKLY: timedelta(weeks=1)}


def _months(d: datetime) -> int:
    return d.year * 12 + d.month - 1


def near(rule: RRule, start: datetime, lo: datetime) -> RRule:
    """The same rule, its start moved to a period boundary shortly before ``lo``.

    dateutil walks every occurrence from the start: after a clock jump to 2036 an hourly
    rule would walk 87,600 of them on each lookup. Moved by whole periods (whole
    ``INTERVAL``s of its ``FREQ``) the rule keeps its defaults (hour, minute, weekday, day
    of month, all taken from the start) and its alignment, so it yields the same
    occurrences from ``lo`` on, in a walk of a period or two whatever the jump. A rule
    with ``COUNT`` counts from its real start: it stays as it is (COUNT bounds its walk).
    """
    if getattr(rule, "_count", None) is not None or lo <= start:
        return rule
    # dateutil keeps the parsed rule in private attributes (no public accessor).
    freq, interval = int(getattr(rule, "_freq", 0)), int(getattr(rule, "_interval", 1))
    fixed = _FIXED_STEP.get(freq)
    if fixed is not None:
        step = fixed * interval
        periods = (lo - start) // step - 1
        return rule.replace(dtstart=start + step * periods) if periods >= 1 else rule
    # MONTHLY and YEARLY: whole months; only from a day every month has (1-28).
    if start.day > 28:
        return rule
    every = interval * (12 if freq == YEARLY else 1)
    periods = (_months(lo) - _months(start)) // every - 1
    if periods < 1:
        return rule
    m = _months(start) + every * periods
    return rule.replace(dtstart=start.replace(year=m // 12, month=m % 12 + 1))


def parse_rrule(text: str, dtstart: datetime) -> RRule:
    """Validate an RRULE (with or without the ``RRULE:`` prefix); ValueError says why."""
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    if not body:
        raise ValueError("rrule is empty")
    if "DTSTART" in body.upper():
        raise ValueError("rrule: give the start in start_at, not DTSTART")
    try:
        rule = rrulestr(body, dtstart=dtstart)
    except (ValueError, TypeError) as e:
        raise ValueError(f"rrule: {e}") from None
    if not isinstance(rule, RRule):
        raise ValueError("rrule: one RRULE only")
    if getattr(rule, "_freq", None) not in ALLOWED_FREQS:
        raise ValueError("rrule: FREQ must be HOURLY, DAILY, WEEKLY, MONTHLY or YEARLY")
    # A rule that never matches (HOURLY on 30 February) would make every later lookup walk
    # to the year 9999, seconds of CPU each: refuse it while the walk is short.
    # dateutil walks year after year to 9999 looking for a match that never comes; its
    # UNTIL stops only a walk that finds dates. So the same rule is tried from PROBE_YEAR
    # (a leap year): a walk of a dozen years, a few milliseconds.
    late = dtstart.replace(year=PROBE_YEAR)
    if rule.replace(dtstart=late, count=None, until=None).after(late, inc=True) is None:
        raise ValueError("rrule: no date matches it (check BYMONTH, BYMONTHDAY, BYDAY)")
    return rule


def canonical_rrule(text: str) -> str:
    """The RRULE as stored and exported (no prefix, upper-case keys)."""
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    return body.upper()


@dataclass(frozen=True, slots=True)
class Recurrence:
    """When an announcement plays: ``start`` (local wall time) and an optional RRULE."""

    start: datetime  # naive local wall time of the first occurrence
    tz: tzinfo
    rrule: str | None = None
    exdates: tuple[datetime, ...] = ()  # naive local wall times that are skipped
    expires_at: datetime | None = None  # aware UTC; nothing plays at or after it

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None:
            raise ValueError("Recurrence.start is local wall time (naive)")
        if self.rrule:
            parse_rrule(self.rrule, self.start)

    def _rule(self) -> RRule | None:
        return parse_rrule(self.rrule, self.start) if self.rrule else None

    def between(
        self, after: datetime, before: datetime, *, inclusive: bool = False
    ) -> list[datetime]:
        """Occurrences (aware UTC) in (after, before) — [after, before) with inclusive."""
        lo, hi = local_naive(after, self.tz), local_naive(before, self.tz)
        rule = self._rule()
        if rule is None:
            after_lo = lo <= self.start if inclusive else lo < self.start
            local = [self.start] if after_lo and self.start < hi else []
        else:
            rule = near(rule, self.start, lo)
            local = [d for d in rule.between(lo, hi, inc=inclusive) if d != hi]
        out = []
        skip = set(self.exdates)
        for d in local:
            if d in skip:
                continue
            u = to_utc(d, self.tz)
            if self.expires_at is not None and u >= self.expires_at:
                break
            out.append(u)
        return out

    def next_after(self, t: datetime, *, inclusive: bool = False) -> datetime | None:
        """The first occurrence after ``t`` (aware), or None when the schedule is over."""
        lo = local_naive(t, self.tz)
        rule = self._rule()
        skip = set(self.exdates)
        if rule is None:
            after = lo <= self.start if inclusive else lo < self.start
            candidates = [self.start] if after and self.start not in skip else []
        else:
            candidates = []
            rule = near(rule, self.start, lo)
            cur: datetime | None = rule.after(lo, inc=inclusive)
            # Skip excluded dates; a bounded walk (a year of daily exdates at most).
            for _ in range(400):
                if cur is None or cur not in skip:
                    break
                cur = rule.after(cur)
            if cur is not None and cur not in skip:
                candidates = [cur]
        for d in candidates:
            u = to_utc(d, self.tz)
            if self.expires_at is None or u < self.expires_at:
                return u
        return None

    def is_over(self, now: datetime) -> bool:
        return self.next_after(now, inclusive=True) is None


Misfire = Literal["play", "missed"]


def misfire(occurrence: datetime, now: datetime, grace: timedelta) -> Misfire:
    """After downtime: an occurrence missed by less than the grace period still plays."""
    return "play" if now - occurrence <= grace else "missed"


def in_window(window: str, at: datetime, tz: tzinfo) -> bool:
    """Is ``at`` inside a local "HH:MM-HH:MM" window (which may span midnight)?"""
    start_s, end_s = window.split("-")
    start = datetime.strptime(start_s, "%H:%M").time()
    end = datetime.strptime(end_s, "%H:%M").time()
    local = at.astimezone(tz).time()
    if start <= end:
        return start <= local < end
    return local >= start or local < end


def window_end(window: str, at: datetime, tz: tzinfo) -> datetime:
    """The first instant at or after ``at`` outside the window (aware UTC)."""
    end_s = window.split("-")[1]
    end = datetime.strptime(end_s, "%H:%M").time()
    local = at.astimezone(tz)
    candidate = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if candidate <= local:
        candidate += timedelta(days=1)
    return candidate.astimezone(UTC)
