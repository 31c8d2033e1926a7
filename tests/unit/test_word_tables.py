"""The word tables: a key is defined in one table only (a later table would silently
replace an earlier one's word on every page), and each table says everything in both
languages."""

from __future__ import annotations

from collections import Counter

from hub.words import LANGS, TABLES, table


def test_a_key_is_defined_in_one_table_only() -> None:
    for lang in LANGS:
        seen = Counter(k for name in TABLES for k in table(name)[lang])
        twice = sorted(k for k, n in seen.items() if n > 1)
        assert not twice, f"{lang}: keys in more than one table: {twice}"


def test_every_table_speaks_both_languages() -> None:
    for name in TABLES:
        vi, en = set(table(name)["vi"]), set(table(name)["en"])
        assert vi == en, f"{name}.json: only in vi {sorted(vi - en)}, only in en {sorted(en - vi)}"
