"""The village head's live broadcast page (``/app/live``): choose the zones, press "Phát trực
tiếp", speak. ``static/live.js`` opens the microphone (an AudioWorklet,
``static/live-worklet.js``: 16 kHz mono PCM, 40 ms a message) and the WebSocket of
:mod:`hub.api.live`, and says what is true at each moment: connecting, waiting, the chime,
on air (a level meter and the time), stopped, cut by an emergency, the connection lost,
refused (another live broadcast, no microphone, not allowed).

Only head and admin open it (the technicians' 403 page says why). Without JavaScript, or
without a microphone the browser will give (an ``http://`` address other than localhost:
browsers give a page's script the microphone only over HTTPS), the page says so.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from hub import __version__
from hub.api.live import service
from hub.broadcast.live import REASONS
from hub.web.render import hub_of, render, translator
from hub.web.session import require_page
from hub.words import Translator

router = APIRouter(include_in_schema=False)

#: The page's states, as its script shows them (``live.state.*`` in hub/words/live.json).
STATES = ("idle", "mic", "connecting", "waiting", "opening", "on_air", "stopping", "finishing")
#: Why the page could not start (``live.refused.*``).
REFUSALS = ("busy", "forbidden", "no_mic", "mic_denied", "unsupported", "signed_out", "other")


def script_words(t: Translator) -> dict[str, str]:
    """Every word live.js shows, in the page's language."""
    keys = [f"onair.state.{s}" for s in STATES]
    keys += [f"onair.end.{r}" for r in REASONS] + [f"onair.refused.{r}" for r in REFUSALS]
    keys += ["onair.recording", "onair.again", "onair.elapsed", "onair.start", "onair.stop"]
    return {k: t(k) for k in keys}


@router.get("/app/live", response_class=HTMLResponse)
def live_page(request: Request) -> HTMLResponse:
    hub = hub_of(request)
    session = require_page(request, hub, "head")
    t = translator(request)
    live = service(hub)
    names = hub.settings.gpio.zone_names
    zones = [(z, names.get(z, z)) for z in hub.settings.gpio.zones]
    return render(
        request,
        "staff_live.html",
        t=t,
        session=session,
        active="compose",
        zones=zones,
        available=live is not None and hub.settings.live.enabled,
        on_air=live.current if live is not None else None,
        max_min=f"{hub.settings.live.max_s / 60:g}",
        data={
            "live_words": script_words(t),
            "live_max_s": hub.settings.live.max_s,
            "live_version": __version__,
        },
    )
