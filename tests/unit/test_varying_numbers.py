"""Which numbers of the emergency texts ahead get frames: the value's, not the fixed ones."""

from __future__ import annotations

from audio.segments import varying_numbers

GAUGE = "Mực nước tại cảm biến số {n} đã lên {v} cm, vượt báo động 2."


def test_a_rules_texts_for_one_device_vary_at_the_value_only() -> None:
    texts = [("flood/wl-1", GAUGE.format(n=1, v=v)) for v in (220, 221, 222)]
    texts += [("flood/wl-2", GAUGE.format(n=2, v=v)) for v in (220, 221)]
    varying = varying_numbers(texts)
    # Numbers: the gauge's, the level, the alarm level. Two gauges with the same words do
    # not make the gauge's number vary: each is its own group.
    assert {tuple(v) for v in varying.values()} == {(1,)}


def test_a_text_alone_or_with_nothing_varying_keeps_every_number() -> None:
    alone = ("button/", "Báo cháy ở đội 3, khu 2.")
    varying = varying_numbers([alone, ("x/", "Mưa 50 mm.")])
    assert varying[alone] == [0, 1]
    same = [("r/d", "Còn 5 phút."), ("r/d", "Còn 5 phút.")]
    assert varying_numbers(same)[same[0]] == []
