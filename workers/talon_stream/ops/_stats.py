"""Counters a worker keeps about itself: what the demo shows and what ``/metrics`` exports.

They are plain attributes updated on the event loop (no locks, no label lookups per record);
:mod:`talon_stream.ops._metrics` turns them into Prometheus metrics when scraped.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LatencyHistogram", "WorkerStats"]

#: Upper bounds (seconds) of the call latency buckets: Talon.One answers in tens of ms.
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class LatencyHistogram:
    """Cumulative-bucket histogram of call latencies, as Prometheus exports them."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS_S) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, int]]:
        """``(le, count)`` pairs, ``le`` as Prometheus writes it, ending with ``+Inf``."""
        out = []
        total = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), total))
        return out


@dataclass
class WorkerStats:
    """Plain counters, updated on the event loop only (no locks needed)."""

    consumed: int = 0
    #: Envelopes on the effects topic, superseded ones included.
    effects_published: int = 0
    dead_lettered: int = 0
    #: Records not sent: a newer event of their session was already applied.
    superseded: int = 0
    #: Calls not made: cart updates that joined another record's call.
    calls_saved: int = 0
    #: ``customer.erased`` events applied (Talon.One deleted the customer's personal data).
    customers_erased: int = 0
    retries: int = 0
    calls: Counter[str] = field(default_factory=Counter)  # by operation
    #: Calls by Application, when the worker has several.
    calls_by_application: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)  # by HTTP status
    #: Calls by (operation, status); status 0 when no answer came.
    answers: Counter[tuple[str, int]] = field(default_factory=Counter)
    effect_types: Counter[str] = field(default_factory=Counter)
    dlq_reasons: Counter[str] = field(default_factory=Counter)  # by error class
    #: Retries by reason: the status that caused them, or "transport".
    retry_reasons: Counter[str] = field(default_factory=Counter)
    #: Records taken per (topic, partition).
    consumed_by_partition: Counter[tuple[str, int]] = field(default_factory=Counter)
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    #: The latest few envelopes (decoded), for a human to look at.
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=5))

    @property
    def outcomes(self) -> int:
        return self.effects_published + self.dead_lettered
