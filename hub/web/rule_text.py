"""A rule as text, for the rules pages' advanced box: TOML (or JSON) in, TOML out, and every
refusal explained in the page's language, next to the line or the field it is about.

The rule's own checks stay the rule model's (:mod:`hub.automation.rule_model`) and the rule
book's: this module only turns their English reasons (pydantic's error types, the template
checker's messages, the TOML parser's "at line N, column M") into words a village head
reads. The edit form (:mod:`hub.web.rule_form`) uses the same words. No HTTP, no database.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any

import tomli_w
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from hub.automation.rule_model import Rule
from hub.automation.templates import PLACEHOLDERS
from hub.words import Translator
from hub.words.times import duration_text


class RuleTextError(ValueError):
    """Text that is no rule: the reason (English, as the API says it) and where it is."""

    def __init__(self, reason: str, *, syntax: str = "", line: int | None = None) -> None:
        super().__init__(reason)
        self.syntax, self.line = syntax, line


def rule_toml(rule: Rule) -> str:
    """A rule as TOML, for its edit box (what :func:`parse_rule_text` reads back)."""
    d = rule.model_dump(exclude_none=True)
    d["conditions"] = {k: v for k, v in d["conditions"].items() if v not in ([], None)}
    if not d["conditions"]:
        del d["conditions"]
    if not d.get("vars"):
        d.pop("vars", None)
    return tomli_w.dumps(d)


_TOML_AT = re.compile(r"\(at line (\d+), column \d+\)$")


def parse_rule_text(text: str) -> dict[str, Any]:
    """A rule typed as JSON (an object) or TOML (its keys, or one [[rules]] table)."""
    body = text.strip()
    if not body:
        raise RuleTextError("the rule is empty: paste it as TOML or JSON", syntax="empty")
    if body.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise RuleTextError(f"JSON: {e}", syntax="json", line=e.lineno) from None
        if not isinstance(data, dict):
            raise RuleTextError("JSON: give one object", syntax="json_object")
        return data
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = _TOML_AT.search(str(e))
        # "at end of document": something opened on some line was never closed.
        line = int(m[1]) if m else len(text.rstrip().splitlines())
        raise RuleTextError(f"TOML: {e}", syntax="toml", line=line) from None
    if "rules" in data:
        rules = data["rules"]
        if not isinstance(rules, list) or len(rules) != 1 or len(data) != 1:
            raise RuleTextError(
                "TOML: give one rule (a single [[rules]] table, or its keys)", syntax="one"
            )
        one: dict[str, Any] = rules[0]
        return one
    return data


# -- what is wrong, in words --------------------------------------------------------------
#: Fields whose numbers are seconds: their bounds are said as durations.
_SECONDS = ("for_s", "cooldown_s", "duration_s")


def _num(t: Translator, value: Any) -> str:
    return t.number(float(value), 3) if isinstance(value, int | float) else str(value)


def pydantic_reason(t: Translator, err: ErrorDetails) -> str:
    """One of the rule model's refusals, in the page's language."""
    kind, ctx = err["type"], err.get("ctx") or {}
    field = str(err["loc"][-1]) if err["loc"] else ""
    if kind in ("float_parsing", "float_type", "int_parsing", "int_type", "int_from_float"):
        return t("rules.err.number")
    if kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt", 0))
        return t("rules.err.min", n=_num(t, bound))
    if kind in ("less_than_equal", "less_than"):
        bound = ctx.get("le", ctx.get("lt", 0))
        if field in _SECONDS:
            return t("rules.err.max_time", d=duration_text(t, float(bound)))
        return t("rules.err.max", n=_num(t, bound))
    if kind == "string_too_short":
        return t("rules.err.empty")
    if kind == "string_too_long":
        return t("rules.err.too_long", n=ctx.get("max_length", ""))
    if kind in ("too_short", "too_long"):
        return t("rules.err.count")
    if kind == "literal_error":
        return t("rules.err.choice", options=ctx.get("expected", ""))
    if kind == "missing":
        return t("rules.err.missing")
    if kind == "extra_forbidden":
        return t("rules.err.extra")
    if kind == "string_pattern_mismatch":
        return t("rules.err.id") if field == "id" else t("rules.err.pattern")
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return t("rules.err.type", options=ctx.get("expected_tags", ""))
    if kind in ("bool_parsing", "bool_type"):
        return t("rules.err.bool")
    return t("rules.err.invalid")


def template_reason(t: Translator, reason: str) -> str:
    """The template checker's refusal (:func:`hub.automation.templates.check_template`)."""
    m = re.search(r"unknown placeholder '([^']*)'", reason)
    if m:
        return t("rules.err.tpl_unknown", name="{" + m[1] + "}", known=placeholder_list())
    m = re.search(r"longer than (\d+) characters", reason)
    if m:
        return t("rules.err.tpl_long", n=m[1])
    if "not allowed" in reason:
        return t("rules.err.tpl_plain")
    if reason.startswith("template:"):
        return t("rules.err.tpl_brace")
    return t("rules.err.invalid")


def placeholder_list(extra: Sequence[str] = ()) -> str:
    names = dict.fromkeys((*PLACEHOLDERS, *extra))
    return " ".join("{" + p + "}" for p in names)


def loc_text(loc: Sequence[int | str]) -> str:
    return ".".join(str(p) for p in loc)


def _line_of(text: str, line: int | None) -> str:
    lines = text.splitlines()
    if line is None or not 1 <= line <= len(lines):
        return ""
    return lines[line - 1].strip()[:120]


def explain_text(
    t: Translator, text: str, error: Exception, data: Mapping[str, Any] | None
) -> list[str]:
    """Why the rule typed as text was refused, in sentences: the line for a TOML or JSON
    mistake (and what is written there), the key and the reason for a rule that reads but
    does not hold. The English reason stays on the page too, for whoever wrote the TOML."""
    if isinstance(error, RuleTextError):
        if error.syntax in ("toml", "json"):
            out = [t(f"rules.err.syntax_{error.syntax}", line=error.line or 1)]
            shown = _line_of(text, error.line)
            if shown:
                out.append(t("rules.err.syntax_line", text=shown))
            return out
        if error.syntax in ("empty", "json_object", "one"):
            return [t(f"rules.err.text_{error.syntax}")]
    reason = str(error)
    for said, key in (
        ("a rule keeps its id", "rules.err.keeps_id"),
        ("exists: PATCH it", "rules.err.exists"),
        ("waits for the head's approval", "rules.err.awaiting_on"),
    ):
        if said in reason:
            return [t(key)]
    if data is not None:
        try:
            Rule.model_validate(data)
        except ValidationError as e:
            return [
                t("rules.err.at", key=loc_text(err["loc"]), why=pydantic_reason(t, err))
                for err in e.errors()[:5]
            ]
    key, sep, why = reason.partition(": ")
    if sep and re.fullmatch(r"[a-z_]+(\.\w+)*", key):
        said = template_reason(t, why) if key.endswith("template") else ""
        if "unknown zone" in why:
            said = t("rules.err.zone")
        if said:
            return [t("rules.err.at", key=key, why=said)]
    return [t("rules.err.hub")]
