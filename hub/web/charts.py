"""Charts: a metric's time series as an inline SVG line chart, drawn on the server.

No JavaScript library and nothing fetched: the page arrives with its charts,
readable on a phone with scripts off. Time ticks are in the village's time zone;
a gap in the data (a device offline) is a gap in the line, not a straight jump.
Colours come from the stylesheet (classes), so the Content-Security-Policy can
forbid inline styles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from hub.clock import local_time

W, H = 360, 170
LEFT, RIGHT, TOP, BOTTOM = 46, 10, 12, 26  # the plot area's margins; values in the left one

Point = tuple[float, float]  # (epoch seconds UTC, value)


#: Tick steps within a day, in minutes: the first that gives at most MAX_TICKS is used.
STEPS_MIN = (1, 2, 5, 10, 15, 30, 60, 120, 180, 360)
MAX_TICKS = 6
#: Data covering less than this share of the asked span is drawn over its own time (a new
#: device's first minutes on a 24-hour chart would otherwise be a sliver at the edge).
ZOOM_BELOW = 0.25


def _ticks(t0: float, t1: float, tz: ZoneInfo) -> tuple[list[datetime], bool]:
    """Tick times at round local minutes or hours (up to 36 h) or local midnights; True
    for days."""
    span = t1 - t0
    if span <= 36 * 3600:
        step = next((m for m in STEPS_MIN if span / (m * 60) <= MAX_TICKS), STEPS_MIN[-1])
        days = False
    elif span <= 8 * 86_400:
        step, days = 24 * 60, True
    else:
        step, days = 7 * 24 * 60, True
    start = local_time(t0, tz)
    if days:
        local = start.replace(hour=0, minute=0, second=0, microsecond=0).replace(tzinfo=None)
    else:
        local = start.replace(second=0, microsecond=0, tzinfo=None)
        local -= timedelta(minutes=(local.hour * 60 + local.minute) % step)
    out: list[datetime] = []
    while True:
        local += timedelta(minutes=step)
        aware = local.replace(tzinfo=tz)
        ts = aware.timestamp()
        if ts > t1:
            return out, days
        if ts >= t0:
            out.append(aware)


def _segments(points: Sequence[Point], gap: float) -> list[list[Point]]:
    segs: list[list[Point]] = []
    for p in points:
        if segs and p[0] - segs[-1][-1][0] <= gap:
            segs[-1].append(p)
        else:
            segs.append([p])
    return segs


def line_chart(
    points: Sequence[Point],
    *,
    t0: float,
    t1: float,
    tz: ZoneInfo,
    label: str,
    unit: str,
    number: Callable[[float], str],
    day: Callable[[datetime], str],
    summary: Callable[[str, str, str], str],
    chart_id: str,
    gap_s: float | None = None,
) -> Markup:
    """An accessible SVG: ``<title>`` is the label, ``<desc>`` the min/max/latest summary.

    ``number`` formats a value in the page's language, ``day`` a date tick,
    ``summary(min, max, last)`` the sentence a screen reader says.
    """
    pts = sorted(p for p in points if t0 <= p[0] <= t1)
    if pts and t1 - pts[0][0] < (t1 - t0) * ZOOM_BELOW:
        # Little data yet: the chart spans the data (with a margin), its ticks say when.
        t0 = max(t0, pts[0][0] - max(60.0, (t1 - pts[0][0]) * 0.05))
    x0, x1 = LEFT, W - RIGHT
    y0, y1 = TOP, H - BOTTOM
    parts: list[str] = []

    def fmt(v: float) -> str:
        return f"{number(v)}{' ' + unit if unit else ''}"

    def x(ts: float) -> float:
        return x0 + (ts - t0) / (t1 - t0) * (x1 - x0) if t1 > t0 else x0

    # Time ticks: a faint vertical line and a label under the axis.
    ticks, days = _ticks(t0, t1, tz)
    for tick in ticks:
        tx = x(tick.timestamp())
        text = day(tick) if days else tick.strftime("%H:%M")
        parts.append(
            f'<line class="chart-grid" x1="{tx:.1f}" y1="{y0}" x2="{tx:.1f}" y2="{y1}"/>'
            f'<text class="chart-tick" x="{tx:.1f}" y="{H - 8}" text-anchor="middle">'
            f"{escape(text)}</text>"
        )
    parts.append(f'<line class="chart-axis" x1="{x0}" y1="{y1}" x2="{x1}" y2="{y1}"/>')

    desc = ""
    if pts:
        values = [v for _, v in pts]
        lo, hi = min(values), max(values)
        pad = (hi - lo) * 0.08 or (abs(hi) * 0.1 or 1.0)
        vlo, vhi = lo - pad, hi + pad

        def y(v: float) -> float:
            return y1 - (v - vlo) / (vhi - vlo) * (y1 - y0)

        # The highest and lowest values: dashed guides, their values in the left margin
        # (the unit is in the chart's caption).
        for v, cls in ((hi, "max"), (lo, "min")):
            gy = y(v)
            parts.append(
                f'<line class="chart-guide" x1="{x0}" y1="{gy:.1f}" x2="{x1}" y2="{gy:.1f}"/>'
                f'<text class="chart-value chart-{cls}" x="{x0 - 6}" y="{gy + 4:.1f}" '
                f'text-anchor="end">{escape(number(v))}</text>'
            )
        if gap_s is None:
            steps = sorted(b[0] - a[0] for a, b in pairwise(pts))
            gap_s = max(3 * steps[len(steps) // 2], (t1 - t0) / 60) if steps else t1 - t0
        for seg in _segments(pts, gap_s):
            if len(seg) == 1:
                ts, v = seg[0]
                parts.append(
                    f'<circle class="chart-dot" cx="{x(ts):.1f}" cy="{y(v):.1f}" r="2.5"/>'
                )
            else:
                coords = " ".join(f"{x(ts):.1f},{y(v):.1f}" for ts, v in seg)
                parts.append(f'<polyline class="chart-line" points="{coords}"/>')
        last_t, last_v = pts[-1]
        parts.append(
            f'<circle class="chart-last" cx="{x(last_t):.1f}" cy="{y(last_v):.1f}" r="4"/>'
        )
        desc = summary(fmt(lo), fmt(hi), fmt(last_v))
    cid = escape(chart_id)
    return Markup(
        f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" '
        f'aria-labelledby="{cid}-t {cid}-d" preserveAspectRatio="xMidYMid meet">'
        f'<title id="{cid}-t">{escape(label)}</title><desc id="{cid}-d">{escape(desc)}</desc>'
        + "".join(parts)
        + "</svg>"
    )
