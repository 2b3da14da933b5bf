"""The request-rate cap and the adaptive (AIMD) in-flight limit."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from talon_stream.talon._limits import AdaptiveConcurrency, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@given(
    rate=st.floats(min_value=0.5, max_value=1000),
    burst=st.integers(min_value=1, max_value=20),
    gaps=st.lists(st.floats(min_value=0, max_value=2), min_size=1, max_size=200),
)
def test_no_window_ever_holds_more_than_burst_plus_rate_times_its_length(
    rate: float, burst: int, gaps: list[float]
) -> None:
    clock = Clock()
    limiter = RateLimiter(rate, burst=burst, clock=clock)
    grants = []
    for gap in gaps:
        clock.now += gap
        wait = limiter.reserve()
        assert wait >= 0
        grants.append(clock.now + wait)
    interval = 1 / rate
    for i in range(len(grants)):
        # Grants stay in arrival order, and any n + burst of them span n intervals at least.
        for j in range(i + burst, min(len(grants), i + burst + 40)):
            assert grants[j] - grants[i] >= (j - i - (burst - 1)) * interval - 1e-6


def test_an_idle_limiter_lets_a_burst_through_then_spaces_calls() -> None:
    clock = Clock()
    limiter = RateLimiter(10, burst=3, clock=clock)
    waits = [round(limiter.reserve(), 6) for _ in range(5)]
    assert waits == [0, 0, 0, 0.1, 0.2]
    clock.now += 10  # a quiet spell refills the burst
    assert [round(limiter.reserve(), 6) for _ in range(3)] == [0, 0, 0]


async def test_acquire_waits_and_counts() -> None:
    slept: list[float] = []
    clock = Clock()

    async def sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))

    limiter = RateLimiter(4, clock=clock, sleep=sleep)
    await asyncio.gather(*(limiter.acquire() for _ in range(3)))
    assert slept == [0.25, 0.5]
    assert limiter.delayed == 2
    assert limiter.waited_s == pytest.approx(0.75)


def test_invalid_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="rate_per_s"):
        RateLimiter(0)
    with pytest.raises(ValueError, match="burst"):
        RateLimiter(1, burst=0)
    with pytest.raises(ValueError, match="minimum"):
        AdaptiveConcurrency(4, minimum=5)
    with pytest.raises(ValueError, match="backoff"):
        AdaptiveConcurrency(4, backoff=1)


def test_429_halves_the_limit_once_per_cooldown_down_to_the_floor() -> None:
    clock = Clock()
    limit = AdaptiveConcurrency(256, minimum=4, cooldown_s=1.0, clock=clock)
    assert limit.limit == 256
    for _ in range(50):  # one storm: every call of the window answered 429
        limit.started()
        limit.overloaded()
    assert limit.limit == 128
    for _ in range(10):
        clock.now += 1.5
        limit.started()
        limit.overloaded()
    assert limit.limit == 4
    assert limit.decreases == 6  # 256 → 128 → 64 → 32 → 16 → 8 → 4, then at the floor
    assert limit.in_flight == 0


def test_the_limit_grows_back_by_about_one_per_window_while_it_is_used() -> None:
    clock = Clock()
    limit = AdaptiveConcurrency(64, minimum=1, clock=clock)
    limit.started()
    limit.overloaded()
    assert limit.limit == 32
    # 32 calls in flight, each answered quickly: each window's worth of successes adds one.
    for _ in range(32):
        limit.started()
    for _ in range(64):
        limit.succeeded(0.05)
        limit.started()
    assert limit.limit == 33  # 32 + 1.97
    for _ in range(32):
        limit.succeeded(0.05)
    assert limit.in_flight == 0


def test_an_unused_limit_does_not_grow() -> None:
    limit = AdaptiveConcurrency(64, clock=Clock())
    limit.started()
    limit.overloaded()
    for _ in range(1000):  # one call at a time: far below half the limit
        limit.started()
        limit.succeeded(0.05)
    assert limit.limit == 32


def test_slow_calls_count_as_overload_when_a_threshold_is_set() -> None:
    clock = Clock()
    limit = AdaptiveConcurrency(100, latency_threshold_s=0.5, clock=clock)
    limit.started()
    limit.succeeded(0.2)
    assert limit.limit == 100
    limit.started()
    limit.succeeded(0.8)
    assert limit.limit == 50
    limit.started()
    limit.failed()  # no answer: says nothing about load
    assert limit.limit == 50


@given(
    st.lists(
        st.tuples(st.sampled_from(["ok", "slow", "429", "lost"]), st.floats(0, 3)),
        max_size=300,
    )
)
def test_the_limit_stays_within_its_bounds(events: list[tuple[str, float]]) -> None:
    clock = Clock()
    limit = AdaptiveConcurrency(50, minimum=3, latency_threshold_s=1.0, clock=clock)
    for kind, step in events:
        clock.now += step
        limit.started()
        if kind == "429":
            limit.overloaded()
        elif kind == "lost":
            limit.failed()
        else:
            limit.succeeded(2.0 if kind == "slow" else 0.1)
        assert 3 <= limit.limit <= 50
    assert limit.in_flight == 0
