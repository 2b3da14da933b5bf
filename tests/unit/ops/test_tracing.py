"""W3C trace context: what the worker sends on for a record that carries one."""

from __future__ import annotations

from talon_stream.ops._tracing import start_call_trace

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_a_record_with_traceparent_continues_its_trace() -> None:
    trace = start_call_trace(
        [("other", b"x"), ("traceparent", PARENT.encode()), ("tracestate", b"shop=1")],
        "updateCustomerSessionV2",
    )
    assert trace is not None
    sent = trace.http_headers["traceparent"]
    version, trace_id, _span_id, flags = sent.split("-")
    assert (version, trace_id, flags) == ("00", "0af7651916cd43dd8448eb211c80319c", "01")
    assert trace.http_headers["tracestate"] == "shop=1"
    assert dict(trace.record_headers) == {
        name: value.encode() for name, value in trace.http_headers.items()
    }
    trace.end()
    trace.end(RuntimeError("x"))  # ending twice is harmless


def test_no_or_broken_trace_context_means_no_trace() -> None:
    assert start_call_trace([], "trackEventV2") is None
    assert start_call_trace([("tracestate", b"a=1")], "trackEventV2") is None
    assert start_call_trace([("traceparent", b"not-a-traceparent")], "trackEventV2") is None
    assert start_call_trace([("traceparent", b"")], "trackEventV2") is None
    zeros = b"00-00000000000000000000000000000000-0000000000000000-01"
    assert start_call_trace([("traceparent", zeros)], "trackEventV2") is None
