"""Keeping a shared Talon.One deployment from being overrun: a request-rate cap and an adaptive
(AIMD) limit on the calls in flight.

* :class:`RateLimiter` spaces calls to at most ``rate_per_s`` on average, letting ``burst``
  calls through at once after a quiet spell (the generic cell rate algorithm: one "theoretical
  arrival time" instead of a bucket of tokens, so it needs no timer).
* :class:`AdaptiveConcurrency` is the limit on calls in flight: it shrinks multiplicatively when
  Talon.One says it is overloaded (429, or — when a latency threshold is set — a call slower
  than that) and grows back additively, by one call per limit's worth of successful calls, as
  TCP's congestion window does. It only grows while the limit is actually used, so a quiet
  worker does not build up a limit it never tested.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

__all__ = ["AdaptiveConcurrency", "RateLimiter"]


class RateLimiter:
    """At most ``rate_per_s`` calls a second on average, ``burst`` at once.

    Over any interval of ``T`` seconds at most ``burst + T * rate_per_s`` calls are let through.
    """

    def __init__(
        self,
        rate_per_s: float,
        *,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self._interval = 1.0 / rate_per_s
        self._tolerance = (burst - 1) * self._interval
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0  # the theoretical arrival time of the next call
        #: Calls that had to wait, and the seconds they waited in all.
        self.delayed = 0
        self.waited_s = 0.0

    def reserve(self) -> float:
        """Book the next slot; the seconds to wait before using it."""
        now = self._clock()
        start = max(self._next, now)
        self._next = start + self._interval
        return max(0.0, start - now - self._tolerance)

    async def acquire(self) -> None:
        """Wait for this call's slot."""
        wait = self.reserve()
        if wait > 0:
            self.delayed += 1
            self.waited_s += wait
            await self._sleep(wait)


class AdaptiveConcurrency:
    """An AIMD limit on calls in flight between ``minimum`` and ``maximum``.

    Args:
        maximum: the ceiling (and the starting limit).
        minimum: the floor it never shrinks below.
        backoff: the factor applied on overload.
        latency_threshold_s: a successful call slower than this counts as overload
            (``None``: only 429 does).
        cooldown_s: at most one decrease per this many seconds, so one burst of 429s (all the
            calls of one window) halves the limit once, not once per call.
        clock: monotonic seconds.
    """

    def __init__(
        self,
        maximum: int,
        *,
        minimum: int = 1,
        backoff: float = 0.5,
        latency_threshold_s: float | None = None,
        cooldown_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= minimum <= maximum:
            raise ValueError("need 1 <= minimum <= maximum")
        if not 0 < backoff < 1:
            raise ValueError("backoff must be between 0 and 1")
        self.maximum = maximum
        self.minimum = minimum
        self._backoff = backoff
        self._threshold = latency_threshold_s
        self._cooldown = cooldown_s
        self._clock = clock
        self._limit = float(maximum)
        self._last_decrease = -float("inf")
        self.in_flight = 0
        #: How many times the limit was cut.
        self.decreases = 0

    @property
    def limit(self) -> int:
        """Calls allowed in flight now."""
        return int(self._limit)

    def started(self) -> None:
        self.in_flight += 1

    def succeeded(self, latency_s: float) -> None:
        """A call answered (any status but 429) after ``latency_s``."""
        self.in_flight -= 1
        if self._threshold is not None and latency_s > self._threshold:
            self._decrease()
        elif self.in_flight + 1 >= self._limit / 2:
            self._limit = min(float(self.maximum), self._limit + 1.0 / self._limit)

    def overloaded(self) -> None:
        """A call answered 429."""
        self.in_flight -= 1
        self._decrease()

    def failed(self) -> None:
        """A call got no answer: says nothing about load."""
        self.in_flight -= 1

    def _decrease(self) -> None:
        now = self._clock()
        if now - self._last_decrease < self._cooldown or self._limit <= self.minimum:
            return
        self._last_decrease = now
        self._limit = max(float(self.minimum), self._limit * self._backoff)
        self.decreases += 1
