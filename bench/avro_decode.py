"""Per-record decode cost: JSON, Avro with :class:`talon_stream.formats.avro.codec.AvroDecoder`
(fastavro
directly, writer schemas fetched ahead), and Avro with confluent-kafka's ``AvroDeserializer``
(then the same JSON-text conversion and validation). The decode runs for every record, on the
event loop, so this is what chose the decoder.

    .venv/bin/python bench/avro_decode.py            # prints one JSON line
    .venv/bin/python bench/avro_decode.py --write    # also bench/results/avro_decode.json

The registry is confluent-kafka's in-memory mock (``mock://``): no HTTP in the loop, for either.
Rounds alternate between the contenders, and each figure is the median over the rounds, so a
busy machine slows all of them alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka.schema_registry import topic_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from talon_stream.core import decode_event, validate_event
from talon_stream.formats.avro import DatumCodec, schemas
from talon_stream.formats.avro.codec import AvroDecoder
from talon_stream.formats.avro.registry import WriterSchemas, registry_client

RESULTS = Path(__file__).resolve().parent / "results" / "avro_decode.json"
CART = {
    "eventId": "evt-000123",
    "type": "cart.updated",
    "occurredAt": "2026-11-22T10:15:00Z",
    "profileId": "customer-00042",
    "sessionId": "session-0000123",
    "payload": {
        "cartItems": [
            {"sku": "SKU-BLOUSE-RS", "name": "Red Spring Blouse", "price": 49, "quantity": 1},
            {"sku": "SKU-TROUSERS-DN", "name": "Denim Trousers", "price": 74, "quantity": 1},
        ],
        "couponCodes": ["xmas20"],
        "attributes": {"channel": "web"},
    },
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=5000, help="records per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--write", action="store_true", help="write bench/results/avro_decode.json")
    arguments = parser.parse_args()

    found = schemas()
    client = registry_client("mock://bench")
    topic = "shop.orders"
    context = SerializationContext(topic, MessageField.VALUE)
    codec = DatumCodec(found.event.parsed)
    event = decode_event(orjson.dumps(CART))
    serializer = AvroSerializer(
        client, found.event.text, conf={"subject.name.strategy": topic_subject_name_strategy}
    )
    avro_value = serializer(codec.to_avro(event.model_dump(by_alias=True)), context)
    assert avro_value is not None
    json_value = orjson.dumps(CART)

    writers = WriterSchemas(client, "mock://bench")
    asyncio.run(writers.fetch(writers.unknown([avro_value])))
    decoder = AvroDecoder(writers, found.event)
    deserializer = AvroDeserializer(
        client, found.event.text, conf={"subject.name.strategy": topic_subject_name_strategy}
    )

    def with_deserializer(value: bytes) -> Any:
        return validate_event(codec.from_avro(deserializer(value, context)))

    contenders: dict[str, tuple[Callable[[bytes], Any], bytes]] = {
        "json": (decode_event, json_value),
        "avro_fastavro": (decoder.decode_event, avro_value),
        "avro_deserializer": (with_deserializer, avro_value),
    }
    for decode, value in contenders.values():
        assert decode(value) == event
    timings: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(arguments.rounds):
        for name, (decode, value) in contenders.items():
            started = time.perf_counter()
            for _ in range(arguments.records):
                decode(value)
            timings[name].append((time.perf_counter() - started) / arguments.records * 1e6)
    result = {
        "records_per_round": arguments.records,
        "rounds": arguments.rounds,
        "avro_bytes": len(avro_value),
        "json_bytes": len(json_value),
        "us_per_record": {name: round(statistics.median(t), 1) for name, t in timings.items()},
    }
    line = json.dumps(result)
    print(line)
    if arguments.write:
        RESULTS.write_text(line + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
