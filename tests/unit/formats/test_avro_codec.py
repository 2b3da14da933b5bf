"""The Confluent wire format through a Schema Registry (the test emulator, over HTTP on
loopback): decoding input records and their errors, encoding output, per-topic formats, and a
record processor with Avro topics."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from confluent_kafka.schema_registry import topic_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from talon_stream._exceptions import (
    ConfigurationError,
    DecodeError,
    RecordError,
    TalonPermanentError,
    TalonStreamError,
)
from talon_stream.config._settings import Settings, load_settings
from talon_stream.core._dead_letters import DlqFailure
from talon_stream.core._events import CustomerEvent, Event, decode_event
from talon_stream.core._records import InputRecord
from talon_stream.core._routing import EffectRouter
from talon_stream.core._translate import TranslationOptions
from talon_stream.dlq import DeadLetterWriter
from talon_stream.formats.avro._datum import DatumCodec
from talon_stream.formats.avro._errors import EncodeError, RegistryError
from talon_stream.formats.avro._schemas import schemas
from talon_stream.formats.avro.codec import AvroDecoder, AvroEncoder, schema_id_of
from talon_stream.formats.avro.formats import AvroFormats, DlqUnwrapper, avro_formats, avro_topics
from talon_stream.formats.avro.registry import WriterSchemas, registry_client
from talon_stream.formats.mapping._mappings import parse_mappings
from talon_stream.ops import WorkerStats
from talon_stream.processing._processor import RecordProcessor
from tests.fakes import ScriptedTalon, Sink, make_processor
from tests.schema_registry import SchemaRegistryServer

SCHEMAS = schemas()
CODEC = DatumCodec(SCHEMAS.event.parsed)
REVIEW = decode_event(
    orjson.dumps(
        {
            "eventId": "e-1",
            "type": "customer.event",
            "occurredAt": "2026-11-25T18:30:00Z",
            "profileId": "c-1",
            "payload": {"eventType": "review_submitted", "attributes": {"rating": 5}},
        }
    )
)
CART = decode_event(
    orjson.dumps(
        {
            "eventId": "e-2",
            "type": "cart.updated",
            "occurredAt": "2026-11-22T10:00:00Z",
            "profileId": "c-1",
            "sessionId": "s-1",
            "payload": {"cartItems": [{"sku": "A", "quantity": 1, "price": 10}]},
        }
    )
)


@pytest.fixture(scope="module")
def registry() -> Iterator[SchemaRegistryServer]:
    with SchemaRegistryServer() as server:
        yield server


def serialize_datum(
    registry: SchemaRegistryServer, topic: str, datum: Any, schema: str = ""
) -> bytes:
    """``datum`` as a shop's producer writes it: AvroSerializer, topic name strategy, the event
    schema unless ``schema`` is given."""
    serializer = AvroSerializer(
        registry_client(registry.url),
        schema or SCHEMAS.event.text,
        conf={"subject.name.strategy": topic_subject_name_strategy},
    )
    value = serializer(datum, SerializationContext(topic, MessageField.VALUE))
    assert value is not None
    return value


def serialize(registry: SchemaRegistryServer, topic: str, event: Event, schema: str = "") -> bytes:
    """``event`` as a shop's producer writes it."""
    datum = CODEC.to_avro(event.model_dump(by_alias=True))
    if schema and not schema.startswith("["):
        datum = datum[1]  # a record schema takes the record, a union the (branch, record)
    return serialize_datum(registry, topic, datum, schema)


async def decoder_for(registry: SchemaRegistryServer, *values: bytes) -> AvroDecoder:
    writers = WriterSchemas(registry_client(registry.url), registry.url)
    await writers.fetch(writers.unknown(values))
    return AvroDecoder(writers, SCHEMAS.event)


# --- decoding -----------------------------------------------------------------------------------


async def test_an_avro_event_decodes_to_the_same_model_with_one_registry_call(
    registry: SchemaRegistryServer,
) -> None:
    value = serialize(registry, "shop.events", REVIEW)
    assert value[0] == 0
    before = len(registry.requests)
    decoder = await decoder_for(registry, value)
    for _ in range(50):
        assert decoder.decode_event(value) == REVIEW
    assert registry.requests[before:] == [("GET", f"/schemas/ids/{schema_id_of(value)}")]


async def test_a_writer_that_registered_one_event_type_is_read_too(
    registry: SchemaRegistryServer,
) -> None:
    value = serialize(registry, "shop.reviews", REVIEW, SCHEMAS.event_type("customer.event").text)
    decoder = await decoder_for(registry, value)
    assert decoder.decode_event(value) == REVIEW


async def test_a_writer_on_an_older_schema_is_resolved(registry: SchemaRegistryServer) -> None:
    # An earlier customer.event schema, before loyaltyCards and storeIntegrationId.
    older = orjson.loads(SCHEMAS.event_type("customer.event").text)
    payload = older["fields"][-1]["type"]
    payload["fields"] = [f for f in payload["fields"] if f["name"] in ("eventType", "attributes")]
    value = serialize(registry, "shop.old", REVIEW, orjson.dumps(older).decode())
    decoder = await decoder_for(registry, value)
    event = decoder.decode_event(value)
    assert isinstance(event, CustomerEvent)
    assert event.payload.attributes == {"rating": 5}
    assert event.payload.loyalty_cards is None


async def test_a_union_writer_on_an_older_schema_is_resolved_branch_by_branch(
    registry: SchemaRegistryServer,
) -> None:
    union = orjson.loads(SCHEMAS.event.text)
    # customer.event, as an older version without storeIntegrationId
    review = next(b for b in union if b["name"].endswith("CustomerEvent"))
    payload = review["fields"][-1]["type"]
    payload["fields"] = [f for f in payload["fields"] if f["name"] != "storeIntegrationId"]
    value = serialize(registry, "shop.union-old", REVIEW, orjson.dumps(union).decode())
    cart = serialize(registry, "shop.union-old", CART, orjson.dumps(union).decode())
    decoder = await decoder_for(registry, value)
    assert decoder.decode_event(value) == REVIEW
    assert decoder.decode_event(cart) == CART
    with pytest.raises(DecodeError, match="the union has no branch 40"):
        decoder.decode_event(value[:5] + b"\x50")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "has no value"),
        (b"", "has no value"),
        (b'{"eventId": "e-1"}', "looks like JSON"),
        (b"\x01\x00\x00\x00\x01\x02", "not in the Confluent Avro wire format"),
        (b"\x00\x00\x00", "not in the Confluent Avro wire format"),
        (b"\x00\x00\x00\x30\x39\x02\x04", "has no schema with id 12345"),
    ],
)
async def test_records_that_are_not_avro_events_say_why(
    registry: SchemaRegistryServer, value: bytes | None, reason: str
) -> None:
    decoder = await decoder_for(registry, *([value] if value else []))
    with pytest.raises(DecodeError, match=reason):
        decoder.decode_event(value)


async def test_corrupt_avro_data_is_a_decode_error(registry: SchemaRegistryServer) -> None:
    value = serialize(registry, "shop.events", REVIEW)
    decoder = await decoder_for(registry, value)
    with pytest.raises(DecodeError, match=f"not valid Avro of schema id {schema_id_of(value)}"):
        decoder.decode_event(value[:-4])
    garbage = value[:5] + b"\xff" * 20
    with pytest.raises(DecodeError, match="not valid Avro"):
        decoder.decode_event(garbage)


async def test_json_text_fields_must_hold_json(registry: SchemaRegistryServer) -> None:
    datum = CODEC.to_avro(REVIEW.model_dump(by_alias=True))
    datum[1]["payload"]["attributes"] = "{not json"
    value = serialize_datum(registry, "shop.events", datum)
    decoder = await decoder_for(registry, value)
    with pytest.raises(DecodeError, match="is not JSON"):
        decoder.decode_event(value)


async def test_an_invalid_avro_event_names_the_field_as_for_json(
    registry: SchemaRegistryServer,
) -> None:
    datum = CODEC.to_avro(CART.model_dump(by_alias=True))
    datum[1]["sessionId"] = None  # Avro allows it; a cart event needs one
    value = serialize_datum(registry, "shop.events", datum)
    decoder = await decoder_for(registry, value)
    with pytest.raises(DecodeError, match="needs a sessionId"):
        decoder.decode_event(value)


async def test_a_schema_that_does_not_resolve_to_the_events_is_a_decode_error(
    registry: SchemaRegistryServer,
) -> None:
    other = '{"type": "record", "name": "Other", "fields": [{"name": "x", "type": "long"}]}'
    schema_id = registry.register("foreign-value", other)
    value = b"\x00" + schema_id.to_bytes(4, "big") + b"\x02"
    decoder = await decoder_for(registry, value)
    with pytest.raises(DecodeError, match=r"its record Other is not a record of event\.avsc"):
        decoder.decode_event(value)
    assert decoder.read_document(value) == {"x": 1}  # what a mapped topic reads


# --- encoding -----------------------------------------------------------------------------------

ENVELOPE: dict[str, Any] = {
    "envelopeId": "2b0f4f0e-6c55-5b8e-9d0c-6a1b0b0f9a3e",
    "envelopeVersion": 1,
    "source": {
        "eventId": "e-1",
        "type": "cart.updated",
        "occurredAt": "2026-11-22T10:15:00+00:00",
        "topic": "shop.carts",
        "partition": 3,
        "offset": 1187,
        "timestamp": None,
    },
    "operation": "updateCustomerSessionV2",
    "status": 200,
    "profileId": "c-1",
    "sessionId": "s-1",
    "effects": [{"effectType": "setDiscount", "props": {"name": "x", "value": 2}}],
    "createdCoupons": [],
    "createdReferrals": [],
    "session": None,
    "processingMs": 1.5,
    "processedAt": "2026-11-22T10:15:00.131+00:00",
}


def deserialize(registry: SchemaRegistryServer, topic: str, value: bytes) -> Any:
    deserializer = AvroDeserializer(
        registry_client(registry.url),
        conf={"subject.name.strategy": topic_subject_name_strategy},
    )
    return deserializer(value, SerializationContext(topic, MessageField.VALUE))


def test_envelopes_are_registered_at_start_then_encoded_without_the_registry(
    registry: SchemaRegistryServer,
) -> None:
    encoder = AvroEncoder(
        registry_client(registry.url),
        SCHEMAS.effects_envelope,
        url=registry.url,
        auto_register=True,
    )
    encoder.register("effects.one")
    assert ("POST", "/subjects/effects.one-value/versions?normalize=False") in registry.requests
    before = len(registry.requests)
    values = [encoder.encode("effects.one", ENVELOPE) for _ in range(20)]
    assert len(registry.requests) == before
    read = deserialize(registry, "effects.one", values[0])
    assert read["envelopeId"] == ENVELOPE["envelopeId"]
    assert orjson.loads(read["effects"][0]["props"]) == {"name": "x", "value": 2}


def test_a_superseded_envelope_is_written_and_read_back_with_what_superseded_it(
    registry: SchemaRegistryServer,
) -> None:
    encoder = AvroEncoder(
        registry_client(registry.url),
        SCHEMAS.effects_envelope,
        url=registry.url,
        auto_register=True,
    )
    encoder.register("effects.late")
    by = {
        "eventId": "o1",
        "type": "order.placed",
        "occurredAt": "2026-12-05T10:00:05+00:00",
        "envelopeId": "5a0e7f3c-2b19-5d77-9e4a-0c6b8d1f2e93",
        "sessionState": "closed",
        "reason": "happened before order.placed o1",
    }
    late = {**ENVELOPE, "status": 0, "effects": [], "session": None, "superseded": by}
    read = deserialize(registry, "effects.late", encoder.encode("effects.late", late))
    assert read["status"] == 0
    assert read["superseded"] == by
    # An envelope of a call has none.
    assert (
        deserialize(registry, "effects.late", encoder.encode("effects.late", ENVELOPE))[
            "superseded"
        ]
        is None
    )


def test_dropped_attributes_are_written_and_read_back(registry: SchemaRegistryServer) -> None:
    encoder = AvroEncoder(
        registry_client(registry.url),
        SCHEMAS.effects_envelope,
        url=registry.url,
        auto_register=True,
    )
    encoder.register("effects.dropped")
    dropped = {**ENVELOPE, "droppedAttributes": ["CustomerSession.shoe", "CartItem.fabric"]}
    read = deserialize(registry, "effects.dropped", encoder.encode("effects.dropped", dropped))
    assert read["droppedAttributes"] == ["CustomerSession.shoe", "CartItem.fabric"]
    plain = deserialize(registry, "effects.dropped", encoder.encode("effects.dropped", ENVELOPE))
    assert plain["droppedAttributes"] is None


def test_without_auto_registration_an_unregistered_subject_stops_the_start(
    registry: SchemaRegistryServer,
) -> None:
    encoder = AvroEncoder(
        registry_client(registry.url),
        SCHEMAS.effects_envelope,
        url=registry.url,
        auto_register=False,
    )
    with pytest.raises(ConfigurationError, match="AUTO_REGISTER"):
        encoder.register("effects.unregistered")
    registry.register("effects.registered-value", SCHEMAS.effects_envelope.text)
    encoder.register("effects.registered")  # looked up: fine


def test_an_incompatible_subject_stops_the_start(registry: SchemaRegistryServer) -> None:
    newer = orjson.loads(SCHEMAS.effects_envelope.text)
    newer["fields"].append({"name": "mandatory", "type": "string", "default": "x"})
    registry.register("effects.newer-value", orjson.dumps(newer).decode())
    incompatible = copy.deepcopy(newer)
    incompatible["fields"][-1] = {"name": "mandatory2", "type": "string"}
    registry.register("effects.clash-value", orjson.dumps(incompatible).decode())
    # Ours lacks "mandatory2", which has no default: data written with ours cannot be read
    # with the subject's schema... and the registry checks the other way round: ours must read
    # the latest. Ours reads both, so the first registers; a subject on FULL refuses.
    encoder = AvroEncoder(
        registry_client(registry.url),
        SCHEMAS.effects_envelope,
        url=registry.url,
        auto_register=True,
    )
    encoder.register("effects.newer")
    registry.registry.levels["effects.clash-value"] = "FORWARD"
    with pytest.raises(ConfigurationError, match="not compatible"):
        encoder.register("effects.clash")


def test_an_envelope_that_does_not_fit_is_an_encode_error(
    registry: SchemaRegistryServer,
) -> None:
    encoder = AvroEncoder(
        registry_client(registry.url),
        SCHEMAS.effects_envelope,
        url=registry.url,
        auto_register=True,
    )
    encoder.register("effects.bad")
    broken = {**ENVELOPE, "effects": [{"props": {}}]}  # no effectType
    with pytest.raises(EncodeError, match=r"effects\.bad"):
        encoder.encode("effects.bad", broken)


# --- formats and configuration ----------------------------------------------------------------


def settings(**fields: Any) -> Settings:
    return load_settings(talon_api_key="k", **fields)


def test_avro_without_a_registry_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="TALON_STREAM_SCHEMA_REGISTRY_URL is not set"):
        avro_topics(settings(topic_formats={"shop.orders": "avro"}))


def test_formats_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALON_STREAM_TOPIC_FORMATS", '{"shop.orders": "avro", "x": "json"}')
    monkeypatch.setenv("TALON_STREAM_SCHEMA_REGISTRY_URL", "http://registry:8081/")
    monkeypatch.setenv("TALON_STREAM_SCHEMA_REGISTRY_BASIC_AUTH", "user:secret")
    monkeypatch.setenv("TALON_STREAM_SCHEMA_REGISTRY_AUTO_REGISTER", "false")
    found = load_settings()
    assert found.topic_formats == {"shop.orders": "avro", "x": "json"}
    assert found.schema_registry_url == "http://registry:8081"
    assert found.schema_registry_auto_register is False
    assert "secret" not in repr(found)
    monkeypatch.setenv("TALON_STREAM_TOPIC_FORMATS", '{"shop.orders": "protobuf"}')
    with pytest.raises(ConfigurationError, match="TALON_STREAM_TOPIC_FORMATS"):
        load_settings()


def test_a_registry_url_must_be_http() -> None:
    with pytest.raises(ConfigurationError, match=r"(?i)schema_registry_url"):
        settings(schema_registry_url="registry:8081")


def test_only_json_topics_need_no_avro_side() -> None:
    assert avro_formats(settings(topic_formats={"shop.orders": "json"})) is None
    # A topic the worker neither reads nor writes: nothing to do either.
    assert (
        avro_formats(
            settings(topic_formats={"elsewhere": "avro"}, schema_registry_url="http://r:1")
        )
        is None
    )


async def test_the_schema_fetch_waits_out_an_outage_and_stops_on_request(
    registry: SchemaRegistryServer,
) -> None:
    value = serialize(registry, "shop.events", REVIEW)
    formats = avro_formats(
        settings(
            input_topics=("shop.events",),
            topic_formats={"shop.events": "avro"},
            schema_registry_url=registry.url,
        )
    )
    assert formats is not None
    record = InputRecord("shop.events", 0, 0, b"c-1", value, [], None)
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    registry.fail_next(2 * 3, 503)  # two fetches, each with the client's own two retries
    assert await formats.prefetch([record], sleep=sleep)
    assert sleeps == [0.5, 1.0]
    assert formats.decode_event(value) == REVIEW

    other = InputRecord("shop.events", 0, 1, b"c-1", b"\x00\x00\x00\x03\x00\x02", [], None)
    registry.fail_next(3, 503)
    assert not await formats.prefetch([other], sleep=sleep, stopping=lambda: True)
    formats.close()


async def test_refused_credentials_stop_the_worker() -> None:
    with SchemaRegistryServer(users={"worker": "right"}) as guarded:
        writers = WriterSchemas(
            registry_client(guarded.url, basic_auth="worker:wrong"), guarded.url
        )
        with pytest.raises(RegistryError, match="HTTP 401"):
            await writers.fetch({1})
        allowed = WriterSchemas(
            registry_client(guarded.url, basic_auth="worker:right"), guarded.url
        )
        await allowed.fetch({1})  # unknown, but asked: the credentials were accepted
        assert "no schema with id 1" in allowed.missing(1)


# --- a record processor with Avro topics --------------------------------------------------------


ANSWER = {
    "effects": [
        {"campaignId": 1, "effectType": "setDiscount", "props": {"name": "x", "value": 2}},
        {"campaignId": 1, "effectType": "showNotification", "props": {"title": "t"}},
    ],
    "customerSession": {"integrationId": "s-1", "state": "open", "total": 10, "updateCount": 1},
}


async def avro_processor(
    registry: SchemaRegistryServer,
    talon: ScriptedTalon,
    sink: Sink,
    records: list[InputRecord],
    **more: Any,
) -> tuple[RecordProcessor, AvroFormats]:
    formats = avro_formats(
        settings(
            input_topics=("avro.in", "json.in"),
            effects_topic="avro.effects",
            dlq_topic="avro.dlq",
            effect_routes={"json.pricing": ["setDiscount*"]},
            topic_formats={"avro.in": "avro", "avro.effects": "avro", "avro.dlq": "avro"},
            schema_registry_url=registry.url,
        )
    )
    assert formats is not None
    await formats.start()
    assert await formats.prefetch(records)
    processor = make_processor(
        talon,
        sink,
        effects_topic="avro.effects",
        dlq_topic="avro.dlq",
        options=TranslationOptions(),
        router=EffectRouter({"json.pricing": ["setDiscount*"]}),
        avro=formats,
        **more,
    )
    return processor, formats


async def test_avro_in_avro_envelope_out_and_routed_json_stays_json(
    registry: SchemaRegistryServer,
) -> None:
    value = serialize(registry, "avro.in", CART)
    record = InputRecord("avro.in", 0, 5, b"c-1", value, [], 1_795_000_000_000)
    talon, sink = ScriptedTalon(ANSWER), Sink()
    processor, _ = await avro_processor(registry, talon, sink, [record])
    await processor.process(record)
    [(topic, key, envelope, _), (routed_topic, _, routed, _)] = sink.records
    assert (topic, key, routed_topic) == ("avro.effects", b"c-1", "json.pricing")
    assert envelope is not None
    read = deserialize(registry, "avro.effects", envelope)
    assert (read["source"]["topic"], read["source"]["offset"]) == ("avro.in", 5)
    assert read["session"]["total"] == 10.0
    assert [e["effectType"] for e in read["effects"]] == ["setDiscount", "showNotification"]
    assert orjson.loads(routed or b"")["effects"] == [ANSWER["effects"][0]]


async def test_a_json_topic_beside_avro_ones_is_read_as_json(
    registry: SchemaRegistryServer,
) -> None:
    value = CART.model_dump_json(by_alias=True).encode()
    record = InputRecord("json.in", 0, 6, b"c-1", value, [], None)
    talon, sink = ScriptedTalon(ANSWER), Sink()
    processor, _ = await avro_processor(registry, talon, sink, [record])
    await processor.process(record)
    assert sink.records[0][0] == "avro.effects"


async def test_a_corrupt_avro_record_goes_to_the_avro_dlq_with_its_reason(
    registry: SchemaRegistryServer,
) -> None:
    value = serialize(registry, "avro.in", CART)[:-3]
    record = InputRecord("avro.in", 1, 9, b"c-1", value, [("h", b"v")], 1_795_000_000_000)
    sink = Sink()
    processor, _ = await avro_processor(registry, ScriptedTalon(), sink, [record])
    await processor.process(record)
    [(topic, key, dlq_value, headers)] = sink.records
    assert (topic, key) == ("avro.dlq", b"c-1")
    found = dict(headers or [])
    assert found["h"] == b"v"
    assert found["talon-stream.error.class"] == b"DecodeError"
    assert b"not valid Avro" in found["talon-stream.error.message"]
    assert dlq_value is not None
    envelope = deserialize(registry, "avro.dlq", dlq_value)
    assert envelope["value"] == value
    assert envelope["errorClass"] == "DecodeError"
    assert "not valid Avro" in envelope["errorMessage"]
    assert (envelope["sourceTopic"], envelope["sourcePartition"], envelope["sourceOffset"]) == (
        "avro.in",
        1,
        9,
    )
    assert envelope["headers"] == [{"name": "h", "value": b"v"}]
    # The replay gets the original record back out of it.
    unwrapper = DlqUnwrapper(registry_client(registry.url), registry.url)
    dlq_record = InputRecord("avro.dlq", 0, 0, key, dlq_value, headers or [], None)
    await unwrapper.prefetch([dlq_record])
    original = unwrapper.unwrap(dlq_record)
    assert (original.key, original.value) == (b"c-1", value)
    with pytest.raises(DecodeError):
        unwrapper.unwrap(InputRecord("avro.dlq", 0, 1, key, value, [], None))


async def test_an_answer_that_does_not_fit_the_schema_is_dead_lettered(
    registry: SchemaRegistryServer,
) -> None:
    value = serialize(registry, "avro.in", CART)
    record = InputRecord("avro.in", 0, 7, b"c-1", value, [], None)
    odd = {"effects": [{"effectType": 42, "props": {}}]}  # effectType must be a string
    sink = Sink()
    processor, _ = await avro_processor(registry, ScriptedTalon(odd), sink, [record])
    await processor.process(record)
    [(topic, _, _, headers)] = sink.records
    assert topic == "avro.dlq"
    found = dict(headers or [])
    assert found["talon-stream.error.class"] == b"EncodeError"
    assert found["talon-stream.attempts"] == b"1"


async def test_a_permanent_api_error_fills_the_http_fields_of_the_dlq_envelope(
    registry: SchemaRegistryServer,
) -> None:
    value = serialize(registry, "avro.in", CART)
    record = InputRecord("avro.in", 0, 8, b"c-1", value, [], None)
    sink = Sink()
    processor, formats = await avro_processor(registry, ScriptedTalon(ANSWER), sink, [record])
    prepared = processor.prepare(record)
    assert prepared.call is not None
    error = TalonPermanentError("no", call=prepared.call, status=400, body="x" * 3000)
    at = datetime.now(tz=UTC)
    dlq_sink = Sink()
    writer = DeadLetterWriter(dlq_sink, "avro.dlq", stats=WorkerStats(), avro=formats)
    await writer.write(record, DlqFailure(error, 3, at, at), call=prepared.call)
    [(_, _, dlq_value, _)] = dlq_sink.records
    envelope = deserialize(registry, "avro.dlq", dlq_value or b"")
    assert (envelope["httpStatus"], len(envelope["httpBody"]), envelope["attempts"]) == (
        400,
        2000,
        3,
    )
    assert envelope["talonOperation"] == "updateCustomerSessionV2"


async def test_a_mapped_avro_topic_maps_the_shops_own_documents() -> None:
    with SchemaRegistryServer() as registry:  # its own: the topic's subject has another schema
        await _mapped_avro_topic(registry)


async def _mapped_avro_topic(registry: SchemaRegistryServer) -> None:
    shop_schema = {
        "type": "record",
        "name": "ShopReview",
        "namespace": "shop",
        "fields": [
            {"name": "customer", "type": "string"},
            {"name": "stars", "type": "long"},
            {"name": "at", "type": "string"},
        ],
    }
    value = serialize_datum(
        registry,
        "avro.in",
        {"customer": "c-9", "stars": 4, "at": "2026-11-25T18:30:00Z"},
        orjson.dumps(shop_schema).decode(),
    )
    mappings = parse_mappings(
        """
mappings:
  - name: reviews
    topics: [avro.in]
    rules:
      - name: review
        type: customer.event
        fields:
          eventId: "join('@', [customer, at])"
          occurredAt: at
          profileId: customer
          payload.eventType: {const: review_submitted}
          payload.attributes.rating: stars
"""
    )
    record = InputRecord("avro.in", 0, 1, b"c-9", value, [], None)
    processor, _ = await avro_processor(
        registry, ScriptedTalon(), Sink(), [record], mappings=mappings
    )
    prepared = processor.prepare(record)
    assert prepared.error is None, prepared.error
    assert isinstance(prepared.event, CustomerEvent)
    assert prepared.event.payload.attributes == {"rating": 4}


def test_a_worker_with_an_avro_topic_and_no_registry_does_not_start() -> None:
    from talon_stream.processing._worker import Worker

    with pytest.raises(ConfigurationError, match="TALON_STREAM_SCHEMA_REGISTRY_URL"):
        Worker(settings(topic_formats={"shop.orders": "avro"}))


def test_the_json_path_never_imports_the_registry_client() -> None:
    code = (
        "import sys\n"
        "from talon_stream.config._settings import load_settings\n"
        "from talon_stream.processing._worker import Worker\n"
        "from talon_stream.dlq import replay_dlq\n"
        "worker = Worker(load_settings(talon_api_key='k'))\n"
        "assert worker.avro is None\n"
        "print('confluent_kafka.schema_registry' in sys.modules)\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert found.stdout.strip() == "False"


def test_the_avro_package_api_is_importable_and_its_errors_are_in_the_tree() -> None:
    import talon_stream.formats.avro as avro

    assert len(set(avro.__all__)) == len(avro.__all__)  # ruff (RUF022) keeps it sorted
    for name in avro.__all__:
        assert getattr(avro, name) is not None
    assert issubclass(avro.RegistryError, TalonStreamError)
    assert issubclass(avro.EncodeError, RecordError)
