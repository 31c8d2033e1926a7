"""An announcement's lengths in words, one way on every page: the recording as it was
uploaded ("Ghi âm 0:42") and the broadcast as the loudspeakers play it, chimes and repeats
included ("Phát 1:10 (cả chuông, đọc 2 lần)").

A recording, its broadcast and the broadcast's web copy are one program at three stages:
the upload is the voice alone; the render (``audio/render.py``) adds the chimes and says it
``repeat`` times (an emergency at least ``announcements.emergency_repeats`` times, as
``hub/broadcast/rendering.py`` renders it); the web copy is that render encoded again, so
its length is the broadcast's. Pages say the broadcast's length with its reason beside it,
never a bare second number that disagrees with another page.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.words import Translator
from hub.words.times import clock_text


@dataclass(frozen=True, slots=True)
class Lengths:
    """What the pages say of one announcement's audio."""

    #: "0:47 (cả chuông, đọc 2 lần)": the broadcast's length and what makes it longer.
    broadcast: str
    #: "Phát 0:47 (cả chuông, đọc 2 lần)": the same, as a line of its own.
    broadcast_line: str
    #: "Ghi âm 0:42" for an uploaded recording; "" for a text read by the hub.
    voice: str


def said_times(repeat: int, priority: str, emergency_repeats: int) -> int:
    """How many times the render says it (as ``hub.broadcast.rendering`` renders it)."""
    return max(repeat, emergency_repeats) if priority == "emergency" else repeat


def lengths(
    t: Translator,
    *,
    broadcast_s: float | None,
    recording_s: float | None,
    times: int,
    chimes: bool,
) -> Lengths:
    """The words for an announcement whose render lasts ``broadcast_s``, said ``times``
    times, with ``chimes`` or not; ``recording_s`` is the upload's own length (None when
    the hub reads a text)."""
    how = []
    if chimes:
        how.append(t("len.how.chimes"))
    if times > 1:
        how.append(t("len.how.times", n=times))
    broadcast = ""
    if broadcast_s:
        length = clock_text(broadcast_s)
        broadcast = t("len.full", length=length, how=", ".join(how)) if how else length
    return Lengths(
        broadcast=broadcast,
        broadcast_line=t("len.broadcast", length=broadcast) if broadcast else "",
        voice=t("len.voice", length=clock_text(recording_s)) if recording_s else "",
    )


def cut_text(t: Translator, seconds: float) -> str:
    """A broadcast cut short, in the same clock form: "dừng sau 0:12"."""
    return t("len.cut", length=clock_text(seconds))
