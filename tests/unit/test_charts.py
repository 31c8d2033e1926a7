"""The device page's charts: a few minutes of data fill the chart, not a sliver at the
edge of 24 hours; ticks fall on round local times."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hub.web.charts import LEFT, RIGHT, W, line_chart

VN = ZoneInfo("Asia/Ho_Chi_Minh")
T1 = datetime(2026, 12, 6, 10, 0, tzinfo=UTC).timestamp()  # 17:00 in the village
DAY = 86_400.0


def chart(points: list[tuple[float, float]], t0: float, t1: float) -> str:
    return str(
        line_chart(
            points,
            t0=t0,
            t1=t1,
            tz=VN,
            label="Mực nước",
            unit="cm",
            number=lambda v: f"{v:g}",
            day=lambda d: f"{d:%d/%m}",
            summary=lambda lo, hi, last: f"{lo} {hi} {last}",
            chart_id="c",
        )
    )


def xs(svg: str) -> list[float]:
    [points] = re.findall(r'<polyline class="chart-line" points="([^"]+)"', svg)
    return [float(p.split(",")[0]) for p in points.split()]


def ticks(svg: str) -> list[str]:
    return re.findall(r'<text class="chart-tick"[^>]*>([^<]+)</text>', svg)


def test_eight_minutes_in_a_24_hour_chart_fill_it() -> None:
    pts = [(T1 - 480 + 30 * i, 150 + i) for i in range(17)]  # every 30 s for 8 minutes
    svg = chart(pts, T1 - DAY, T1)
    x = xs(svg)
    plot = (W - RIGHT) - LEFT
    assert max(x) - min(x) >= 0.8 * plot, (min(x), max(x))  # was 0.5 % of it
    labels = ticks(svg)
    # Round local minutes between 16:52 and 17:00, a handful of them.
    assert 2 <= len(labels) <= 6 and all(re.fullmatch(r"16:5\d|17:00", t) for t in labels)
    assert all(int(t[-2:]) % 2 == 0 for t in labels), labels


def test_a_full_day_keeps_its_24_hours_and_six_hour_ticks() -> None:
    pts = [(T1 - DAY + 600 * i, 100 + i % 7) for i in range(144)]
    svg = chart(pts, T1 - DAY, T1)
    x = xs(svg)
    assert min(x) < LEFT + 2 and max(x) > W - RIGHT - 6
    assert ticks(svg) == ["18:00", "00:00", "06:00", "12:00"]


def test_a_week_ticks_at_midnights() -> None:
    pts = [(T1 - 7 * DAY + 3600 * i, 1.0) for i in range(168)]
    assert ticks(chart(pts, T1 - 7 * DAY, T1)) == ["30/11"] + [f"{d:02d}/12" for d in range(1, 7)]
