"""Erasure and advanced events, record to outcome: the erasure call, the ledger that refuses a
customer's later records, and a replayed advanced event answered from the stored one."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from talon_stream._exceptions import (
    TalonDuplicateError,
    TalonPermanentError,
    TalonRetryableError,
    TranslationError,
)
from talon_stream.core._calls import Operation, TalonCall, customer_digest
from talon_stream.core._events import decode_event
from talon_stream.core._records import InputRecord
from talon_stream.core._translate import TranslationOptions, translate
from talon_stream.processing._erasures import ErasureLedger
from talon_stream.processing._processor import RecordProcessor
from talon_stream.talon._client import decode_answer
from tests.fakes import ScriptedTalon, Sink, make_processor

PROFILE = "jane.doe@example.com"
ERASED = {
    "eventId": "gdpr-1",
    "type": "customer.erased",
    "occurredAt": "2026-11-22T10:00:00Z",
    "profileId": PROFILE,
}
CART = {
    "eventId": "e-2",
    "type": "cart.updated",
    "occurredAt": "2026-11-22T10:05:00Z",
    "profileId": PROFILE,
    "sessionId": "s-9",
    "payload": {"cartItems": [{"sku": "A", "quantity": 1, "price": 10}]},
}
REVIEW = {
    "eventId": "evt-77",
    "type": "customer.event",
    "occurredAt": "2026-11-22T10:00:00Z",
    "profileId": "c-1",
    "sessionId": "s-1",
    "payload": {"eventType": "review", "attributes": {"rating": 5}},
}


def record(document: dict[str, Any], offset: int) -> InputRecord:
    return InputRecord(
        topic="shop.customers",
        partition=0,
        offset=offset,
        key=str(document["profileId"]).encode(),
        value=orjson.dumps(document),
        headers=[],
        timestamp_ms=None,
    )


def processor(
    talon: ScriptedTalon, sink: Sink, options: TranslationOptions | None = None
) -> RecordProcessor:
    return make_processor(
        talon, sink, options=options, erasures=ErasureLedger(sink, "talon-stream.erasures")
    )


def test_an_erasure_is_a_delete_of_the_customers_data_named_by_digest_in_messages() -> None:
    call = translate(decode_event(orjson.dumps(ERASED)), TranslationOptions())
    assert (call.method, call.path, call.body) == (
        "DELETE",
        "/v1/customer_data/jane.doe%40example.com",
        None,
    )
    assert call.profile_id == PROFILE
    assert PROFILE not in call.describe()
    assert call.describe().startswith("deleteCustomerData DELETE /v1/customer_data/~")
    with pytest.raises(TranslationError, match="not sent in a dry run"):
        translate(decode_event(orjson.dumps(ERASED)), TranslationOptions(dry=True))


async def test_after_an_erasure_the_customers_records_go_to_the_dlq_with_the_reason() -> None:
    talon, sink = ScriptedTalon({}), Sink()
    worker = processor(talon, sink)
    await worker.process(record(ERASED, 10))
    await worker.process(record(CART, 11))
    assert [call.operation for call, _ in talon.calls] == [Operation.DELETE_CUSTOMER_DATA]
    [(ledger_topic, digest, mark, _), (effects, _, envelope, _), (dlq, _, value, headers)] = (
        sink.records
    )
    # The ledger holds a digest, never the integration ID.
    assert ledger_topic == "talon-stream.erasures"
    assert digest == customer_digest(PROFILE).encode()
    assert mark is not None
    assert PROFILE.encode() not in mark
    assert orjson.loads(mark)["eventId"] == "gdpr-1"
    assert effects == "talon.effects"
    assert envelope is not None
    assert orjson.loads(envelope)["operation"] == "deleteCustomerData"
    assert dlq == "talon-stream.dlq"
    assert value == orjson.dumps(CART)  # the refused record, whole
    reasons = dict(headers or [])
    assert reasons["talon-stream.error.class"] == b"ErasedCustomerError"
    message = reasons["talon-stream.error.message"].decode()
    assert "was erased by event 'gdpr-1'" in message
    assert "not sent, so that Talon.One does not create the profile again" in message
    assert PROFILE not in message
    assert worker.stats.customers_erased == 1
    # Another customer is not refused; a second erasure of the same customer is sent again.
    other = {**CART, "profileId": "c-2", "sessionId": "s-2"}
    talon.script.extend([{}, {}])
    await worker.process(record(other, 12))
    await worker.process(record(ERASED, 13))
    assert [call.operation for call, _ in talon.calls[1:]] == [
        Operation.UPDATE_CUSTOMER_SESSION,
        Operation.DELETE_CUSTOMER_DATA,
    ]


async def test_erasing_a_customer_talon_one_does_not_know_still_refuses_their_later_records() -> (
    None
):
    talon = ScriptedTalon(
        TalonPermanentError(
            "not found",
            call=TalonCall(Operation.DELETE_CUSTOMER_DATA, PROFILE, None),
            status=404,
            body="{}",
        )
    )
    sink = Sink()
    worker = processor(talon, sink)
    await worker.process(record(ERASED, 10))
    await worker.process(record(CART, 11))
    topics = [topic for topic, *_ in sink.records]
    assert topics == ["talon-stream.erasures", "talon.effects", "talon-stream.dlq"]
    assert orjson.loads(sink.records[1][2] or b"")["status"] == 404


async def test_a_ledger_read_back_refuses_the_same_customers() -> None:
    sink = Sink()
    written = ErasureLedger(sink, "erasures")
    await written.record(PROFILE, event_id="gdpr-1", envelope_id="shop.customers-0-10")
    read = ErasureLedger(None, "erasures")
    for _, key, value, _ in sink.records:
        read.load(key, value)
    read.load(None, b"ignored")  # not a ledger record
    found = read.find(PROFILE)
    assert found is not None
    assert (found.event_id, found.envelope_id) == ("gdpr-1", "shop.customers-0-10")
    assert read.find("someone-else") is None
    assert len(read) == 1


def test_a_v3_custom_event_is_identified_by_its_event_id() -> None:
    options = TranslationOptions(
        custom_events="v3", response_content=("customerSession", "event", "triggeredCampaigns")
    )
    call = translate(decode_event(orjson.dumps(REVIEW)), options)
    assert (call.operation, call.method, call.path) == (
        Operation.TRACK_EVENT_V3,
        "POST",
        "/v3/events",
    )
    assert call.body == {
        "type": "review",
        "profileId": "c-1",
        "integrationId": "evt-77",
        "attributes": {"rating": 5},
        "responseContent": ["advancedEvent", "triggeredCampaigns"],
    }
    assert call.query == {"silent": "no"}


def test_only_a_duplicate_advanced_event_is_a_duplicate() -> None:
    call = translate(decode_event(orjson.dumps(REVIEW)), TranslationOptions(custom_events="v3"))
    exists = b'{"message": "advanced event already exists", "StatusCode": 409}'
    busy = b'{"message": "Too many requests are updating this profile", "StatusCode": 409}'
    with pytest.raises(TalonDuplicateError):
        decode_answer(call, 409, exists, None, 0.0)
    with pytest.raises(TalonRetryableError):
        decode_answer(call, 409, busy, None, 0.0)


async def test_a_replayed_advanced_event_is_answered_by_the_stored_one() -> None:
    options = TranslationOptions(custom_events="v3")
    call = translate(decode_event(orjson.dumps(REVIEW)), options)
    stored = {"integrationId": "evt-77", "profileId": "c-1", "effects": [{"effectType": "x"}]}
    duplicate = TalonDuplicateError(
        "advanced event already exists", call=call, status=409, body="{}"
    )
    talon, sink = ScriptedTalon(duplicate, stored), Sink()
    await processor(talon, sink, options).process(record(REVIEW, 3))
    assert [(c.operation, c.path) for c, _ in talon.calls] == [
        (Operation.TRACK_EVENT_V3, "/v3/events"),
        (Operation.GET_EVENT_V3, "/v3/events/evt-77"),
    ]
    [(topic, _, envelope, _)] = sink.records
    assert topic == "talon.effects"
    assert orjson.loads(envelope or b"")["effects"] == [{"effectType": "x"}]
    # The same id on another customer's event: the record is refused, not given its effects.
    talon = ScriptedTalon(duplicate, {**stored, "profileId": "c-2"})
    sink = Sink()
    await processor(talon, sink, options).process(record(REVIEW, 3))
    [(topic, _, _, headers)] = sink.records
    assert topic == "talon-stream.dlq"
    assert b"another customer's advanced event" in dict(headers or [])["talon-stream.error.message"]
