"""Clarity on a horn speaker, the pure parts: where a spoken text has its sentence pauses
(``audio/sentences.py``), and a render cache key that follows the speaking rate and the
pause (``audio/render.py``), so a slower reading is never served from a faster one."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from audio.errors import InvalidSpec
from audio.render import RenderSpec, cache_key
from audio.sentences import join_wavs, split_sentences

SPLITS = [
    # Vietnamese punctuation: . ! ? … and a line break
    (
        "Bà con chú ý. Chiều nay mất điện! Có ai cần hỗ trợ không? Xin cảm ơn…",
        ["Bà con chú ý.", "Chiều nay mất điện!", "Có ai cần hỗ trợ không?", "Xin cảm ơn…"],
    ),
    ("Thông báo\nHọp dân lúc 19 giờ", ["Thông báo", "Họp dân lúc 19 giờ"]),
    ("Trời mưa to!!! Đề phòng lũ.", ["Trời mưa to!!!", "Đề phòng lũ."]),
    (
        'Trưởng thôn nói: "Đến sớm." Bà con ghi nhớ.',
        ['Trưởng thôn nói: "Đến sớm."', "Bà con ghi nhớ."],
    ),
    ("Đường ngập. 2 hộ phải di dời.", ["Đường ngập.", "2 hộ phải di dời."]),
    # decimals with either separator, times: no split
    ("Mực nước 2,5 m. Bà con chú ý.", ["Mực nước 2,5 m.", "Bà con chú ý."]),
    ("Lượng mưa 12.5 mm trong đêm.", ["Lượng mưa 12.5 mm trong đêm."]),
    ("Họp lúc 7.30 sáng mai. Đúng giờ.", ["Họp lúc 7.30 sáng mai.", "Đúng giờ."]),
    # abbreviations and initials: no split
    ("Đoàn về từ TP. Hồ Chí Minh. Bà con đón.", ["Đoàn về từ TP. Hồ Chí Minh.", "Bà con đón."]),
    ("Mời ThS. Lê Hoa nói chuyện.", ["Mời ThS. Lê Hoa nói chuyện."]),
    ("Ông Nguyễn V. An phát biểu.", ["Ông Nguyễn V. An phát biểu."]),
    ("Ở P. Tân Định đã xong.", ["Ở P. Tân Định đã xong."]),
    # a small one-letter word ends a sentence like any other
    ("Xin bà con chú ý. Sáng mai họp.", ["Xin bà con chú ý.", "Sáng mai họp."]),
    # a list number at the start of a line; a lower-case word after a stop
    ("1. Họp dân\n2. Nộp phí.", ["1. Họp dân", "2. Nộp phí."]),
    ("xem mục a. tiếp theo là b.", ["xem mục a. tiếp theo là b."]),
    ("  \n\n ", []),
]


@pytest.mark.parametrize(("text", "expected"), SPLITS, ids=[s[0][:24] for s in SPLITS])
def test_sentences_split_where_a_reader_pauses(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_sentences_join_with_the_pause_between(tmp_path: Path) -> None:
    parts = []
    for i, frames in enumerate((100, 300)):
        p = tmp_path / f"{i}.wav"
        with wave.open(str(p), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(1000)
            w.writeframes(b"\x01\x00" * frames)
        parts.append(p)
    out = tmp_path / "out.wav"
    join_wavs(parts, out, 0.25)
    with wave.open(str(out), "rb") as w:
        data = w.readframes(w.getnframes())
    assert data == b"\x01\x00" * 100 + b"\x00\x00" * 250 + b"\x01\x00" * 300


def test_the_cache_key_follows_rate_and_pause() -> None:
    text = "bà con chú ý. sáng mai họp."
    base = RenderSpec(text=text)
    keys = {
        cache_key(RenderSpec(text=text, **change), None, text)  # type: ignore[arg-type]
        for change in ({}, {"rate": 0.8}, {"rate": 1.2}, {"sentence_pause_s": 0.6})
    }
    assert len(keys) == 4
    assert cache_key(base, None, text) == cache_key(RenderSpec(text=text), None, text)
    # A recording is played as it is: rate and pause do not make another render of it.
    wav = Path(__file__)  # any file: the key hashes its bytes
    rec = [RenderSpec(source_wav=wav, rate=r) for r in (1.0, 0.8)]
    assert cache_key(rec[0], None, None) == cache_key(rec[1], None, None)


@pytest.mark.parametrize("bad", [{"rate": 0.1}, {"rate": 3.0}, {"sentence_pause_s": -1.0}])
def test_rates_and_pauses_out_of_range_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(InvalidSpec, match=r"rate|pause"):
        RenderSpec(text="x", **bad)  # type: ignore[arg-type]
