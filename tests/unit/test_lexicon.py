"""The village's own words (audio/lexicon.py) and the CSV the head imports
(hub/services/lexicon.py): whole words in any case, entries with dots and spaces, the
longest first, said once; a bad line named."""

from __future__ import annotations

import pytest

from audio.lexicon import EMPTY, compile_lexicon
from hub.services.lexicon import (
    MAX_CSV_BYTES,
    MAX_ENTRIES,
    LexiconRefused,
    LexiconTooLarge,
    check_entry,
    parse_csv,
)

VILLAGE = compile_lexicon(
    [
        ("Đ.Đông", "xóm Đồng Đông"),
        ("Đông", "Đông Thượng"),
        ("X. Đông", "xóm Đông"),
        ("TYT", "trạm y tế"),
        ("đ/c", "đồng chí"),
        ("Tr.", "trưởng"),
        ("Nguyễn", "Nguyễn Văn"),
    ]
)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        # whole words only: not inside a longer word, Vietnamese letters included
        ("Đôngg và XĐông", "Đôngg và XĐông"),
        ("Trạm TYTx, TYT.", "Trạm TYTx, trạm y tế."),
        ("đông", "Đông Thượng"),
        # any case; the Icelandic eth some keyboards type for Đ
        ("tyt xã", "trạm y tế xã"),
        ("ĐÔNG", "Đông Thượng"),
        ("Ðông", "Đông Thượng"),
        # entries with dots, slashes and spaces; a space matches any run of spaces
        ("họp ở Đ.Đông", "họp ở xóm Đồng Đông"),
        ("gửi Đ/C Ba", "gửi đồng chí Ba"),
        ("X.   Đông nhé", "xóm Đông nhé"),
        # an entry ending in a dot needs no space after it; words never run together
        ("Tr.Đông", "trưởng Đông Thượng"),
        # the longest entry first, and once: "Nguyễn Văn" is not read again as "Nguyễn"
        ("ông Nguyễn", "ông Nguyễn Văn"),
        ("ông Nguyễn Nguyễn", "ông Nguyễn Văn Nguyễn Văn"),
        # decomposed (NFD) text from a phone matches too
        ("Đ\u00f4\u0300ng Đ.Đ\u006f\u0302\u006eg", "Đồng xóm Đồng Đông"),
    ],
)
def test_the_matcher(text: str, said: str) -> None:
    assert VILLAGE.apply(text) == said


def test_a_text_without_entries_is_left_as_given() -> None:
    nfd = "Đo\u0302ng"  # not NFC, and no entry: the render cache key does not move
    assert compile_lexicon([("TYT", "trạm y tế")]).apply(nfd) == nfd
    assert EMPTY.apply(nfd) == nfd
    assert not EMPTY
    assert VILLAGE.used_in("X. Đông và đông, TYT") == ["x. đông", "đông", "tyt"]


def test_a_later_spelling_of_a_word_wins_and_compiling_is_cached() -> None:
    lex = compile_lexicon([("tyt", "a"), ("TYT", "trạm y tế")])
    assert lex.entries == (("TYT", "trạm y tế"),)
    assert compile_lexicon([("TYT", "trạm y tế")]) is lex


@pytest.mark.parametrize(
    ("word", "say", "reason"),
    [
        ("", "x", "word_empty"),
        ("a" * 41, "x", "word_long"),
        ("...", "x", "no_letter"),
        ("TYT\x00", "x", "control"),
        ("TYT", "   ", "say_empty"),
        ("TYT", "x" * 201, "say_long"),
        ("TYT", "trạm\u200by tế", "control"),
    ],
)
def test_entries_are_checked(word: str, say: str, reason: str) -> None:
    with pytest.raises(LexiconRefused) as e:
        check_entry(word, say)
    assert e.value.reason == reason


def test_a_csv_with_or_without_bom_and_header() -> None:
    body = "word,say,note\r\nĐ.Đông,xóm Đồng Đông,tên xóm\r\n\r\nTYT,trạm y tế\r\n"
    for data in (body.encode(), b"\xef\xbb\xbf" + body.encode(), body.split("\r\n", 1)[1].encode()):
        entries = parse_csv(data)
        assert [(e.word, e.say, e.note) for e in entries] == [
            ("Đ.Đông", "xóm Đồng Đông", "tên xóm"),
            ("TYT", "trạm y tế", None),
        ]


@pytest.mark.parametrize(
    ("data", "line", "reason"),
    [
        ("từ,cách đọc\nTYT,trạm y tế\nĐ.Đông\n".encode(), 3, "columns"),
        (b"TYT,tram\nA,b,c,d\n", 2, "columns"),
        ("TYT,trạm y tế\ntyt,lại\n".encode(), 2, "twice"),
        (b"TYT,ok\n\nHTX,\n", 3, "say_empty"),
        (b"TYT,ok\nHTX,h\xe1p t\xe1c\n", 2, "not_utf8"),
        (b'TYT,"open\n', 1, "csv"),
    ],
)
def test_a_bad_csv_line_is_named(data: bytes, line: int, reason: str) -> None:
    with pytest.raises(LexiconRefused) as e:
        parse_csv(data)
    assert (e.value.line, e.value.reason) == (line, reason)
    assert f"line {line}: " in str(e.value)


def test_csv_limits() -> None:
    with pytest.raises(LexiconTooLarge):
        parse_csv(b"a,b\n" * (MAX_CSV_BYTES // 4 + 1))
    with pytest.raises(LexiconTooLarge) as e:
        parse_csv("".join(f"w{i},s\n" for i in range(MAX_ENTRIES + 1)).encode())
    assert f"line {MAX_ENTRIES + 1}" in str(e.value)
