"""Counters a worker keeps about itself: what the demo shows and what ``/metrics`` exports.

They are plain attributes updated on the event loop (no locks, no label lookups per record);
:mod:`talon_stream.ops._metrics` turns them into Prometheus metrics when scraped.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MAX_DROPPED_NAMES",
    "OTHER_ATTRIBUTES",
    "STAGES",
    "LatencyHistogram",
    "StageLatency",
    "WorkerStats",
]

#: How many attribute names ``attributes_dropped_total`` tells apart; the later ones are
#: counted together as :data:`OTHER_ATTRIBUTES` (the names come from the records).
MAX_DROPPED_NAMES = 100
OTHER_ATTRIBUTES = "_other"

#: Upper bounds (seconds) of the call latency buckets: Talon.One answers in tens of ms.
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Upper bounds (seconds) of the stage buckets: most stages take well under a millisecond.
STAGE_BUCKETS_S = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.04,
    0.05,
    0.06,
    0.075,
    0.1,
    0.15,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
#: A record's way through the worker, in order (``talon_stream_stage_seconds{stage}``):
#:
#: * ``fetch``: from the record's timestamp to the worker taking it from the consumer (the
#:   broker, the fetch, and the event-time merge of co-partitioned topics);
#: * ``decode``: decoding and translating it;
#: * ``key_wait``: waiting for the customer's previous call (the per-customer order itself);
#: * ``slot_wait``: its customer free, waiting for a call slot and for its task to run;
#: * ``call``: the Talon.One call, retries included, until its answer is parsed;
#: * ``produce``: the outcome (envelope and routed copies, or DLQ record) until Kafka
#:   acknowledged it;
#: * ``commit``: the outcome acknowledged until the offset commit that covers the record.
STAGES = ("fetch", "decode", "key_wait", "slot_wait", "call", "produce", "commit")


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


class StageLatency:
    """One histogram per :data:`STAGES` entry, observed once per call the keyed dispatcher
    runs (a coalesced call counts once, for the record that leads it)."""

    __slots__ = ("_covered", "_finished", "histograms")

    def __init__(self) -> None:
        self.histograms = {stage: LatencyHistogram(STAGE_BUCKETS_S) for stage in STAGES}
        # perf_counter of each outcome not in a commit yet, and of those in the commit sent
        self._finished: list[float] = []
        self._covered: list[float] = []

    def observe(
        self,
        *,
        fetch: float | None,
        decode: float,
        key_wait: float,
        slot_wait: float,
        call: float,
        produce: float,
        finished: float,
    ) -> None:
        """One record's stages (seconds); ``finished``: when its outcome was acknowledged
        (``time.perf_counter``), for its ``commit`` stage."""
        histograms = self.histograms
        if fetch is not None:
            histograms["fetch"].observe(max(0.0, fetch))
        histograms["decode"].observe(decode)
        histograms["key_wait"].observe(key_wait)
        histograms["slot_wait"].observe(slot_wait)
        histograms["call"].observe(call)
        histograms["produce"].observe(produce)
        self._finished.append(finished)

    def covering(self) -> None:
        """A commit is being sent: it covers every outcome observed so far (and those of a
        commit sent before that was never answered)."""
        self._covered.extend(self._finished)
        self._finished.clear()

    def committed(self, at: float) -> None:
        """The commit sent last was answered at ``at`` (``time.perf_counter``)."""
        commit = self.histograms["commit"]
        for finished in self._covered:
            commit.observe(at - finished)
        self._covered.clear()


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
    #: Attributes left out of calls because Talon.One does not know them, by (entity, name).
    dropped_attributes: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: Where a record's time goes, stage by stage (keyed dispatch).
    stages: StageLatency = field(default_factory=StageLatency)
    #: The latest few envelopes (decoded), for a human to look at.
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=5))

    def attribute_dropped(self, entity: str, name: str) -> None:
        """Count one attribute left out of a call; past :data:`MAX_DROPPED_NAMES` names, a new
        name is counted as :data:`OTHER_ATTRIBUTES`."""
        dropped = self.dropped_attributes
        if (entity, name) not in dropped and len(dropped) >= MAX_DROPPED_NAMES:
            name = OTHER_ATTRIBUTES
        dropped[(entity, name)] += 1

    @property
    def outcomes(self) -> int:
        return self.effects_published + self.dead_lettered
