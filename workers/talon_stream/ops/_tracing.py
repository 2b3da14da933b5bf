"""W3C trace context from the input record to the Talon.One call and the effects records.

When an input record carries a ``traceparent`` header (and maybe ``tracestate``), the worker
continues that trace: it starts a client span for the Talon.One call as a child of the record's
context, sends ``traceparent``/``tracestate`` for that span with the HTTP request, and puts the
same headers on the effects envelopes it publishes, so a downstream consumer continues the same
trace. Spans are created through the OpenTelemetry API: with no SDK installed they record
nothing and the headers carry the incoming context unchanged; install and configure an SDK
(``opentelemetry-sdk`` and an exporter) and the worker's spans are exported.

Records without a ``traceparent`` header cost one scan of their (usually empty) header list.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = ["TRACE_HEADERS", "CallTrace", "start_call_trace"]

TRACE_HEADERS = ("traceparent", "tracestate")
_PROPAGATOR = TraceContextTextMapPropagator()
_TRACER = trace.get_tracer("talon-stream")


class CallTrace:
    """The span of one Talon.One call and the headers that carry it."""

    __slots__ = ("http_headers", "record_headers", "span")

    def __init__(self, span: Span, carrier: dict[str, str]) -> None:
        self.span = span
        self.http_headers = carrier
        self.record_headers = [(name, value.encode()) for name, value in carrier.items()]

    def end(self, error: BaseException | None = None) -> None:
        if error is not None:
            self.span.record_exception(error)
            self.span.set_status(trace.StatusCode.ERROR, type(error).__name__)
        self.span.end()


def start_call_trace(headers: Sequence[tuple[str, bytes]], operation: str) -> CallTrace | None:
    """A client span for ``operation`` continuing the record's trace (``None`` when the record
    carries no ``traceparent``, or one that is not valid)."""
    incoming: dict[str, str] = {}
    for name, value in headers:
        if name in TRACE_HEADERS and value:
            incoming[name] = value.decode("latin-1")
    if "traceparent" not in incoming:
        return None
    parent = _PROPAGATOR.extract(incoming)
    if not trace.get_current_span(parent).get_span_context().is_valid:
        return None
    span = _TRACER.start_span(f"talon-one {operation}", context=parent, kind=SpanKind.CLIENT)
    outgoing: dict[str, str] = {}
    _PROPAGATOR.inject(outgoing, context=trace.set_span_in_context(span, parent))
    return CallTrace(span, outgoing)
