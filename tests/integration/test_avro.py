"""Avro end to end: a real broker, the Talon.One emulator and the Schema Registry emulator, all
over loopback. One worker reads Avro events from one topic and JSON events from another, writes
Avro effects envelopes, dead-letters a corrupt Avro record into an Avro DLQ — and the DLQ replay
gives the original record back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from confluent_kafka import Message, Producer
from confluent_kafka.schema_registry import topic_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from talon_one_emulator import EmulatorServer
from talon_stream.core._events import decode_event
from talon_stream.demo._broker import Broker
from talon_stream.dlq import ReplayOptions, replay_dlq
from talon_stream.formats.avro._datum import DatumCodec
from talon_stream.formats.avro._schemas import schemas
from talon_stream.formats.avro.registry import registry_client
from talon_stream.processing._worker import Worker
from tests.conftest import read_topic
from tests.integration.conftest import running, wait_for, worker_settings
from tests.schema_registry import SchemaRegistryServer

REVIEW = "review_submitted"  # an event type the emulator's campaigns define
CART = [
    {"sku": "SKU-BLOUSE-RS", "name": "Red Spring Blouse", "price": 49, "quantity": 1},
    {"sku": "SKU-TROUSERS-DN", "name": "Denim Trousers", "price": 74, "quantity": 1},
]


@pytest.fixture
def registry() -> Iterator[SchemaRegistryServer]:
    with SchemaRegistryServer(users={"talon-stream": "s3cret"}) as server:
        yield server


def event(n: int, event_type: str, **fields: Any) -> bytes:
    return orjson.dumps(
        {"eventId": f"e-{n}", "type": event_type, "occurredAt": "2026-11-22T10:00:00Z", **fields}
    )


def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for key, value in records:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(10) == 0


async def test_avro_and_json_in_avro_envelopes_out_and_a_corrupt_record_in_the_dlq(
    broker: Broker, emulator: EmulatorServer, registry: SchemaRegistryServer, unique: str
) -> None:
    avro_in, json_in = f"avro-in-{unique}", f"json-in-{unique}"
    effects, dlq = f"effects-{unique}", f"dlq-{unique}"
    settings = worker_settings(
        broker,
        emulator,
        unique,
        input_topics=(avro_in, json_in),
        effect_routes={},
        topic_formats={avro_in: "avro", effects: "avro", dlq: "avro"},
        schema_registry_url=registry.url,
        schema_registry_basic_auth="talon-stream:s3cret",
    )
    broker.create_topics({avro_in: 2, json_in: 2, effects: 2, dlq: 1})

    # A shop's producer: AvroSerializer with the event union, the topic name strategy.
    client = registry_client(registry.url, basic_auth="talon-stream:s3cret")
    event_schema = schemas().event
    serializer = AvroSerializer(
        client, event_schema.text, conf={"subject.name.strategy": topic_subject_name_strategy}
    )
    codec = DatumCodec(event_schema.parsed)
    context = SerializationContext(avro_in, MessageField.VALUE)

    def avro(value: bytes) -> bytes:
        datum = codec.to_avro(decode_event(value).model_dump(by_alias=True))
        encoded = serializer(datum, context)
        assert encoded is not None
        return encoded

    ada = {"profileId": "ada", "sessionId": "ada-s1"}
    avro_events = [
        (b"ada", avro(event(1, "customer.updated", profileId="ada", payload={"attributes": {}}))),
        (b"ada", avro(event(2, "cart.updated", **ada, payload={"cartItems": CART}))),
        (b"ada", avro(event(3, "order.placed", **ada))),
    ]
    corrupt = avro_events[1][1][:-6]  # the wire format header, then too few bytes
    produce(broker.bootstrap_servers, avro_in, [*avro_events, (b"bob", corrupt)])
    bob = {"profileId": "bob", "sessionId": "bob-s1"}
    json_events = [
        (b"bob", event(10, "cart.updated", **bob, payload={"cartItems": CART[:1]})),
        (b"bob", event(11, "customer.event", profileId="bob", payload={"eventType": REVIEW})),
    ]
    produce(broker.bootstrap_servers, json_in, json_events)

    worker = Worker(settings)
    async with running(worker):
        await wait_for(
            lambda: worker.stats.effects_published == 5 and worker.stats.dead_lettered == 1,
            what="5 envelopes and 1 DLQ record",
        )

    deserializer = AvroDeserializer(
        registry_client(registry.url, basic_auth="talon-stream:s3cret"),
        conf={"subject.name.strategy": topic_subject_name_strategy},
    )
    messages: list[Message] = read_topic(broker.bootstrap_servers, effects, 5)  # type: ignore[assignment]
    envelopes = [
        deserializer(m.value(), SerializationContext(effects, MessageField.VALUE)) for m in messages
    ]
    assert all(m.value()[:1] == b"\x00" for m in messages)  # the wire format
    by_event = {e["source"]["eventId"]: e for e in envelopes}
    assert set(by_event) == {"e-1", "e-2", "e-3", "e-10", "e-11"}
    cart = by_event["e-2"]
    assert cart["source"]["topic"] == avro_in
    assert cart["source"]["occurredAt"] == "2026-11-22T10:00:00+00:00"
    assert (cart["operation"], cart["status"]) == ("updateCustomerSessionV2", 200)
    assert (cart["profileId"], cart["sessionId"]) == ("ada", "ada-s1")
    assert cart["session"]["state"] == "open"
    assert cart["session"]["cartItemTotal"] == 123.0
    assert by_event["e-3"]["session"]["state"] == "closed"
    assert by_event["e-10"]["source"]["topic"] == json_in
    assert by_event["e-11"]["operation"] == "trackEventV2"
    for envelope in envelopes:
        for effect in envelope["effects"]:
            assert isinstance(effect["effectType"], str)
            orjson.loads(effect["props"] or "null")  # JSON text
    assert {m.key() for m in messages} == {b"ada", b"bob"}

    [dead] = read_topic(broker.bootstrap_servers, dlq, 1)
    assert isinstance(dead, Message)
    headers = dict(dead.headers() or [])
    assert headers["talon-stream.error.class"] == b"DecodeError"
    assert b"not valid Avro" in headers["talon-stream.error.message"]
    assert headers["talon-stream.source.topic"] == avro_in.encode()
    letter = deserializer(dead.value(), SerializationContext(dlq, MessageField.VALUE))
    assert letter["value"] == corrupt
    assert letter["key"] == b"bob"
    assert letter["errorClass"] == "DecodeError"
    assert "not valid Avro" in letter["errorMessage"]

    # The output schemas are registered under the topic name strategy's subjects, and the
    # worker asked the registry for the input schema once, not once per record.
    subjects = set(client.get_subjects())
    assert {f"{effects}-value", f"{dlq}-value", f"{avro_in}-value"} <= subjects
    fetches = [path for method, path in registry.requests if path.startswith("/schemas/ids/")]
    assert len(fetches) <= 3  # the worker's one fetch, plus the deserializer's reads here

    # The replay unwraps the Avro DLQ envelope: the original bytes go back.
    target = f"replayed-{unique}"
    broker.create_topics({target: 1})
    summary = await replay_dlq(settings, ReplayOptions(dlq, to_topic=target))
    assert (summary.scanned, summary.replayed, summary.skipped_not_envelope) == (1, 1, 0)
    [replayed] = read_topic(broker.bootstrap_servers, target, 1)
    assert isinstance(replayed, Message)
    assert (replayed.key(), replayed.value()) == (b"bob", corrupt)
