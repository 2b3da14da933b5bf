"""Two Talon.One Applications in one worker, one of them with a key Talon.One refuses.

Records name their market in a header. The refused Application halts alone: its calls wait and
probe, holding no call slot; every record of the other Application gets its envelope; nothing
is dead-lettered; and no partition's commit passes the first record of the halted one.
"""

from __future__ import annotations

import orjson
import pytest
from confluent_kafka import Producer

from talon_one_emulator import EmulatorServer
from talon_stream.demo._broker import Broker
from talon_stream.processing._worker import Worker
from tests.integration.conftest import create_topics, running, wait_for, worker_settings

pytestmark = pytest.mark.integration

RECORDS = 600
PARTITIONS = 3


async def test_a_refused_key_halts_only_its_application(
    broker: Broker, emulator: EmulatorServer, unique: str
) -> None:
    settings = worker_settings(
        broker,
        emulator,
        unique,
        applications={"fr": {"api_key": "a-key-talon-one-refuses"}},
        application_field="header:x-market",
        max_in_flight=8,  # fewer slots than halted calls: they must not hold them
        adaptive_concurrency=False,
        halt_probe_initial_s=0.2,
        halt_probe_max_s=0.5,
        drain_timeout_s=1.0,  # the halted Application's calls never finish: do not wait long
    )
    topic = create_topics(broker, settings, partitions=PARTITIONS)
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
    placed: dict[str, list[tuple[int, int]]] = {"default": [], "fr": []}

    def landed(market: str) -> object:
        def report(error: object, message: object) -> None:
            assert error is None, error
            placed[market].append((message.partition(), message.offset()))  # type: ignore[attr-defined]

        return report

    for index in range(RECORDS):
        market = "fr" if index % 3 == 0 else "default"
        event = {
            "eventId": f"e-{index}",
            "type": "cart.updated",
            "occurredAt": "2026-11-22T10:00:00Z",
            "profileId": f"{market}-c{index % 40}",
            "sessionId": f"{market}-s{index % 40}-{unique}",
            "payload": {"cartItems": [{"sku": "SKU-1", "quantity": 1, "price": 10.0}]},
        }
        headers = [("x-market", b"fr")] if market == "fr" else []
        producer.produce(
            topic,
            key=event["profileId"].encode(),
            value=orjson.dumps(event),
            headers=headers,
            on_delivery=landed(market),
        )
    assert producer.flush(10) == 0
    default_count = len(placed["default"])

    worker = Worker(settings)
    async with running(worker):
        await wait_for(
            lambda: worker.stats.effects_published >= default_count,
            timeout_s=90,
            what="an envelope for every record of the default Application",
        )
        await wait_for(lambda: bool(worker.committed), what="a commit")
        fr = worker.application_halts["fr"]
        assert fr.active
        assert "check TALON_STREAM_APPLICATIONS (fr.api_key)" in (fr.reason or "")
        assert not worker.halts.active  # the worker as a whole is not halted
        assert not worker.halt.active
        assert worker.stats.dead_lettered == 0
        committed = dict(worker.committed)

    assert worker.stats.effects_published == default_count
    first_fr = {}
    for partition, offset in placed["fr"]:
        first_fr[partition] = min(offset, first_fr.get(partition, offset))
    for (name, partition), offset in committed.items():
        assert name == topic
        assert offset <= first_fr[partition]
    assert worker.stats.calls_by_application["default"] >= default_count
    refused = [e for e in emulator.state.request_log.entries() if e["status"] == 401]
    assert fr.probes >= 1
    # Probed one call at a time, not hammered: the calls under way when the key was first
    # refused, then one probe each time.
    assert 1 <= len(refused) <= fr.probes + settings.max_in_flight
