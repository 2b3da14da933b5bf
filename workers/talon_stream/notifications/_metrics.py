"""The receiver's counters and their Prometheus exposition on ``/metrics``.

Plain counters, read when Prometheus scrapes; every metric is prefixed
``talon_stream_notifications_``:

=====================================  ==========================================================
``requests_total{status}``             webhook requests by the status answered
``received_total{notification_type}``  notification elements received (duplicates included)
``published_total{topic}``             records acknowledged by Kafka
``duplicates_total``                   elements not published again: their id was seen
``auth_refused_total``                 requests refused for a missing or wrong secret (401)
``failures_total{reason}``             requests failed: ``payload`` (400), ``kafka`` (503),
                                       ``not_ready`` (503)
``seen_ids``                           ids remembered for deduplication
``ready``                              1 once the producer reached Kafka and the ids are read
=====================================  ==========================================================
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["NotificationStats", "render_metrics"]

_PREFIX = "talon_stream_notifications_"


@dataclass(slots=True)
class NotificationStats:
    """What the receiver counts."""

    requests: Counter[int] = field(default_factory=Counter)
    received: Counter[str] = field(default_factory=Counter)
    published: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    auth_refused: int = 0


class _Collector(Collector):
    def __init__(
        self, stats: NotificationStats, seen: Callable[[], int], ready: Callable[[], bool]
    ) -> None:
        self._stats = stats
        self._seen = seen
        self._ready = ready

    def collect(self) -> Iterator[Metric]:
        stats = self._stats
        yield _by_label("requests", "Webhook requests by answer status.", "status", stats.requests)
        yield _by_label(
            "received",
            "Notification elements received, duplicates included.",
            "notification_type",
            stats.received,
        )
        yield _by_label(
            "published", "Records acknowledged by Kafka, by topic.", "topic", stats.published
        )
        yield _by_label("failures", "Requests that failed, by reason.", "reason", stats.failures)
        duplicates = CounterMetricFamily(
            _PREFIX + "duplicates", "Elements not published again: their id was seen."
        )
        duplicates.add_metric([], stats.duplicates)
        yield duplicates
        refused = CounterMetricFamily(
            _PREFIX + "auth_refused", "Requests refused: missing or wrong secret (401)."
        )
        refused.add_metric([], stats.auth_refused)
        yield refused
        yield GaugeMetricFamily(
            _PREFIX + "seen_ids", "Ids remembered for deduplication.", value=self._seen()
        )
        yield GaugeMetricFamily(
            _PREFIX + "ready", "1 once the receiver takes notifications.", value=int(self._ready())
        )


def _by_label(name: str, doc: str, label: str, counts: Mapping[Any, int]) -> Metric:
    family = CounterMetricFamily(_PREFIX + name, doc, labels=[label])
    for value, count in sorted(counts.items(), key=lambda item: str(item[0])):
        family.add_metric([str(value)], count)
    return family


def render_metrics(
    stats: NotificationStats, seen: Callable[[], int], ready: Callable[[], bool]
) -> bytes:
    """The Prometheus text exposition of one receiver."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(stats, seen, ready))
    return generate_latest(registry)
