"""One record to one outcome: effects envelope, DLQ with reasons, retries, fatal errors."""

from __future__ import annotations

import gc
import weakref
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from talon_stream._exceptions import (
    TalonFatalError,
    TalonPermanentError,
    TalonRetryableError,
    TalonTransportError,
)
from talon_stream.core._calls import TalonCall, TalonResponse
from talon_stream.core._envelopes import envelope_id, iso_ms
from talon_stream.core._events import decode_event
from talon_stream.core._records import Headers, InputRecord
from talon_stream.core._routing import EffectRouter
from talon_stream.core._translate import TranslationOptions, translate
from talon_stream.dlq import DeadLetterWriter
from talon_stream.ops import WorkerStats
from talon_stream.processing._processor import RecordProcessor
from talon_stream.talon._halt import Halt
from tests.fakes import ScriptedTalon, Sink, make_processor

CART = {
    "eventId": "e-1",
    "type": "cart.updated",
    "occurredAt": "2026-11-22T10:00:00Z",
    "profileId": "c-1",
    "sessionId": "s-1",
    "payload": {"cartItems": [{"sku": "A", "quantity": 1, "price": 10}]},
}


def record(value: bytes | None, offset: int = 7) -> InputRecord:
    return InputRecord(
        topic="shop.carts",
        partition=2,
        offset=offset,
        key=b"c-1",
        value=value,
        headers=[("traceparent", b"00-abc-def-01")],
        timestamp_ms=1_795_000_000_000,
    )


def processor(talon: ScriptedTalon, sink: Sink, sleeps: list[float]) -> RecordProcessor:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return make_processor(
        talon,
        sink,
        effects_topic="talon.effects",
        dlq_topic="talon-stream.dlq",
        options=TranslationOptions(),
        sleep=sleep,
    )


ANSWER = {
    "effects": [{"effectType": "setDiscount", "props": {"name": "x", "value": 2}}],
    "createdCoupons": [],
    "createdReferrals": [],
    "customerSession": {"integrationId": "s-1", "state": "open", "total": 10, "updateCount": 1},
}


async def test_a_processed_event_publishes_one_envelope_with_the_same_key() -> None:
    talon, sink = ScriptedTalon(ANSWER), Sink()
    await processor(talon, sink, []).process(record(orjson.dumps(CART)))
    [(topic, key, value, _)] = sink.records
    assert (topic, key) == ("talon.effects", b"c-1")
    envelope = orjson.loads(value or b"")
    assert envelope["envelopeId"] == envelope_id("shop.carts", 2, 7)
    assert envelope["source"] == {
        "eventId": "e-1",
        "type": "cart.updated",
        "occurredAt": "2026-11-22T10:00:00+00:00",
        "topic": "shop.carts",
        "partition": 2,
        "offset": 7,
        "timestamp": "2026-11-18T11:06:40.000+00:00",
    }
    assert envelope["operation"] == "updateCustomerSessionV2"
    assert envelope["effects"] == ANSWER["effects"]
    assert envelope["session"] == {
        "integrationId": "s-1",
        "state": "open",
        "total": 10,
        "updateCount": 1,
    }
    assert (envelope["profileId"], envelope["sessionId"]) == ("c-1", "s-1")
    # The Idempotency-Key is derived from the record, so a replay sends the same one.
    assert talon.calls[0][1] == envelope_id("shop.carts", 2, 7)


async def test_undecodable_records_go_to_the_dlq_untouched_with_reasons() -> None:
    talon, sink = ScriptedTalon(), Sink()
    await processor(talon, sink, []).process(record(b"{oops"))
    [(topic, key, value, headers)] = sink.records
    assert (topic, key, value) == ("talon-stream.dlq", b"c-1", b"{oops")
    found = dict(headers or [])
    assert found["traceparent"] == b"00-abc-def-01"
    assert found["talon-stream.error.class"] == b"DecodeError"
    assert b"not valid JSON" in found["talon-stream.error.message"]
    assert found["talon-stream.source.offset"] == b"7"
    assert found["talon-stream.attempts"] == b"0"
    assert talon.calls == []


def test_a_records_error_keeps_its_reason_but_not_the_frames_that_raised_it() -> None:
    """A poison record waits with its error until it is dead-lettered. A validator's exception
    inside pydantic's error is out of the garbage collector's sight, so a traceback kept with
    it would pin the consumer loop's frames, and the worker's Kafka clients with them."""
    value = orjson.dumps(
        {"eventId": "e-1", "type": "cart.updated", "occurredAt": "2026-11-22T10:00:00Z"}
    )
    prepared = processor(ScriptedTalon(), Sink(), []).prepare(record(value))
    error = prepared.error
    assert type(error).__name__ == "DecodeError"
    assert "needs a sessionId" in str(error)
    assert error.__traceback__ is None
    assert error.__cause__ is None
    assert error.__context__ is None


def test_a_poison_record_does_not_pin_what_its_consumer_held_when_it_failed() -> None:
    class Batch:
        """Stands for what the consumer loop holds while it submits a record."""

    value = orjson.dumps(
        {"eventId": "e-1", "type": "customer.updated", "occurredAt": "2026-11-22T10:00:00Z"}
    )

    def consume() -> tuple[Any, weakref.ref[Batch]]:
        batch = Batch()
        return processor(ScriptedTalon(), Sink(), []).prepare(record(value)), weakref.ref(batch)

    prepared, batch = consume()
    gc.collect()
    assert prepared.error is not None  # still waiting to be dead-lettered
    assert batch() is None


async def test_a_permanent_api_error_goes_to_the_dlq_with_status_and_body() -> None:
    sink = Sink()

    class Rejecting(ScriptedTalon):
        async def send(
            self, call: TalonCall, *, idempotency_key: str | None = None
        ) -> TalonResponse:
            self.calls.append((call, idempotency_key))
            raise TalonPermanentError(
                "The submitted data was invalid",
                call=call,
                status=400,
                body='{"message":"invalid"}',
            )

    rejecting = Rejecting()
    await processor(rejecting, sink, []).process(record(orjson.dumps(CART)))
    [(topic, _, value, headers)] = sink.records
    assert topic == "talon-stream.dlq"
    assert value == orjson.dumps(CART)
    found = dict(headers or [])
    assert found["talon-stream.error.class"] == b"TalonPermanentError"
    assert found["talon-stream.http.status"] == b"400"
    assert found["talon-stream.http.body"] == b'{"message":"invalid"}'
    assert found["talon-stream.talon.operation"] == b"updateCustomerSessionV2"
    assert found["talon-stream.attempts"] == b"1"


async def test_transient_failures_are_retried_with_backoff_honouring_retry_after() -> None:
    sink, sleeps = Sink(), []

    class Flaky(ScriptedTalon):
        async def send(
            self, call: TalonCall, *, idempotency_key: str | None = None
        ) -> TalonResponse:
            self.calls.append((call, idempotency_key))
            if len(self.calls) == 1:
                raise TalonRetryableError("busy", call=call, status=429, body="", retry_after=3.0)
            if len(self.calls) == 2:
                raise TalonTransportError("reset", call=call)
            return TalonResponse(status=200, body=ANSWER, elapsed_s=0.01)

    flaky = Flaky()
    proc = processor(flaky, sink, sleeps)
    await proc.process(record(orjson.dumps(CART)))
    assert len(flaky.calls) == 3
    assert {key for _, key in flaky.calls} == {
        envelope_id("shop.carts", 2, 7)
    }  # same key each time
    assert sleeps[0] >= 3.0  # never sooner than Retry-After
    assert len(sleeps) == 2
    assert [r[0] for r in sink.records] == ["talon.effects"]
    assert proc.stats.retries == 2


def _call() -> TalonCall:
    return translate(decode_event(orjson.dumps(CART)), TranslationOptions())


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def halting_processor(
    talon: ScriptedTalon, sink: Sink, clock: Clock, waits: list[float]
) -> tuple[RecordProcessor, Halt]:
    async def sleep(seconds: float) -> None:
        waits.append(round(seconds, 3))
        clock.now += seconds

    halt = Halt(probe_initial_s=1.0, probe_max_s=8.0, clock=clock, sleep=sleep)
    processor = make_processor(
        talon, sink, sleep=sleep, halt=halt, unreachable_halt_after_s=60.0, clock=clock
    )
    return processor, halt


async def test_a_refused_api_key_halts_and_probes_until_it_is_accepted() -> None:
    sink, clock, waits = Sink(), Clock(), []
    refused = [
        TalonFatalError("unauthorized", call=_call(), status=401, body="{}"),
        TalonFatalError("unauthorized", call=_call(), status=401, body="{}"),
        TalonFatalError("forbidden", call=_call(), status=403, body="{}"),
    ]
    talon = ScriptedTalon(*refused, {"effects": []})
    proc, halt = halting_processor(talon, sink, clock, waits)
    seen: list[str | None] = []
    original = talon.send

    async def watching(call: TalonCall, *, idempotency_key: str | None = None) -> TalonResponse:
        seen.append(halt.reason)
        return await original(call, idempotency_key=idempotency_key)

    talon.send = watching  # type: ignore[method-assign]
    await proc.process(record(orjson.dumps(CART)))

    assert seen[0] is None
    assert seen[1] is not None
    assert "HTTP 401" in seen[1]
    assert "TALON_STREAM_TALON_API_KEY" in seen[1]
    assert "HTTP 403" in (seen[3] or "")
    # Probes spaced by the halt; the retry policy itself adds no wait to a refused key.
    assert [wait for wait in waits if wait] == [1.0, 2.0, 4.0]
    assert [r[0] for r in sink.records] == ["talon.effects"]  # nothing dead-lettered
    assert not halt.active
    assert halt.halts == 1
    assert {key for _, key in talon.calls} == {envelope_id("shop.carts", 2, 7)}


async def test_an_unreachable_talon_one_halts_after_the_configured_time() -> None:
    sink, clock, waits = Sink(), Clock(), []
    talon = ScriptedTalon()
    proc, halt = halting_processor(talon, sink, clock, waits)
    down = TalonTransportError("connection refused", call=_call())
    reasons: list[str | None] = []
    answers: list[Exception | dict[str, Any]] = [down] * 8 + [{"effects": []}]

    async def send(call: TalonCall, *, idempotency_key: str | None = None) -> TalonResponse:
        reasons.append(halt.reason)
        clock.now += 10  # each failed connection attempt takes 10 s
        step = answers.pop(0)
        if isinstance(step, Exception):
            raise step
        return TalonResponse(status=200, body=step, elapsed_s=0.01)

    talon.send = send  # type: ignore[method-assign]
    await proc.process(record(orjson.dumps(CART)))

    halted = [reason for reason in reasons if reason is not None]
    assert reasons[0] is None
    assert halted, "never halted"
    assert "cannot be reached for 60 s" in halted[0]
    assert "TALON_STREAM_TALON_BASE_URL" in halted[0]
    assert not halt.active  # the successful call cleared it
    assert [r[0] for r in sink.records] == ["talon.effects"]


async def test_a_5xx_outage_never_halts() -> None:
    sink, clock, waits = Sink(), Clock(), []
    outage = [
        TalonRetryableError("unavailable", call=_call(), status=503, body="{}") for _ in range(30)
    ]
    talon = ScriptedTalon(*outage, {"effects": []})
    proc, halt = halting_processor(talon, sink, clock, waits)
    await proc.process(record(orjson.dumps(CART)))
    assert halt.halts == 0
    assert clock.now - 1000.0 > 60  # the outage lasted past the unreachable threshold
    assert [r[0] for r in sink.records] == ["talon.effects"]


def test_envelope_ids_are_rfc4122_name_based_uuids() -> None:
    import uuid

    from talon_stream.core._envelopes import _NAMESPACE

    for topic, partition, offset in [("shop.orders", 0, 0), ("a/b", 11, 2**40), ("ü", 3, 7)]:
        expected = str(uuid.uuid5(_NAMESPACE, f"{topic}/{partition}/{offset}"))
        assert envelope_id(topic, partition, offset) == expected


async def test_an_oversized_record_is_dead_lettered_unread_without_its_value() -> None:
    sink, talon = Sink(), ScriptedTalon()
    huge = orjson.dumps({**CART, "payload": {"note": "x" * 600_000}})
    proc = processor(talon, sink, [])
    await proc.process(record(huge))
    assert talon.calls == []
    [(topic, key, value, headers)] = sink.records
    assert topic == "talon-stream.dlq"
    assert key == b"c-1"
    assert value is None  # too large for the DLQ too; it stays in the source topic
    found = dict(headers or [])
    assert found["talon-stream.error.class"] == b"RecordTooLargeError"
    assert b"more than max_record_bytes (524288)" in found["talon-stream.error.message"]
    assert found["talon-stream.value.omitted.bytes"] == str(len(huge)).encode()
    assert found["talon-stream.source.offset"] == b"7"
    assert found["traceparent"] == b"00-abc-def-01"  # the original headers are kept


def customer_record(customer: str, offset: int, *, replay_of: str | None = None) -> InputRecord:
    event = {**CART, "eventId": f"e-{offset}", "profileId": customer, "sessionId": f"s-{customer}"}
    headers: Headers = [("traceparent", b"00-abc-def-01")]
    if replay_of is not None:
        headers.append(("talon-stream.replay.of", replay_of.encode()))
    return InputRecord(
        topic="shop.carts",
        partition=2,
        offset=offset,
        key=customer.encode(),
        value=orjson.dumps(event),
        headers=headers,
        timestamp_ms=1_795_000_000_000,
    )


@pytest.mark.parametrize("policy", ["continue", "park"])
async def test_the_dlq_policy_decides_what_follows_a_dead_lettered_record(policy: str) -> None:
    rejected = TalonPermanentError("invalid", call=_call(), status=400, body="{}")
    ok: dict[str, Any] = {"effects": []}
    # c-1's first record is refused; then c-1 again, c-2, c-1's first record replayed, c-1.
    talon = ScriptedTalon(rejected, *([ok] * 5))
    sink = Sink()
    dead_letters = DeadLetterWriter(
        sink, "talon-stream.dlq", stats=WorkerStats(), park=policy == "park"
    )
    proc = make_processor(talon, sink, dead_letters=dead_letters)
    for rec in [
        customer_record("c-1", 10),
        customer_record("c-1", 11),
        customer_record("c-2", 12),
        customer_record("c-1", 13, replay_of="talon-stream.dlq/0/5"),
        customer_record("c-1", 14),
    ]:
        await proc.process(rec)

    outcomes = [
        (topic, dict(headers or []).get("talon-stream.error.class"))
        for topic, _, _, headers in sink.records
    ]
    if policy == "continue":
        assert outcomes == [
            ("talon-stream.dlq", b"TalonPermanentError"),
            *[("talon.effects", None)] * 4,
        ]
        assert len(talon.calls) == 5
    else:
        assert outcomes == [
            ("talon-stream.dlq", b"TalonPermanentError"),
            ("talon-stream.dlq", b"ParkedError"),  # behind the refused one, not sent
            ("talon.effects", None),  # another customer flows on
            ("talon.effects", None),  # the replay unparks c-1 ...
            ("talon.effects", None),  # ... and what follows flows again
        ]
        parked = dict(sink.records[1][3] or [])
        assert parked["talon-stream.error.message"] == (
            b"parked behind shop.carts/2/10, an earlier record of this customer"
        )
        assert len(talon.calls) == 4
        assert dead_letters.parked == {}


@given(st.integers(min_value=0, max_value=253_402_300_799_999))
def test_envelope_timestamps_are_rfc3339_utc_with_milliseconds(timestamp_ms: int) -> None:
    expected = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=timestamp_ms)
    assert iso_ms(timestamp_ms) == expected.isoformat(timespec="milliseconds")


async def test_routed_envelopes_go_out_with_the_whole_one() -> None:
    effects = [
        {"effectType": "setDiscount", "props": {"name": "10%", "value": 5}},
        {"effectType": "addLoyaltyPoints", "props": {"value": 3}},
        {"effectType": "rollbackCoupon", "props": {"value": "X"}},
    ]
    sink = Sink()
    proc = make_processor(
        ScriptedTalon({"effects": effects}),
        sink,
        effects_topic="talon.effects",
        dlq_topic="talon-stream.dlq",
        options=TranslationOptions(),
        router=EffectRouter({"pricing": ["setDiscount*", "rollback*"], "notify": ["add*"]}),
    )
    await proc.process(record(orjson.dumps(CART)))
    assert [topic for topic, *_ in sink.records] == ["talon.effects", "pricing", "notify"]
    whole, pricing, notify = (orjson.loads(value or b"") for _, _, value, _ in sink.records)
    assert whole["effects"] == effects
    assert [e["effectType"] for e in pricing["effects"]] == ["setDiscount", "rollbackCoupon"]
    assert [e["effectType"] for e in notify["effects"]] == ["addLoyaltyPoints"]
    assert pricing["envelopeId"] == notify["envelopeId"] == whole["envelopeId"]
    assert {key for _, key, _, _ in sink.records} == {b"c-1"}


async def test_trace_context_goes_with_the_call_and_on_the_envelope() -> None:
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    sent: list[dict[str, str] | None] = []

    class Tracing(ScriptedTalon):
        async def send(
            self,
            call: TalonCall,
            *,
            idempotency_key: str | None = None,
            headers: dict[str, str] | None = None,
        ) -> TalonResponse:
            sent.append(headers)
            return await super().send(call, idempotency_key=idempotency_key)

    sink = Sink()
    traced = InputRecord(
        topic="shop.carts",
        partition=2,
        offset=7,
        key=b"c-1",
        value=orjson.dumps(CART),
        headers=[("traceparent", parent.encode()), ("tracestate", b"shop=1")],
        timestamp_ms=1_795_000_000_000,
    )
    await processor(Tracing({"effects": []}), sink, []).process(traced)
    [headers] = sent
    assert headers is not None
    assert headers["traceparent"].split("-")[1] == "0af7651916cd43dd8448eb211c80319c"
    assert headers["tracestate"] == "shop=1"
    [(_, _, _, published)] = sink.records
    assert dict(published or []) == {name: value.encode() for name, value in headers.items()}
