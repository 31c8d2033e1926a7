"""What the loudspeakers call a device: its spoken name, from a person's words or its kind.

The rules fill ``{device}`` with it when their text goes to the speech engine
(:mod:`hub.automation.actions`), and the device page shows it as the default of the
spoken-name field. A name a person gave (the technician's, the config file's) is read as
written, without the device id or a note in brackets; an unnamed device is said by what
it is and its number ("cảm biến mực nước số 1"), never by its id spelled out letter by
letter ("wl-không một"). The words are the table ``devices.json`` beside this module,
read once. Pure functions: any thread.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from hub.words import DEFAULT_LANG, HERE

#: The number at the end of an id ("wl-01" -> 1), at most four digits that stand alone.
_NUMBER = re.compile(r"(?<![0-9])([0-9]{1,4})$")
#: The letters an id starts with ("wl-01" -> "wl"): a gauge's kind, where installers say it.
_PREFIX = re.compile(r"^([a-z]+)(?:[-_.0-9]|$)")
_BRACKETED = re.compile(r"\([^)]*\)|\[[^\]]*\]")


@functools.cache
def _words(lang: str) -> Mapping[str, str]:
    data = json.loads((HERE / "devices.json").read_text(encoding="utf-8"))
    return MappingProxyType(data.get(lang) or data[DEFAULT_LANG])


def spoken_default(
    device_id: str, kind: str, metrics: Iterable[str] = (), lang: str = DEFAULT_LANG
) -> str:
    """An unnamed device as said aloud: what it is (by the id's prefix, else by what it
    measures, else by its kind) and the number its id ends with."""
    w = _words(lang)
    ident = device_id.strip().lower()
    prefix = _PREFIX.match(ident)
    what = (prefix and w.get(f"prefix.{prefix[1]}")) or next(
        (w[f"metric.{m}"] for m in sorted(metrics) if f"metric.{m}" in w), None
    )
    what = what or w.get(f"what.{kind}") or w["what.device"]
    number = None if ident.startswith("0x") else _NUMBER.search(ident)  # not a Zigbee address
    return w["numbered"].format(what=what, n=int(number[1])) if number else what


def spoken_name(
    device_id: str,
    kind: str,
    *,
    spoken: str | None = None,
    display: str | None = None,
    metrics: Iterable[str] = (),
    lang: str = DEFAULT_LANG,
) -> str:
    """What the loudspeakers say for a device: the spoken name a technician set, else its
    display name without the id and bracketed notes, else :func:`spoken_default`."""
    if spoken and spoken.strip():
        return " ".join(spoken.split())
    if display:
        said = _BRACKETED.sub(" ", display)
        said = re.sub(re.escape(device_id), " ", said, flags=re.IGNORECASE)
        said = " ".join(said.split()).strip(" -–·,:;/")
        if any(c.isalpha() for c in said):
            return said
    return spoken_default(device_id, kind, metrics, lang)
