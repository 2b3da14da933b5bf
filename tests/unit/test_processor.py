"""One record to one outcome: effects envelope, DLQ with reasons, retries, fatal errors."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from workers.calls import TalonCall
from workers.envelopes import envelope_id
from workers.exceptions import (
    TalonFatalError,
    TalonPermanentError,
    TalonRetryableError,
    TalonTransportError,
)
from workers.kafka_io import Headers, InputRecord
from workers.processor import RecordProcessor
from workers.talon_client import TalonResponse
from workers.translate import TranslationOptions

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


class Sink:
    def __init__(self) -> None:
        self.records: list[tuple[str, bytes | None, bytes | None, Headers | None]] = []

    async def send(
        self, topic: str, *, key: bytes | None, value: bytes | None, headers: Headers | None = None
    ) -> None:
        self.records.append((topic, key, value, headers))


class Talon:
    """Answers from a script: an exception to raise or a body to return, in order."""

    def __init__(self, *script: Exception | dict[str, Any]) -> None:
        self.script = list(script)
        self.calls: list[tuple[TalonCall, str | None]] = []

    async def send(self, call: TalonCall, *, idempotency_key: str | None = None) -> TalonResponse:
        self.calls.append((call, idempotency_key))
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return TalonResponse(status=200, body=step, elapsed_s=0.01)


def processor(talon: Talon, sink: Sink, sleeps: list[float]) -> RecordProcessor:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return RecordProcessor(
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
    talon, sink = Talon(ANSWER), Sink()
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
    talon, sink = Talon(), Sink()
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


async def test_a_permanent_api_error_goes_to_the_dlq_with_status_and_body() -> None:
    sink = Sink()

    class Rejecting(Talon):
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

    class Flaky(Talon):
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


async def test_a_refused_api_key_is_fatal_and_publishes_nothing() -> None:
    sink = Sink()

    class Refusing(Talon):
        async def send(
            self, call: TalonCall, *, idempotency_key: str | None = None
        ) -> TalonResponse:
            raise TalonFatalError("unauthorized", call=call, status=401, body="{}")

    with pytest.raises(TalonFatalError):
        await processor(Refusing(), sink, []).process(record(orjson.dumps(CART)))
    assert sink.records == []


def test_envelope_ids_are_rfc4122_name_based_uuids() -> None:
    import uuid

    from workers.envelopes import _NAMESPACE

    for topic, partition, offset in [("shop.orders", 0, 0), ("a/b", 11, 2**40), ("ü", 3, 7)]:
        expected = str(uuid.uuid5(_NAMESPACE, f"{topic}/{partition}/{offset}"))
        assert envelope_id(topic, partition, offset) == expected
