"""Rule templates: ``{name}`` placeholders filled from a flat table of texts, nothing more.

A device is named as the text's reader needs it: ``{device}`` (and ``{device.name}``) is
its display name in a notification and its spoken name in a text the loudspeakers read
(:func:`spoken_context`); ``{location}`` and ``{zone}`` say where it stands.

The rules engine fills them when a rule fires (ingest writer thread) and the rule checks
fill them with sample values when a rule is saved. The ``str.format`` braces are kept so
the rules read as before, but not its mini-language: a format spec (``{time:>300000000}``
pads to 300 MB), a conversion (``{value!r}``), an index or an attribute chain is refused,
and the output is capped. Pure functions: any thread.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

#: What a template may name (and, besides these, any of the rule's ``vars``).
PLACEHOLDERS = (
    "device",
    "device.id",
    "device.name",
    "device.spoken",
    "device.kind",
    "location",
    "zone",
    "value",
    "metric",
    "status",
    "level",
    "rule.name",
    "rule.id",
    "time",
    "state",
)

#: The most characters a filled template gives: a rule is refused when its sample output is
#: longer, and at run time the output is cut here (a device name can grow after the check).
OUTPUT_MAX = 1000

#: Sample values of the device's names, for checks whose sample context predates them: a
#: rule may name them whichever way it is checked.
NAME_SAMPLES = {
    "device": "Cầu Đông",
    "device.spoken": "cầu Đông",
    "location": "bến đò",
    "zone": "Xóm Đông",
}

_PARSE = string.Formatter().parse


def _known() -> str:
    return ", ".join("{" + p + "}" for p in PLACEHOLDERS)


def _fill(template: str, ctx: Mapping[str, str], limit: int) -> tuple[str, bool]:
    """The template filled, cut at ``limit`` (and whether it had to be cut); ValueError
    naming the placeholder that is not a plain named field."""
    out: list[str] = []
    room = limit
    try:
        parts = list(_PARSE(template))
    except ValueError as e:
        raise ValueError(f"template: {e} (write {{{{ or }}}} for a brace itself)") from None
    for literal, name, spec, conversion in parts:
        value = ""
        if name is not None:
            value = _field(name, spec, conversion, ctx)
        for piece in (literal, value):
            if len(piece) > room:
                # Past the cap: keep what fits, copy no more of a long value than that.
                out.append(piece[:room])
                return "".join(out), True
            out.append(piece)
            room -= len(piece)
    return "".join(out), False


def _field(name: str, spec: str | None, conversion: str | None, ctx: Mapping[str, str]) -> str:
    shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
    shown += "}"
    if conversion is not None:
        raise ValueError(
            f"placeholder {shown}: a conversion (!{conversion}) is not allowed; write {{{name}}}"
        )
    if spec:
        raise ValueError(
            f"placeholder {shown}: a format spec (:{spec}) is not allowed; write {{{name}}}"
        )
    if not name or "[" in name or any(not p or not p[0].isalpha() for p in name.split(".")):
        raise ValueError(f"placeholder {shown} is not allowed: use {_known()} or a var")
    if name not in ctx:
        raise ValueError(f"unknown placeholder {name!r}; use {_known()} or a name from vars")
    return str(ctx[name])


def check_template(template: str, ctx: Mapping[str, str], *, limit: int = OUTPUT_MAX) -> str:
    """The template filled with sample values; ValueError when it names anything but a
    plain field, or when its output would pass ``limit`` characters."""
    text, over = _fill(template, {**NAME_SAMPLES, **ctx}, limit)
    if over:
        raise ValueError(f"the text it makes is longer than {limit} characters; shorten it")
    return text


def render_template(template: str, ctx: Mapping[str, str], *, limit: int = OUTPUT_MAX) -> str:
    """The template filled from ``ctx``, cut at ``limit`` characters; ValueError naming what
    is wrong with it (a saved rule was checked already, so only for a template not saved)."""
    return _fill(template, ctx, limit)[0]


def reads_value(template: str) -> bool:
    """Whether the template says the reading (``{value}``): a text no render ahead can
    foresee whole, assembled when it fires (``hub/broadcast/rendering.py``)."""
    try:
        return any(name == "value" for _, name, _, _ in _PARSE(template))
    except ValueError:
        return False


def spoken_context(ctx: Mapping[str, str]) -> dict[str, str]:
    """The context of a text the loudspeakers read: the device by its spoken name."""
    spoken = ctx.get("device.spoken") or ctx.get("device", "")
    return {**ctx, "device": spoken, "device.name": spoken}


def value_text(v: float | None) -> str:
    """A reading as a villager says it: the Vietnamese decimal comma (1,5 m)."""
    if v is None:
        return ""
    return f"{v:g}".replace(".", ",")
