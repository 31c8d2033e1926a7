"""Raw readings folded into a chart's buckets in one pass equal the reading-by-reading sum."""

from __future__ import annotations

import random

from hub.store.devices import Bucket, _merged, _raw_parts


def _reference(values: list[tuple[float, float]], t0: float, width: float, points: int) -> dict:
    acc: dict[int, list[float]] = {}
    for ts, v in values:
        a = acc.setdefault(min(int((ts - t0) / width), points - 1), [])
        a.append(v)
    return {k: (len(vs), min(vs), max(vs), sum(vs) / len(vs)) for k, vs in acc.items()}


def test_one_pass_buckets_equal_the_reference() -> None:
    rng = random.Random(7)
    for _ in range(300):
        t0, width, points = 1000.0, rng.choice([1.0, 7.3, 172.8]), rng.randint(1, 40)
        stamps = sorted(t0 + rng.uniform(0, width * points + 5) for _ in range(rng.randint(0, 200)))
        values = [(t, round(rng.uniform(-5, 5), 1)) for t in stamps]
        got: list[Bucket] = _merged(_raw_parts(values, t0, width, points), points)
        want = _reference(values, t0, width, points)
        assert len(got) == len(want) <= points
        for b, (n, lo, hi, mean) in zip(got, (want[k] for k in sorted(want)), strict=True):
            assert (b.n, b.min, b.max) == (n, lo, hi)
            assert abs(b.value - mean) < 1e-9
        # The newest reading is in the last bucket: nothing cut.
        if values:
            assert got[-1].max >= values[-1][1] >= got[-1].min
