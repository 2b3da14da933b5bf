"""Attributes Talon.One does not know, end to end: with TALON_STREAM_SKIP_UNKNOWN_ATTRIBUTES the
calls go again without them and the envelopes and /metrics say which; without it, the records
go to the DLQ as before."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from talon_one_emulator import EmulatorServer
from talon_stream.demo._broker import Broker
from talon_stream.processing._worker import Worker
from tests.conftest import produce, read_all
from tests.integration.conftest import create_topics, running, wait_for, worker_settings
from tests.integration.test_metrics import scrape, total

pytestmark = pytest.mark.integration


def event(n: int, event_type: str, **fields: Any) -> tuple[bytes, bytes]:
    body = {"eventId": f"x-{n}", "type": event_type, "occurredAt": "2026-11-22T10:00:00Z"}
    return str(fields.get("profileId", n)).encode(), orjson.dumps({**body, **fields})


#: Each record sets attributes the emulator's Application declares and some it does not.
RECORDS = [
    event(
        1,
        "cart.updated",
        profileId="una",
        sessionId="una-s",
        payload={
            "attributes": {"channel": "web", "shoe": "boot"},
            "cartItems": [
                {"sku": "A", "quantity": 1, "price": 5, "attributes": {"color": "red", "fabric": 1}}
            ],
        },
    ),
    event(
        2,
        "customer.updated",
        profileId="una",
        payload={"attributes": {"tier": "gold", "pet": "cat"}},
    ),
    event(
        3,
        "customer.updated",
        profileId="ulf",
        payload={"attributes": {"Name": "Ulf", "pet": "dog"}, "runRuleEngine": False},
    ),
    event(
        4,
        "customer.event",
        profileId="una",
        payload={"eventType": "review_submitted", "attributes": {"rating": 5, "mood": "happy"}},
    ),
]
DROPPED = {
    "x-1": ["CustomerSession.shoe", "CartItem.fabric"],
    "x-2": ["CustomerProfile.pet"],
    "x-3": ["CustomerProfile.pet"],
    "x-4": ["Event.mood"],
}


async def test_unknown_attributes_are_left_out_and_reported(
    broker: Broker, emulator: EmulatorServer, unique: str
) -> None:
    settings = worker_settings(
        broker,
        emulator,
        unique,
        skip_unknown_attributes=True,
        health_port=0,
        health_host="127.0.0.1",
        bulk_profiles_linger_ms=50,
    )
    create_topics(broker, settings, partitions=2)
    produce(broker.bootstrap_servers, settings.input_topics[0], RECORDS)
    worker = Worker(settings)
    async with running(worker):
        await wait_for(lambda: worker.stats.outcomes >= len(RECORDS), what="outcomes")
        assert worker.health_port is not None
        samples = await scrape(worker.health_port)
    assert worker.stats.dead_lettered == 0

    envelopes = [
        orjson.loads(v) for v in read_all(broker.bootstrap_servers, settings.effects_topic)
    ]
    assert {e["source"]["eventId"]: sorted(e["droppedAttributes"]) for e in envelopes} == {
        key: sorted(names) for key, names in DROPPED.items()
    }
    for entity, name in [
        ("CustomerSession", "shoe"),
        ("CartItem", "fabric"),
        ("CustomerProfile", "pet"),
        ("Event", "mood"),
    ]:
        assert total(
            samples, "talon_stream_attributes_dropped_total", entity=entity, attribute=name
        ) == (2 if name == "pet" else 1)

    # Each refused request was made again without what it named, and that one was taken.
    log = emulator.state.request_log.entries()
    taken = [e for e in log if e["status"] in (200, 204)]
    bodies = orjson.dumps([e["body"] for e in taken]).decode()
    for name in ("shoe", "fabric", "pet", "mood"):
        assert f'"{name}"' not in bodies
    assert sum(1 for e in log if e["status"] == 400) == 4
    assert emulator.state.profiles["una"].attributes == {"tier": "gold"}
    assert emulator.state.profiles["ulf"].attributes == {"Name": "Ulf"}


async def test_without_the_option_such_records_go_to_the_dlq(
    broker: Broker, emulator: EmulatorServer, unique: str
) -> None:
    settings = worker_settings(broker, emulator, unique, bulk_profiles_linger_ms=50)
    create_topics(broker, settings, partitions=2)
    produce(broker.bootstrap_servers, settings.input_topics[0], RECORDS)
    worker = Worker(settings)
    async with running(worker):
        await wait_for(lambda: worker.stats.outcomes >= len(RECORDS), what="outcomes")
    assert worker.stats.dead_lettered == len(RECORDS)
    assert worker.stats.dropped_attributes == {}
    assert worker.stats.dlq_reasons == {"TalonPermanentError": len(RECORDS)}
