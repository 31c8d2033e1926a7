"""The one rate limiter (hub/ratelimit.py): limits, window expiry on a fake clock, bounds."""

from __future__ import annotations

import threading

import pytest

from hub.clock import FakeClock
from hub.ratelimit import RateLimiter


def test_a_key_gets_its_limit_then_waits_until_the_first_hit_leaves_the_window() -> None:
    clock = FakeClock()
    limiter = RateLimiter(3, 60.0, clock=clock.monotonic)
    assert [limiter.hit("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    clock.advance(10)
    assert limiter.hit("a") == pytest.approx(50.0)
    assert limiter.hit("b") == 0.0  # other keys have their own window
    clock.advance(49.5)
    assert limiter.wait("a") == pytest.approx(0.5)
    clock.advance(0.5)
    assert limiter.wait("a") == 0.0  # all three left the window together
    assert [limiter.hit("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.hit("a") == pytest.approx(60.0)


def test_a_refused_hit_is_not_counted() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1, 60.0, clock=clock.monotonic)
    assert limiter.hit("a") == 0.0
    for _ in range(100):
        clock.advance(0.5)
        assert limiter.hit("a") > 0
    clock.advance(10.0)  # 60 s after the one counted hit
    assert limiter.hit("a") == 0.0


def test_failures_counted_with_add_block_until_reset() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2, 300.0, clock=clock.monotonic)
    assert limiter.wait("name\x00addr") == 0.0
    limiter.add("name\x00addr")
    clock.advance(1)
    limiter.add("name\x00addr")
    assert limiter.wait("name\x00addr") == pytest.approx(299.0)
    limiter.reset("name\x00addr")
    assert limiter.wait("name\x00addr") == 0.0
    assert len(limiter) == 0


def test_the_global_limit_holds_for_all_keys_together() -> None:
    clock = FakeClock()
    limiter = RateLimiter(5, 60.0, global_limit=2, clock=clock.monotonic)
    assert limiter.hit("x") == 0.0 and limiter.hit("y") == 0.0
    clock.advance(10)
    assert limiter.hit("z") == pytest.approx(50.0)
    clock.advance(50)
    assert limiter.hit("z") == 0.0


def test_an_explicit_now_is_the_clock() -> None:
    limiter = RateLimiter(2, 60, max_keys=3)
    for key in ("a", "b", "c", "d"):
        assert limiter.hit(key, 0.0) == 0.0
    assert len(limiter) == 3  # "a" was forgotten first
    assert limiter.hit("d", 1.0) == 0.0 and limiter.hit("d", 2.0) == pytest.approx(58.0)
    assert limiter.hit("d", 60.5) == 0.0  # the first hit left the window


def test_the_number_of_keys_and_stamps_is_capped_whatever_arrives() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1, 60.0, max_keys=100, clock=clock.monotonic)
    limiter.hit("kept")
    for i in range(10_000):
        limiter.add(f"sender-{i}")
        if i % 50 == 0:
            limiter.wait("kept")  # asked about now and then: not forgotten before others
    assert len(limiter) == 100
    assert limiter.wait("sender-0") == 0.0  # the least recently seen were forgotten first
    assert limiter.wait("sender-9999") > 0 and limiter.wait("kept") > 0
    for _ in range(1_000):
        limiter.add("kept")
    assert len(limiter._hits["kept"]) == 1  # never more stamps than the limit


def test_it_is_thread_safe() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1000, 60.0, global_limit=1000, max_keys=10, clock=clock.monotonic)
    allowed: list[int] = []

    def hammer(n: int) -> None:
        allowed.append(sum(limiter.hit(f"k{(n + i) % 20}") == 0.0 for i in range(500)))

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 1000  # exactly the global limit, no more, no less
    assert len(limiter) <= 10


def test_nonsense_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="limit"):
        RateLimiter(0, 60)
    with pytest.raises(ValueError, match="window"):
        RateLimiter(1, 0)
