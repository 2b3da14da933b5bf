"""An Avro effects topic read back for the live side: the envelope the worker wrote, JSON-shaped
again (effects with their props), kept for its source record."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from talon_stream._exceptions import DecodeError
from talon_stream.config._settings import Settings
from talon_stream.core._records import InputRecord
from talon_stream.formats.avro._schemas import schemas
from talon_stream.formats.avro.codec import AvroEncoder
from talon_stream.formats.avro.formats import EnvelopeReader, envelope_reader
from talon_stream.formats.avro.registry import registry_client
from talon_stream.whatif import LiveEffects, PartitionRange
from tests.schema_registry import SchemaRegistryServer

EFFECTS = [
    {
        "campaignId": 12,
        "rulesetId": 1201,
        "ruleIndex": 0,
        "ruleName": "5 off each pair of trousers",
        "effectType": "setDiscountPerItem",
        "props": {"name": "5 off trousers", "value": 5, "position": 1},
        "triggeredForCatalogItem": 7,
    },
    {
        "campaignId": 1,
        "rulesetId": 101,
        "ruleIndex": 0,
        "ruleName": "20% off",
        "effectType": "setDiscount",
        "props": {"name": "20% off", "value": 24.6},
        "someNewField": {"x": 1},
    },
]
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
    "effects": EFFECTS,
    "createdCoupons": [],
    "createdReferrals": [],
    "session": None,
    "processingMs": 1.5,
    "processedAt": "2026-11-22T10:15:00.131+00:00",
}


@pytest.fixture(scope="module")
def registry() -> Iterator[SchemaRegistryServer]:
    with SchemaRegistryServer() as server:
        yield server


async def test_avro_envelopes_are_read_back_for_the_live_side(
    registry: SchemaRegistryServer,
) -> None:
    client = registry_client(registry.url)
    encoder = AvroEncoder(client, schemas().effects_envelope, url=registry.url, auto_register=True)
    encoder.register("effects.avro")
    value = encoder.encode("effects.avro", ENVELOPE)
    reader = EnvelopeReader(registry_client(registry.url), registry.url)
    record = InputRecord("effects.avro", 0, 0, b"c-1", value, [], None)
    await reader.prefetch([record])
    envelope = reader.read(record)
    assert envelope["source"]["offset"] == 1187
    assert envelope["effects"] == EFFECTS  # props parsed, every other field merged back
    live = LiveEffects((12,), [PartitionRange("shop.carts", 3, 1000, 1100, None)])
    assert live.add(envelope)
    found = live.get(InputRecord("shop.carts", 3, 1187, b"c-1", b"", [], None))
    assert found is not None
    assert found.effects == [EFFECTS[0]]
    with pytest.raises(DecodeError):
        reader.read(InputRecord("effects.avro", 0, 1, b"c-1", b'{"json": 1}', [], None))
    reader.close()


def test_a_json_effects_topic_needs_no_reader() -> None:
    settings = Settings(talon_api_key="k")
    assert envelope_reader(settings, settings.effects_topic) is None
    avro = Settings(
        talon_api_key="k",
        topic_formats={"talon.effects": "avro"},
        schema_registry_url="http://127.0.0.1:1",
    )
    assert isinstance(envelope_reader(avro, "talon.effects"), EnvelopeReader)
