"""Running a worker in production: its counters, the Prometheus metrics and the health endpoint
that serves them, logging set-up and W3C trace context."""

from talon_stream.ops._health import HealthServer, WorkerStatus
from talon_stream.ops._logs import JsonFormatter, setup_logging
from talon_stream.ops._metrics import MetricsSnapshot, WorkerCollector, render
from talon_stream.ops._stats import STAGES, LatencyHistogram, StageLatency, WorkerStats
from talon_stream.ops._tracing import TRACE_HEADERS, CallTrace, start_call_trace

__all__ = [
    "STAGES",
    "TRACE_HEADERS",
    "CallTrace",
    "HealthServer",
    "JsonFormatter",
    "LatencyHistogram",
    "MetricsSnapshot",
    "StageLatency",
    "WorkerCollector",
    "WorkerStats",
    "WorkerStatus",
    "render",
    "setup_logging",
    "start_call_trace",
]
