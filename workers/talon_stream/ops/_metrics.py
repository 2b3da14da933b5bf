"""Prometheus metrics of one worker, served on ``/metrics`` beside the health endpoint.

Nothing is counted through prometheus_client on the hot path: the worker keeps plain counters
(:class:`~talon_stream.ops.WorkerStats`) and this collector reads them, with the dispatcher's and
the consumer's state, when Prometheus scrapes. Every metric is prefixed ``talon_stream_``:

========================================  =====================================================
``records_consumed_total{topic,partition}``  records taken from Kafka
``calls_total{operation,status}``            Talon.One calls by answer (status 0: no answer)
``call_duration_seconds``                    histogram of Talon.One call latency
``stage_seconds{stage}``                     histograms of a record's stages, in order: fetch,
                                             decode, key_wait, slot_wait, call, produce, commit
                                             (see talon_stream.ops.STAGES)
``retries_total{reason}``                    retries by the status or ``transport`` behind them
``dlq_records_total{reason}``                records dead-lettered, by error class
``effects_envelopes_total``                  effects envelopes published
``effects_total{effect_type}``               effects received, by type
``in_flight_calls`` / ``in_flight_limit``    Talon.One calls in flight; the adaptive limit
``buffered_records``                         records waiting behind their customer or the cap
``paused_partitions``                        partitions paused (full buffers, or halted)
``committed_offset{topic,partition}``        the last offset committed by this worker
``consumer_lag{topic,partition}``            high watermark - committed offset
``halted``                                   1 while halted (see talon_stream.talon._halt)
``application_halted{application}``          several Applications: 1 while that one is halted
``application_calls_total{application}``     several Applications: calls made to each
``records_skipped_total``                    records not run: their last owner had finished them
``records_superseded_total``                 records not sent: a newer event of their session
                                             was already applied (an envelope says so)
``calls_saved_total``                        cart updates that joined another record's call
``customers_erased_total``                   ``customer.erased`` events applied (no IDs kept)
``attributes_dropped_total{entity,attribute}``  attributes left out of calls, Talon.One not
                                             knowing them (the first 100 names; later ones as
                                             ``_other``)
``transactions_total{outcome}``              exactly-once: transactions committed, aborted
``transaction_commit_seconds_total``         exactly-once: time spent committing them
========================================  =====================================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from talon_stream.core._records import PartitionKey
from talon_stream.ops._stats import WorkerStats

__all__ = ["CONTENT_TYPE", "HaltState", "MetricsSnapshot", "WorkerCollector", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_PREFIX = "talon_stream_"


class HaltState(Protocol):
    """What health and metrics read of the worker-wide halt (:class:`talon_stream.talon.Halt`)."""

    @property
    def reason(self) -> str | None: ...

    @property
    def since(self) -> float | None: ...

    @property
    def active(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """What the worker's state looks like at scrape time, beyond its counters."""

    in_flight: int
    in_flight_limit: int
    buffered: int
    paused_partitions: int
    committed: Mapping[PartitionKey, int]
    high_watermarks: Mapping[PartitionKey, int]
    skipped: int = 0
    #: Exactly-once only: transactions committed and aborted, seconds spent committing.
    transactions: tuple[int, int, float] | None = None


class WorkerCollector(Collector):
    """Turns a worker's counters and a :class:`MetricsSnapshot` into metric families."""

    def __init__(
        self,
        stats: WorkerStats,
        halt: HaltState,
        snapshot: Callable[[], MetricsSnapshot],
        *,
        applications: Mapping[str, HaltState] | None = None,
    ) -> None:
        self._stats = stats
        self._halt = halt
        self._applications = applications
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        stats = self._stats
        consumed = CounterMetricFamily(
            _PREFIX + "records_consumed", "Records taken from Kafka.", labels=["topic", "partition"]
        )
        for (topic, partition), count in sorted(stats.consumed_by_partition.items()):
            consumed.add_metric([topic, str(partition)], count)
        yield consumed

        calls = CounterMetricFamily(
            _PREFIX + "calls",
            "Talon.One calls by operation and answer status (0: no answer).",
            labels=["operation", "status"],
        )
        for (operation, status), count in sorted(stats.answers.items()):
            calls.add_metric([operation, str(status)], count)
        yield calls

        histogram = stats.latency
        latency = HistogramMetricFamily(
            _PREFIX + "call_duration_seconds", "Latency of Talon.One calls that were answered."
        )
        latency.add_metric([], histogram.cumulative(), histogram.sum)
        yield latency

        stages = HistogramMetricFamily(
            _PREFIX + "stage_seconds",
            "Time records spend in each stage (key_wait: behind their customer's previous call).",
            labels=["stage"],
        )
        for stage, each in stats.stages.histograms.items():
            stages.add_metric([stage], each.cumulative(), each.sum)
        yield stages

        yield _by_label(
            "retries",
            "Retries, by the status (or transport error) behind them.",
            "reason",
            stats.retry_reasons,
        )
        yield _by_label(
            "dlq_records", "Records dead-lettered, by error class.", "reason", stats.dlq_reasons
        )
        yield _by_label(
            "effects",
            "Effects received from Talon.One, by type.",
            "effect_type",
            stats.effect_types,
        )
        envelopes = CounterMetricFamily(
            _PREFIX + "effects_envelopes", "Effects envelopes published."
        )
        envelopes.add_metric([], stats.effects_published)
        yield envelopes

        state = self._snapshot()
        yield _gauge("in_flight_calls", "Talon.One calls in flight.", state.in_flight)
        yield _gauge(
            "in_flight_limit", "Calls allowed in flight now (adaptive).", state.in_flight_limit
        )
        yield _gauge(
            "buffered_records", "Records waiting behind their customer or the cap.", state.buffered
        )
        yield _gauge("paused_partitions", "Partitions paused.", state.paused_partitions)
        yield _gauge("halted", "1 while the worker is halted.", int(self._halt.active))
        if self._applications is not None:
            halted = GaugeMetricFamily(
                _PREFIX + "application_halted",
                "1 while the Application's calls are halted (its key refused, or unreachable).",
                labels=["application"],
            )
            calls = CounterMetricFamily(
                _PREFIX + "application_calls",
                "Talon.One calls made, by Application.",
                labels=["application"],
            )
            for name, application in self._applications.items():
                halted.add_metric([name], int(application.active))
                calls.add_metric([name], self._stats.calls_by_application[name])
            yield halted
            yield calls

        committed = GaugeMetricFamily(
            _PREFIX + "committed_offset",
            "The next offset to read, as last committed by this worker.",
            labels=["topic", "partition"],
        )
        lag = GaugeMetricFamily(
            _PREFIX + "consumer_lag",
            "Records in the partition past this worker's last commit.",
            labels=["topic", "partition"],
        )
        for key in sorted(set(state.committed) | set(state.high_watermarks)):
            labels = [key[0], str(key[1])]
            offset = state.committed.get(key)
            if offset is not None:
                committed.add_metric(labels, offset)
            high = state.high_watermarks.get(key)
            if high is not None:
                lag.add_metric(labels, max(0, high - (offset or 0)))
        yield committed
        yield lag

        superseded = CounterMetricFamily(
            _PREFIX + "records_superseded",
            "Records not sent: a newer event of their session was already applied.",
        )
        superseded.add_metric([], stats.superseded)
        yield superseded

        saved = CounterMetricFamily(
            _PREFIX + "calls_saved",
            "Calls not made: cart updates of one session sent as one call (coalesced).",
        )
        saved.add_metric([], stats.calls_saved)
        yield saved

        erased = CounterMetricFamily(
            _PREFIX + "customers_erased",
            "customer.erased events applied: personal data deleted in Talon.One.",
        )
        erased.add_metric([], stats.customers_erased)
        yield erased

        dropped = CounterMetricFamily(
            _PREFIX + "attributes_dropped",
            "Attributes left out of calls because Talon.One does not know them.",
            labels=["entity", "attribute"],
        )
        for (entity, name), count in sorted(stats.dropped_attributes.items()):
            dropped.add_metric([entity, name], count)
        yield dropped

        skipped = CounterMetricFamily(
            _PREFIX + "records_skipped",
            "Records not run: their partition's last owner had finished them.",
        )
        skipped.add_metric([], state.skipped)
        yield skipped
        if state.transactions is not None:
            committed_count, aborted, seconds = state.transactions
            yield _by_label(
                "transactions",
                "Exactly-once transactions, by outcome.",
                "outcome",
                {"committed": committed_count, "aborted": aborted},
            )
            spent = CounterMetricFamily(
                _PREFIX + "transaction_commit_seconds", "Time spent committing transactions."
            )
            spent.add_metric([], seconds)
            yield spent


def _by_label(name: str, doc: str, label: str, counts: Mapping[str, int]) -> Metric:
    family = CounterMetricFamily(_PREFIX + name, doc, labels=[label])
    for value, count in sorted(counts.items()):
        family.add_metric([value], count)
    return family


def _gauge(name: str, doc: str, value: float) -> Metric:
    return GaugeMetricFamily(_PREFIX + name, doc, value=value)


def render(collector: WorkerCollector) -> bytes:
    """The Prometheus text exposition of one worker."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry)
