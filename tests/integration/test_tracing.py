"""Trace context end to end: a record's traceparent reaches the effects topic's records."""

from __future__ import annotations

import time
import uuid

import orjson
from confluent_kafka import Consumer, Producer

from talon_one_emulator import EmulatorServer
from talon_stream.demo._broker import Broker
from talon_stream.processing._worker import Worker
from tests.integration.conftest import create_topics, running, wait_for, worker_settings

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


async def test_traceparent_is_carried_to_the_effects_record(
    broker: Broker, emulator: EmulatorServer, unique: str
) -> None:
    settings = worker_settings(broker, emulator, unique, effect_routes={})
    topic = create_topics(broker, settings, partitions=1)
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
    event = {
        "eventId": "e-1",
        "type": "cart.updated",
        "occurredAt": "2026-11-22T10:00:00Z",
        "profileId": "tracy",
        "sessionId": "tracy-s1",
        "payload": {"cartItems": [{"sku": "A", "quantity": 1, "price": 10}]},
    }
    producer.produce(
        topic,
        key=b"tracy",
        value=orjson.dumps(event),
        headers=[("traceparent", PARENT.encode()), ("tracestate", b"shop=42")],
    )
    assert producer.flush(10) == 0

    worker = Worker(settings)
    async with running(worker):
        await wait_for(lambda: worker.stats.effects_published == 1, what="the envelope")

    reader = Consumer(
        {
            "bootstrap.servers": broker.bootstrap_servers,
            "group.id": f"trace-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
        }
    )
    reader.subscribe([settings.effects_topic])
    try:
        deadline = time.monotonic() + 30
        message = None
        while message is None and time.monotonic() < deadline:
            found = reader.poll(0.5)
            if found is not None and found.error() is None:
                message = found
    finally:
        reader.close()
    assert message is not None
    headers = {name: value.decode() for name, value in message.headers() or []}
    assert headers["traceparent"].split("-")[1] == TRACE_ID
    assert headers["tracestate"] == "shop=42"
