"""Kafka → worker → emulator → effects topic, end to end on loopback."""

from __future__ import annotations

from typing import Any

import orjson
from confluent_kafka import Consumer, TopicPartition

from talon_one_emulator import EmulatorServer
from talon_stream.core._envelopes import envelope_id
from talon_stream.demo._broker import Broker
from talon_stream.processing._worker import Worker
from tests.conftest import produce, read_topic
from tests.integration.conftest import create_topics, running, wait_for, worker_settings

TUTORIAL_CART = [
    {
        "sku": "SKU-BLOUSE-RS",
        "name": "Red Spring Blouse",
        "price": 49,
        "quantity": 1,
        "category": "shirts",
    },
    {
        "sku": "SKU-TROUSERS-DN",
        "name": "Denim Trousers",
        "price": 74,
        "quantity": 1,
        "category": "trousers",
    },
]


def event(n: int, event_type: str, **fields: Any) -> bytes:
    return orjson.dumps(
        {"eventId": f"e-{n}", "type": event_type, "occurredAt": "2026-11-22T10:00:00Z", **fields}
    )


def by_effect(envelope: dict[str, Any], effect_type: str) -> list[dict[str, Any]]:
    return [e for e in envelope["effects"] if e["effectType"] == effect_type]


async def test_every_event_type_becomes_its_call_and_one_envelope(
    broker: Broker, emulator: EmulatorServer, unique: str
) -> None:
    settings = worker_settings(broker, emulator, unique)
    topic = create_topics(broker, settings, partitions=3)
    who = {"profileId": "ada", "sessionId": "ada-s1"}
    second = {"profileId": "ada", "sessionId": "ada-s2"}
    events = [
        event(
            1,
            "customer.updated",
            profileId="ada",
            payload={"attributes": {"Name": "Ada", "tier": "gold"}},
        ),
        event(
            2,
            "cart.updated",
            **who,
            payload={"cartItems": TUTORIAL_CART, "couponCodes": ["xmas20"]},
        ),
        event(3, "order.placed", **who),
        event(
            4, "order.items_returned", **who, payload={"items": [{"position": 0, "quantity": 1}]}
        ),
        event(
            5,
            "cart.updated",
            **second,
            payload={"cartItems": TUTORIAL_CART[:1], "couponCodes": ["NOPE-123"]},
        ),
        event(6, "order.placed", **second),
        event(7, "order.reopened", **second),
        event(8, "order.cancelled", **second),
        event(
            9,
            "customer.event",
            profileId="ada",
            payload={"eventType": "review_submitted", "attributes": {"rating": 5}},
        ),
    ]
    produce(broker.bootstrap_servers, topic, [(b"ada", value) for value in events])

    worker = Worker(settings)
    async with running(worker):
        await wait_for(lambda: worker.stats.outcomes >= len(events), what="9 outcomes")

    # What Talon.One received, in order, one call per event.
    log = [entry for entry in emulator.state.request_log if entry["operation"]]
    assert [(e["method"], e["path"], e["status"]) for e in log] == [
        ("PUT", "/v2/customer_profiles/ada", 200),
        ("PUT", "/v2/customer_sessions/ada-s1", 200),
        ("PUT", "/v2/customer_sessions/ada-s1", 200),
        ("POST", "/v2/customer_sessions/ada-s1/returns", 200),
        ("PUT", "/v2/customer_sessions/ada-s2", 200),
        ("PUT", "/v2/customer_sessions/ada-s2", 200),
        ("PUT", "/v2/customer_sessions/ada-s2/reopen", 200),
        ("PUT", "/v2/customer_sessions/ada-s2", 200),
        ("POST", "/v2/events", 200),
    ]
    states = [
        e["body"]["customerSession"]["state"]
        for e in log
        if e["operation"] == "updateCustomerSessionV2"
    ]
    assert states == ["open", "closed", "open", "closed", "cancelled"]
    assert log[0]["query"] == {"runRuleEngine": "true"}
    assert log[8]["query"] == {"silent": "no"}
    assert log[8]["body"]["type"] == "review_submitted"
    assert log[1]["body"]["customerSession"]["couponCodes"] == ["xmas20"]
    assert "couponCodes" not in log[2]["body"]["customerSession"]  # closing keeps the coupon

    # What the effects topic got: one envelope per event, same key, in order.
    messages = read_topic(broker.bootstrap_servers, settings.effects_topic, len(events))
    envelopes = [orjson.loads(m.value()) for m in messages]  # type: ignore[attr-defined]
    assert {m.key() for m in messages} == {b"ada"}  # type: ignore[attr-defined]
    assert [e["source"]["eventId"] for e in envelopes] == [f"e-{n}" for n in range(1, 10)]
    assert [e["operation"] for e in envelopes] == [
        "updateCustomerProfileV2",
        "updateCustomerSessionV2",
        "updateCustomerSessionV2",
        "returnCartItems",
        "updateCustomerSessionV2",
        "updateCustomerSessionV2",
        "reopenCustomerSession",
        "updateCustomerSessionV2",
        "trackEventV2",
    ]
    tutorial = envelopes[1]
    [discount] = by_effect(tutorial, "setDiscount")
    assert discount["props"]["value"] == 24.6
    assert [e["props"]["value"] for e in by_effect(tutorial, "acceptCoupon")] == ["xmas20"]
    assert tutorial["session"]["state"] == "open"
    assert tutorial["session"]["total"] == 123
    assert envelopes[2]["session"]["state"] == "closed"
    assert envelopes[3]["session"]["state"] == "partially_returned"
    assert by_effect(envelopes[3], "rollbackDiscount"), (
        "a return rolls back its share of the discount"
    )
    [rejected] = by_effect(envelopes[4], "rejectCoupon")
    assert rejected["props"]["rejectionReason"] == "CouponNotFound"
    assert envelopes[7]["session"]["state"] == "cancelled"
    assert all(
        e["envelopeId"] == envelope_id(topic, e["source"]["partition"], e["source"]["offset"])
        for e in envelopes
    )
    # Each call carried an Idempotency-Key derived from its source record: the envelope's id.
    assert [e["idempotencyKey"] for e in log] == [e["envelopeId"] for e in envelopes]
    assert worker.stats.dead_lettered == 0


async def test_bad_records_go_to_the_dlq_with_reasons_and_offsets_move_past_them(
    broker: Broker, emulator: EmulatorServer, unique: str
) -> None:
    settings = worker_settings(broker, emulator, unique)
    topic = create_topics(broker, settings, partitions=1)
    who = {"profileId": "bob", "sessionId": "bob-s1"}
    records = [
        (b"bob", event(1, "cart.updated", **who, payload={"cartItems": TUTORIAL_CART})),
        (b"bob", b'{"type": "cart.updated", "eventId": '),  # malformed JSON
        # Talon.One answers 400: the session attribute is not declared in the Application.
        (
            b"bob",
            event(3, "cart.updated", **who, payload={"attributes": {"favouriteColour": "teal"}}),
        ),
        (b"bob", event(4, "order.placed", **who)),
    ]
    produce(broker.bootstrap_servers, topic, records)

    worker = Worker(settings)
    async with running(worker):
        await wait_for(lambda: worker.stats.outcomes >= 4, what="4 outcomes")
        await wait_for(
            lambda: committed(settings.bootstrap_servers, settings.group_id, topic) == 4,
            what="the commit to pass every record",
        )

    dlq = read_topic(broker.bootstrap_servers, settings.dlq_topic, 2)
    by_offset = {int(dict(m.headers())["talon-stream.source.offset"]): m for m in dlq}  # type: ignore[attr-defined]
    assert sorted(by_offset) == [1, 2]
    malformed, rejected = by_offset[1], by_offset[2]
    assert malformed.value() == records[1][1]  # type: ignore[attr-defined]
    assert malformed.key() == b"bob"  # type: ignore[attr-defined]
    headers = dict(malformed.headers())  # type: ignore[attr-defined]
    assert headers["talon-stream.error.class"] == b"DecodeError"
    assert b"not valid JSON" in headers["talon-stream.error.message"]
    assert headers["talon-stream.source.topic"] == topic.encode()

    headers = dict(rejected.headers())  # type: ignore[attr-defined]
    assert rejected.value() == records[2][1]  # type: ignore[attr-defined]
    assert headers["talon-stream.error.class"] == b"TalonPermanentError"
    assert headers["talon-stream.http.status"] == b"400"
    assert b"The submitted data was invalid" in headers["talon-stream.http.body"]
    assert b"favouriteColour" in headers["talon-stream.error.message"]

    effects = read_topic(broker.bootstrap_servers, settings.effects_topic, 2)
    assert [orjson.loads(m.value())["source"]["offset"] for m in effects] == [0, 3]  # type: ignore[attr-defined]
    assert committed(settings.bootstrap_servers, settings.group_id, topic) == 4


def committed(bootstrap: str, group: str, topic: str) -> int:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        [partition] = consumer.committed([TopicPartition(topic, 0)], timeout=10)
        return int(partition.offset)
    finally:
        consumer.close()
