"""What the hub refused from MQTT (``/app/dead-letters``), for the technicians (a head may
read it): when, on which topic, from which device when the topic names a known one, why in
words a technician acts on, how big, and the payload shown safely.

Read from :mod:`hub.store.dead_letters` (the reasons sorted into kinds there); the devices
page and each device's page link here with a count (:func:`summary`). The payload is
shown as text when it is UTF-8 (control and format characters replaced, so a payload
cannot fake the page's lines or reverse its text; the template escapes the rest), else as
hex; both capped.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from hub.app import Hub
from hub.clock import iso
from hub.store import dead_letters as repo
from hub.store.devices import DeadLetter
from hub.web import views
from hub.web.render import hub_of, render, translator
from hub.web.session import require_page
from hub.words import Translator

router = APIRouter(include_in_schema=False)

#: Rows on one page (older ones a link away).
PAGE_ROWS = 50
#: The periods the page offers, in seconds; the table keeps ``retention.dead_letters_days``.
PERIODS: Mapping[str, float] = {"24h": 86_400.0, "7d": 7 * 86_400.0, "30d": 30 * 86_400.0}
#: What the devices pages count: the last day.
SUMMARY_S = PERIODS["24h"]
#: A payload as text, at most this many characters; as hex, this many bytes.
TEXT_CHARS = 600
HEX_BYTES = 96
#: A filter's typed text, at most (a topic may be long; no filter needs more).
FILTER_CHARS = 200


@dataclass(frozen=True, slots=True)
class Row:
    """One dead letter as the page shows it."""

    id: int
    when: str
    when_iso: str
    topic: str
    device_id: str | None
    device_name: str | None
    kind: str
    reason: str
    size: str
    payload: str
    binary: bool
    cut: bool


def _renames(hub: Hub) -> list[tuple[str, str]]:
    """(source name, device id) pairs of every adapter's ``rename``."""
    return [(src, dst) for a in hub.settings.adapters.values() for src, dst in a.rename.items()]


def device_of(topic: str, known: Mapping[str, str], renames: Mapping[str, str]) -> str | None:
    """The known device a topic names: a level that is its id, or a source name renamed to
    it (native ``village/{site}/ap/{id}/state``, Tasmota ``tele/{id}/SENSOR``...)."""
    for level in topic.split("/"):
        dev = renames.get(level, level)
        if dev in known:
            return dev
    return None


def payload_text(raw: bytes, size: int) -> tuple[str, bool, bool]:
    """(what to show, is it hex, was it cut): the stored bytes (the writer keeps the first
    ``ingest.dead_letter_bytes``) as safe text, else as hex."""
    cut = len(raw) < size
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        part = raw[:HEX_BYTES]
        lines = [part[i : i + 16].hex(" ") for i in range(0, len(part), 16)]
        return "\n".join(lines), True, cut or len(raw) > HEX_BYTES
    if len(text) > TEXT_CHARS:
        text, cut = text[:TEXT_CHARS], True
    # Line breaks and tabs stay; every other control or format character (a NUL, an
    # escape, a right-to-left override) becomes the replacement sign.
    safe = "".join(
        c if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cf") else "\ufffd" for c in text
    )
    return safe, False, cut


def size_text(t: Translator, n: int) -> str:
    if n < 1024:
        return t("dl.bytes", n=n)
    return t("dl.kib", n=t.number(n / 1024))


def count_text(t: Translator, n: int, period: str = "24h") -> str:
    """ "12 tin lỗi trong 24 giờ qua" (the count is capped: "10000+")."""
    if n == 0:
        return t(f"dl.none.{period}")
    shown = f"{repo.COUNT_CAP}+" if n >= repo.COUNT_CAP else str(n)
    return t(f"dl.count.{period}", n=shown)


def summary(hub: Hub, t: Translator, device_id: str | None = None) -> dict[str, object]:
    """The link the devices pages show: the last day's count, in words, and where it goes."""
    since = hub.clock.now().timestamp() - SUMMARY_S
    needles = repo.needles_of(device_id, _renames(hub)) if device_id else ()
    n = repo.count(hub.store.connection(), repo.Filter(since, needles=needles))
    url = "/app/dead-letters" + (f"?{urlencode({'device': device_id})}" if device_id else "")
    return {"n": n, "text": count_text(t, n), "url": url}


def _rows(hub: Hub, t: Translator, letters: list[DeadLetter]) -> list[Row]:
    known = {d.id: d.name for d in views.devices(hub)}
    renames = dict(_renames(hub))
    out = []
    for d in letters:
        dev = device_of(d.topic, known, renames)
        shown, binary, cut = payload_text(d.payload, d.size)
        out.append(
            Row(
                id=d.id,
                when=t.when(d.received_at, hub.settings.tz),
                when_iso=iso(d.received_at) or "",
                topic=d.topic,
                device_id=dev,
                device_name=known.get(dev) if dev else None,
                kind=repo.reason_kind(d.reason),
                reason=d.reason,
                size=size_text(t, d.size),
                payload=shown,
                binary=binary,
                cut=cut,
            )
        )
    return out


@router.get("/app/dead-letters", response_class=HTMLResponse)
def dead_letters_page(
    request: Request,
    period: str = "24h",
    topic: str = "",
    device: str = "",
    kind: str = "",
    before: int | None = None,
) -> HTMLResponse:
    hub = hub_of(request)
    session = require_page(request, hub, "technician", "head")
    t = translator(request)
    period = period if period in PERIODS else "24h"
    topic, device = topic.strip()[:FILTER_CHARS], device.strip()[:FILTER_CHARS]
    kind = kind if kind in repo.KINDS else ""
    since = hub.clock.now().timestamp() - PERIODS[period]
    needles = repo.needles_of(device, _renames(hub)) if device else ()
    flt = repo.Filter(since, topic=topic, needles=needles, kind=kind)
    conn = hub.store.connection()
    found = repo.page(conn, flt, before=before, limit=PAGE_ROWS + 1)
    query = {k: v for k, v in (("period", period), ("topic", topic), ("device", device)) if v}
    if kind:
        query["kind"] = kind
    older = (
        f"/app/dead-letters?{urlencode({**query, 'before': found[PAGE_ROWS - 1].id})}"
        if len(found) > PAGE_ROWS
        else ""
    )
    known = views.device(hub, device) if device else None
    return render(
        request,
        "staff_dead_letters.html",
        t=t,
        session=session,
        active="devices",
        data={"page": "dead-letters"},
        rows=_rows(hub, t, found[:PAGE_ROWS]),
        total=count_text(t, repo.count(conn, flt), period),
        period=period,
        periods=[(p, f"/app/dead-letters?{urlencode({**query, 'period': p})}") for p in PERIODS],
        topic=topic,
        device=device,
        device_name=known.name if known else "",
        device_url=f"/app/devices/{quote(device, safe='')}" if known else "",
        kind=kind,
        kinds=repo.KINDS,
        filtered=bool(topic or device or kind),
        paged=before is not None,
        first=f"/app/dead-letters?{urlencode(query)}" if query else "/app/dead-letters",
        older=older,
        may_see_devices=session.user.has("technician"),
    )
