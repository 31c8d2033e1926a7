"""``codec.find`` (one metric's value, the other values skipped) gives what decoding the
whole reading gives: ints stay ints, floats floats, every tag, codes past one byte."""

from __future__ import annotations

import random

from hub.store import codec


def test_find_agrees_with_decode() -> None:
    rng = random.Random(13)
    for _ in range(3000):
        vals: list[tuple[int, float]] = []
        for _ in range(rng.randrange(0, 12)):
            v = rng.choice(
                [
                    rng.randrange(-(10**12), 10**12),
                    round(rng.uniform(-1e4, 1e4), rng.randrange(0, 4)),
                    rng.uniform(-1, 1) * 1e-7,
                    -61,
                ]
            )
            vals.append((rng.randrange(1, 5000), v))
        blob = codec.encode(vals)
        decoded = codec.decode(blob)
        for code in {c for c, _ in vals} | {5001}:
            want = next((v for c, v in decoded if c == code), None)
            got = codec.find(blob, code)
            assert got == want and type(got) is type(want), (vals, code)
