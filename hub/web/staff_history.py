"""The as-run log (``/app/history``) and its CSV export for the commune (``/app/history.csv``).

Read from :func:`hub.store.read_models.logged`; dates in the filter are village dates,
both included. Each row links to its announcement's page (``/app/announcements/{id}``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from hub.app import Hub
from hub.broadcast.recurrence import local_naive, to_utc
from hub.clock import local_time
from hub.store import read_models
from hub.store.read_models import Logged
from hub.web.forms import parse_date
from hub.web.render import hub_of, render, translator
from hub.web.session import require_page
from hub.web.staff_announcement import aired_row
from hub.web.staff_words import detail_text, zones_text
from hub.words import Translator

router = APIRouter(include_in_schema=False)

BROADCAST_STATUSES = ("played", "missed", "preempted", "failed", "cancelled", "interrupted")
#: Rows on the history page (the CSV export has them all, up to EXPORT_ROWS).
HISTORY_ROWS = 300
EXPORT_ROWS = 50_000
HISTORY_COLUMNS = (
    "scheduled",
    "started",
    "ended",
    "status",
    "title",
    "priority",
    "zones",
    "detail",
)


@dataclass(frozen=True, slots=True)
class LogFilter:
    status: str | None
    since: date | None
    until: date | None

    @classmethod
    def of(cls, status: str, since: str, until: str) -> LogFilter:
        return cls(
            status if status in BROADCAST_STATUSES else None,
            parse_date(since),
            parse_date(until),
        )

    def query(self) -> dict[str, str]:
        q = {"status": self.status or "", "from": "", "to": ""}
        if self.since:
            q["from"] = self.since.isoformat()
        if self.until:
            q["to"] = self.until.isoformat()
        return {k: v for k, v in q.items() if v}

    def lines(self, hub: Hub, limit: int) -> list[Logged]:
        """The playout log's lines this filter keeps, newest first."""
        tz = hub.settings.tz
        since = until = None
        if self.since:
            since = to_utc(datetime.combine(self.since, time()), tz).timestamp()
        if self.until:
            until = to_utc(datetime.combine(self.until + timedelta(days=1), time()), tz)
        return read_models.logged(
            hub.store,
            since=since,
            until=until.timestamp() if until else None,
            status=self.status,
            limit=limit,
        )


def _filter(request: Request) -> LogFilter:
    q = request.query_params
    return LogFilter.of(q.get("status", ""), q.get("from", ""), q.get("to", ""))


def _local(ts: float, tz: tzinfo) -> datetime:
    return local_time(ts, tz)


@router.get("/app/history", response_class=HTMLResponse)
def history_page(request: Request) -> HTMLResponse:
    hub = hub_of(request)
    session = require_page(request, hub, "head", "technician")
    t = translator(request)
    flt = _filter(request)
    rows = flt.lines(hub, HISTORY_ROWS + 1)
    now = hub.clock.now().timestamp()
    return render(
        request,
        "staff_history.html",
        t=t,
        session=session,
        active="schedule",
        data={"page": "history"},
        flt=flt,
        statuses=BROADCAST_STATUSES,
        rows=[
            {
                "title": r.title,
                "priority": r.priority,
                "id": r.announcement_id,
                **aired_row(
                    t,
                    hub,
                    now,
                    status=r.status,
                    scheduled_for=r.scheduled_for,
                    started_at=r.started_at,
                    ended_at=r.ended_at,
                    zones=r.zones,
                    detail=r.detail,
                ),
            }
            for r in rows[:HISTORY_ROWS]
        ],
        more=len(rows) > HISTORY_ROWS,
        export=f"/app/history.csv?{urlencode(flt.query())}" if flt.query() else "/app/history.csv",
    )


def _local_stamp(ts: float | None, tz: tzinfo) -> str:
    """2026-12-01 19:30:00 in village time: what a spreadsheet reads as a date and time."""
    return "" if ts is None else f"{_local(ts, tz):%Y-%m-%d %H:%M:%S}"


def as_run_csv(hub: Hub, t: Translator, rows: Sequence[Logged]) -> str:
    """The as-run report: a header row, then one line per broadcast; the caller adds the BOM."""
    tz = hub.settings.tz
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow([t(f"hist.col.{c}") for c in HISTORY_COLUMNS])
    for r in rows:
        w.writerow(
            [
                _local_stamp(r.scheduled_for, tz),
                _local_stamp(r.started_at, tz),
                _local_stamp(r.ended_at, tz),
                t(f"bc.{r.status}"),
                r.title,
                t(f"prio.{r.priority}"),
                zones_text(t, r.zones, hub.settings.gpio.zone_names),
                detail_text(t, r.detail),
            ]
        )
    return out.getvalue()


@router.get("/app/history.csv")
def history_csv(request: Request) -> Response:
    """The as-run report for the commune: UTF-8 with a BOM (so Excel reads the accents)."""
    hub = hub_of(request)
    require_page(request, hub, "head", "technician")
    t = translator(request)
    flt = _filter(request)
    body = "\ufeff" + as_run_csv(hub, t, flt.lines(hub, EXPORT_ROWS))
    stamp = (
        "_".join(x.isoformat() for x in (flt.since, flt.until) if x)
        or local_naive(hub.clock.now(), hub.settings.tz).date().isoformat()
    )
    name = f"phat-thanh_{hub.settings.site}_{stamp}.csv"
    return Response(
        body.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
