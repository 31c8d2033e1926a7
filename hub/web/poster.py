"""QR codes to the residents' pages, and ``/poster``: the one to print for the cultural house."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from hub.web.render import base_url, hub_of, render, translator
from hub.web.session import session_of

router = APIRouter(include_in_schema=False)

#: The QR code: medium error correction (raised when it fits the same size), a quiet zone
#: of 4 modules (ISO/IEC 18004), white behind it whatever the page's colour.
QR_MAKE: Mapping[str, Any] = {"error": "m", "boost_error": True, "micro": False}
QR_SVG: Mapping[str, Any] = {
    "border": 4,
    "dark": "#000",
    "light": "#fff",
    "omitsize": True,
    "svgclass": "qr-code",
}


@lru_cache(maxsize=256)
def qr_svg(url: str, title: str) -> Markup:
    """The URL as a QR code, an inline SVG (no script, no style: fine under the CSP).
    segno is imported at the first QR code drawn, not at start-up (with the xml.sax it
    needs: about 0.6 MB of resident memory)."""
    import segno

    return Markup(segno.make(url, **QR_MAKE).svg_inline(title=title, **QR_SVG))


def loopback_host(url: str) -> str | None:
    """The host of ``url`` when only the hub itself can open it (127.0.0.1, localhost, ::1):
    a poster printed with it sends every resident's phone to their own phone."""
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return host
    try:
        return host if ipaddress.ip_address(host).is_loopback else None
    except ValueError:
        return None


@router.get("/poster", response_class=HTMLResponse)
def poster(request: Request) -> HTMLResponse:
    hub = hub_of(request)
    t = translator(request)
    url = base_url(request) + "/"
    return render(
        request,
        "public_poster.html",
        t=t,
        session=session_of(request, hub),
        data={"page": "poster"},
        url=url,
        address=url.split("://", 1)[-1].rstrip("/"),
        qr=qr_svg(url, t("pub.poster.scan")),
        local_host=loopback_host(url),
    )
