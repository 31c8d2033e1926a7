"""Rule templates: ``str.format`` placeholders, filled without the format sandbox escapes.

The rules engine fills them when a rule fires (ingest writer thread) and the rule checks
fill them with sample values when a rule is saved. Pure functions: any thread.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from typing import Any

#: What a template may name (and, besides these, any of the rule's ``vars``).
PLACEHOLDERS = (
    "device.id",
    "device.name",
    "device.kind",
    "value",
    "metric",
    "status",
    "level",
    "rule.name",
    "time",
    "state",
    "vars",
)


class _SafeFormatter(string.Formatter):
    """str.format without the sandbox escapes: no ``_private`` attributes, no indexing."""

    def get_field(self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        if "[" in field_name or any(p.startswith("_") for p in field_name.split(".")):
            raise ValueError(f"placeholder {{{field_name}}} is not allowed")
        return super().get_field(field_name, args, kwargs)


_FORMATTER = _SafeFormatter()


def render_template(template: str, ctx: Mapping[str, Any]) -> str:
    """The template filled from ``ctx``; ValueError naming what is wrong with it."""
    try:
        return _FORMATTER.vformat(template, (), ctx)
    except (KeyError, AttributeError) as e:
        raise ValueError(
            f"unknown placeholder {e}; use {', '.join(PLACEHOLDERS)} or a name from vars"
        ) from None
    except (IndexError, ValueError) as e:
        raise ValueError(f"template: {e}") from None


def value_text(v: float | None) -> str:
    """A reading as a villager says it: the Vietnamese decimal comma (1,5 m)."""
    if v is None:
        return ""
    return f"{v:g}".replace(".", ",")
