"""Offsets committed without holding the consumer: the broker's answer comes back to the event
loop while the consumer goes on fetching, and says which partitions it took."""

from __future__ import annotations

import asyncio

import pytest
from confluent_kafka import Consumer, TopicPartition

from talon_stream.core._records import PartitionKey
from talon_stream.demo._broker import Broker
from talon_stream.kafka._consumer import AsyncConsumer
from talon_stream.scheduling._offsets import CommitPoint
from tests.conftest import produce


def committed(
    bootstrap: str, group: str, partitions: list[PartitionKey]
) -> dict[PartitionKey, tuple[int, str]]:
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        found = reader.committed([TopicPartition(t, p) for t, p in partitions], timeout=10)
    finally:
        reader.close()
    return {(tp.topic, tp.partition): (tp.offset, tp.metadata or "") for tp in found}


def member(broker: Broker, group: str) -> AsyncConsumer:
    return AsyncConsumer(
        {
            "bootstrap.servers": broker.bootstrap_servers,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
        }
    )


async def joined(consumer: AsyncConsumer, topic: str) -> list[PartitionKey]:
    assigned: list[PartitionKey] = []

    async def on_assign(partitions: list[PartitionKey], _resumes: object) -> None:
        assigned.extend(partitions)

    async def on_revoke(
        _partitions: list[PartitionKey], _metadata: object
    ) -> dict[PartitionKey, CommitPoint]:
        return {}

    await consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    for _ in range(100):
        await consumer.consume(100, 0.1)
        if assigned:
            break
    return assigned


async def test_a_commit_sent_without_waiting_is_answered_on_the_loop(
    broker: Broker, unique: str
) -> None:
    topic, group = f"commits.{unique}", f"group.{unique}"
    broker.create_topics({topic: 2})
    produce(broker.bootstrap_servers, topic, [(b"k%d" % n, b"v") for n in range(20)])
    consumer = member(broker, group)
    answers: list[tuple[dict[PartitionKey, CommitPoint], set[PartitionKey], bool]] = []
    loop = asyncio.get_running_loop()

    def answer(points: dict[PartitionKey, CommitPoint], taken: set[PartitionKey]) -> None:
        # On the event loop's own thread: the worker marks its offsets from here.
        answers.append((points, taken, asyncio.get_running_loop() is loop))

    try:
        assert sorted(await joined(consumer, topic)) == [(topic, 0), (topic, 1)]
        points = {(topic, 0): CommitPoint(3, "m0"), (topic, 1): CommitPoint(5)}
        assert await consumer.commit_soon(points, answer)
        # A second one may go before the first is answered: the answers come in order.
        later = {(topic, 0): CommitPoint(4, "m1")}
        assert await consumer.commit_soon(later, answer)
        assert answers == []  # nothing waited for the broker
        for _ in range(100):  # the answers are served while the consumer fetches
            await consumer.consume(100, 0.05)
            if len(answers) == 2:
                break
        assert answers == [
            (points, {(topic, 0), (topic, 1)}, True),
            (later, {(topic, 0)}, True),
        ]
        assert not await consumer.commit_soon({}, answer)  # nothing to send
    finally:
        await consumer.close()
    # Tansu drops commit metadata (shared reference tansu.md); Apache Kafka keeps it.
    kept = "" if broker.kind == "tansu" else "m1"
    assert committed(broker.bootstrap_servers, group, [(topic, 0), (topic, 1)]) == {
        (topic, 0): (4, kept),
        (topic, 1): (5, ""),
    }


async def test_a_refused_commit_counts_for_none_of_its_partitions(
    broker: Broker, unique: str
) -> None:
    if broker.kind == "tansu":
        pytest.skip(
            "Tansu takes a commit for a partition that does not exist: no refusal to provoke "
            "(tested on Apache Kafka)"
        )
    topic, group = f"commits.{unique}", f"group.{unique}"
    broker.create_topics({topic: 1})
    consumer = member(broker, group)
    answers: list[set[PartitionKey]] = []
    try:
        await joined(consumer, topic)
        # Partition 7 does not exist: librdkafka reports the request failed. Nothing counts as
        # committed (a coalesced call must not start on a commit that may not hold); partition
        # 0's offset goes again with the next commit.
        points = {(topic, 0): CommitPoint(0), (topic, 7): CommitPoint(1)}
        assert await consumer.commit_soon(points, lambda _points, taken: answers.append(taken))
        for _ in range(100):
            await consumer.consume(100, 0.05)
            if answers:
                break
    finally:
        await consumer.close()
    assert answers == [set()]
