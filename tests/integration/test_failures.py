"""A refused API key stops the worker instead of flooding the DLQ, and skips nothing."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, TopicPartition

from emulator.server import EmulatorServer
from tests.conftest import produce
from tests.integration.conftest import create_topics, worker_settings
from workers.broker import Broker
from workers.exceptions import TalonFatalError
from workers.worker import Worker


async def test_a_wrong_api_key_stops_the_worker_with_nothing_dead_lettered(
    broker: Broker, emulator: EmulatorServer, unique: str
) -> None:
    settings = worker_settings(broker, emulator, unique, talon_api_key="not-the-key")
    topic = create_topics(broker, settings, partitions=1)
    value = (
        b'{"eventId": "e-1", "type": "cart.updated", "occurredAt": "2026-11-22T10:00:00Z",'
        b' "sessionId": "s-1", "payload": {"cartItems": []}}'
    )
    produce(broker.bootstrap_servers, topic, [(b"s-1", value)] * 3)

    worker = Worker(settings)
    with pytest.raises(TalonFatalError) as caught:
        await worker.run()
    assert caught.value.status == 401
    assert "not-the-key" not in str(caught.value)
    assert worker.stats.dead_lettered == 0
    assert worker.stats.effects_published == 0
    # Nothing was committed: a worker with the right key starts from the first record.
    consumer = Consumer(
        {"bootstrap.servers": broker.bootstrap_servers, "group.id": settings.group_id}
    )
    try:
        [committed] = consumer.committed([TopicPartition(topic, 0)], timeout=10)
    finally:
        consumer.close()
    assert committed.offset < 0  # no commit at all
    assert [e["status"] for e in emulator.state.request_log] == [401]
