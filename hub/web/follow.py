"""``/theo-doi``: how a resident follows the village on a phone, in words.

The calendar and the feed are files for apps; opened in a phone's browser they show raw
text. This page says what each is for and how to add it: the calendar with one tap where
the phone knows ``webcal:`` (iPhone), or by its address (Google Calendar, feed readers),
with a button that copies it.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from hub.web.public_pages import script_words
from hub.web.render import base_url, hub_of, render, translator
from hub.web.session import session_of

router = APIRouter(include_in_schema=False)


def village_only(url: str) -> bool:
    """An address only the village's wifi reaches (a private or loopback IP, ``.local``):
    a phone there can subscribe, Google's servers cannot fetch it."""
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith((".local", ".lan", ".home.arpa")):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_private or ip.is_loopback or ip.is_link_local


@router.get("/theo-doi", response_class=HTMLResponse)
def follow(request: Request) -> HTMLResponse:
    hub = hub_of(request)
    t = translator(request)
    base = base_url(request)
    calendar = f"{base}/calendar.ics"
    return render(
        request,
        "public_follow.html",
        t=t,
        session=session_of(request, hub),
        data={"page": "follow", "t": script_words(t.lang)},
        calendar=calendar,
        # webcal: asks the phone's calendar to subscribe (and to refresh it), not download.
        webcal="webcal://" + calendar.split("://", 1)[1],
        feed=f"{base}/feed.atom",
        village_only=village_only(base),
    )
