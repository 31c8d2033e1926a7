"""Schedules: RRULE occurrences in the village's time zone, misfire policy, windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hub.broadcast.recurrence import Recurrence, in_window, misfire, parse_rrule, window_end

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


def test_daily_six_oclock_news_across_a_month_is_23_utc() -> None:
    r = Recurrence(datetime(2026, 12, 1, 6, 0), VN, "FREQ=DAILY")
    occ = r.between(utc(2026, 11, 30), utc(2026, 12, 31))  # local 07:00 to 07:00
    assert len(occ) == 31
    assert occ[0] == utc(2026, 11, 30, 23, 0)  # 06:00 on 1 December in Vietnam
    assert all(o.hour == 23 and o.minute == 0 for o in occ)
    assert occ[-1] == utc(2026, 12, 30, 23, 0)


def test_weekdays_monday_meetings_first_of_month() -> None:
    weekdays = Recurrence(datetime(2026, 12, 1, 19, 30), VN, "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR")
    got = weekdays.between(utc(2026, 11, 30), utc(2027, 1, 1))
    assert len(got) == 23
    assert {o.astimezone(VN).weekday() for o in got} == {0, 1, 2, 3, 4}
    monday = Recurrence(datetime(2026, 12, 7, 7, 0), VN, "FREQ=WEEKLY;BYDAY=MO")
    assert [o.astimezone(VN).day for o in monday.between(utc(2026, 12, 1), utc(2027, 1, 1))] == [
        7,
        14,
        21,
        28,
    ]
    first = Recurrence(datetime(2026, 12, 1, 8, 0), VN, "FREQ=MONTHLY;BYMONTHDAY=1")
    assert [
        o.astimezone(VN).date().isoformat()
        for o in first.between(utc(2026, 11, 1), utc(2027, 4, 1))
    ] == ["2026-12-01", "2027-01-01", "2027-02-01", "2027-03-01"]


def test_exdates_count_and_until_and_expiry() -> None:
    r = Recurrence(
        datetime(2026, 12, 1, 6, 0),
        VN,
        "FREQ=DAILY;COUNT=5",
        exdates=(datetime(2026, 12, 3, 6, 0),),
    )
    days = [o.astimezone(VN).day for o in r.between(utc(2026, 11, 1), utc(2027, 1, 1))]
    assert days == [1, 2, 4, 5]
    exp = Recurrence(
        datetime(2026, 12, 1, 6, 0), VN, "FREQ=DAILY", expires_at=utc(2026, 12, 3, 0, 0)
    )
    assert len(exp.between(utc(2026, 11, 1), utc(2027, 1, 1))) == 3  # 1, 2, 3 Dec at 06:00
    assert exp.next_after(utc(2026, 12, 3)) is None
    assert exp.is_over(utc(2026, 12, 3))


def test_one_off() -> None:
    r = Recurrence(datetime(2026, 12, 1, 19, 30), VN)
    assert r.next_after(utc(2026, 12, 1)) == utc(2026, 12, 1, 12, 30)
    assert r.next_after(utc(2026, 12, 1, 12, 30)) is None
    assert r.next_after(utc(2026, 12, 1, 12, 30), inclusive=True) == utc(2026, 12, 1, 12, 30)


@pytest.mark.parametrize(
    "bad",
    [
        "FREQ=SECONDLY",
        "FREQ=MINUTELY;INTERVAL=5",
        "FREQ=DAILY;BYDAY=XX",
        "",
        "DTSTART:20261201T000000\nRRULE:FREQ=DAILY",
        "hello",
    ],
)
def test_bad_rrules_are_refused_with_a_reason(bad: str) -> None:
    with pytest.raises(ValueError, match="rrule"):
        parse_rrule(bad, datetime(2026, 12, 1))


def test_misfire_grace() -> None:
    t = utc(2026, 12, 1, 23)
    g = timedelta(minutes=10)
    assert misfire(t, t + timedelta(minutes=9, seconds=59), g) == "play"
    assert misfire(t, t + timedelta(minutes=10, seconds=1), g) == "missed"


def test_quiet_hours_window_across_midnight() -> None:
    w = "21:30-05:30"
    assert in_window(w, utc(2026, 12, 1, 15, 0), VN)  # 22:00 local
    assert in_window(w, utc(2026, 12, 1, 22, 0), VN)  # 05:00 local
    assert not in_window(w, utc(2026, 12, 1, 23, 0), VN)  # 06:00 local
    assert window_end(w, utc(2026, 12, 1, 15, 0), VN) == utc(2026, 12, 1, 22, 30)


def test_a_rule_no_date_matches_is_refused_at_once() -> None:
    # dateutil would walk to the year 9999 on every lookup (seconds of CPU each).
    for text in ("FREQ=HOURLY;BYMONTHDAY=30;BYMONTH=2", "FREQ=DAILY;BYMONTH=4;BYMONTHDAY=31"):
        with pytest.raises(ValueError, match="no date matches"):
            parse_rrule(text, datetime(2026, 12, 6, 19, 30))
    # Rare is not never: the 29th of February still plays.
    parse_rrule("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", datetime(2026, 12, 6, 19, 30))
