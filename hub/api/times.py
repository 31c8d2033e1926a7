"""The ``since`` / ``until`` query parameters of the API: ISO 8601 or epoch seconds, checked.

Every list that takes a time reads it here, so "nan", "1e400" or "0001-01-01T00:00:00"
get the same 422 with a reason everywhere, never a 500 nor a silently empty list.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, tzinfo

from hub.broadcast.models import FIRST_YEAR, LAST_YEAR
from hub.errors import Invalid

#: The instants a query may name (the request bodies' years, as epoch seconds).
EARLIEST = datetime(FIRST_YEAR, 1, 1, tzinfo=UTC).timestamp()
LATEST = datetime(LAST_YEAR + 1, 1, 1, tzinfo=UTC).timestamp()

_HINT = "use ISO 8601 like 2026-12-01T12:30:00Z or epoch seconds"


def parse_time(value: str | None, name: str, tz: tzinfo = UTC) -> float | None:
    """``since``/``until``: ISO 8601 or epoch seconds -> epoch seconds; :class:`Invalid`
    (422) when it is not a time between the years FIRST_YEAR and LAST_YEAR.

    A time without an offset is the village's local time, as in request bodies.
    """
    if value is None or value == "":
        return None
    try:
        seconds = float(value)
    except ValueError:
        return _iso(value, name, tz)
    # NaN compares false with everything: it would pass any range check and match nothing.
    if not (math.isfinite(seconds) and EARLIEST <= seconds < LATEST):
        raise _refused(name, value)
    return seconds


def _iso(value: str, name: str, tz: tzinfo) -> float:
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"{name}: not a time ({_HINT})") from None
    # The wall time as written is checked before the zone moves it (year 1 in the village's
    # time is before year 1 in UTC: an OverflowError).
    if not FIRST_YEAR <= dt.year <= LAST_YEAR:
        raise _refused(name, value)
    return (dt if dt.tzinfo else dt.replace(tzinfo=tz)).timestamp()


def _refused(name: str, value: str) -> Invalid:
    return Invalid(
        f"{name}: {value[:40]!r} is out of range: give a time between {FIRST_YEAR} and "
        f"{LAST_YEAR} ({_HINT})"
    )
