"""TransactionalSink over a scripted transactional producer: publishes are queued without
waiting for the broker, a publish that arrives during a commit goes into the next transaction,
a commit carries the input offsets with their metadata, a retriable commit error is retried,
and a transaction that cannot be committed is aborted and fails every later publish."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from talon_stream.kafka._producer import AsyncProducer
from talon_stream.kafka._transactions import TransactionAbortedError, TransactionalSink
from talon_stream.scheduling._offsets import CommitPoint
from tests.unit.kafka.test_producer import ScriptedProducer


class ScriptedTransactions(ScriptedProducer):
    """A scripted producer with librdkafka's transactional calls, logged in order."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, Any]] = []
        self.commit_errors: list[KafkaError] = []  # raised by the next commits, in turn
        self.hold_commit: threading.Event | None = None  # set: the commit may go on

    def init_transactions(self, _timeout: float) -> None:
        self.calls.append(("init", None))

    def begin_transaction(self) -> None:
        self.calls.append(("begin", len(self.produced)))

    def send_offsets_to_transaction(self, offsets: Any, metadata: Any, _timeout: float) -> None:
        self.calls.append(("offsets", (offsets, metadata)))

    def commit_transaction(self, _timeout: float) -> None:
        if self.hold_commit is not None:
            self.hold_commit.wait(5)
        if self.commit_errors:
            raise KafkaException(self.commit_errors.pop(0))
        # What the commit flushed: every record produced so far.
        self.calls.append(("commit", len(self.produced)))

    def abort_transaction(self, _timeout: float) -> None:
        self.calls.append(("abort", len(self.produced)))


async def _sink() -> tuple[TransactionalSink, ScriptedTransactions]:
    scripted = ScriptedTransactions()
    producer = AsyncProducer({}, factory=lambda _config: scripted, poll_interval_s=0.001)
    sink = TransactionalSink(producer, timeout_s=1)
    await sink.start()
    return sink, scripted


async def _commit(sink: TransactionalSink, points: dict[Any, CommitPoint]) -> bool:
    async with sink.quiet():
        return await sink.commit(points, "group-metadata")


def _record(value: bytes) -> tuple[str, bytes, bytes, None]:
    return ("effects", b"customer-1", value, None)


async def test_a_publish_returns_once_queued_without_waiting_for_the_broker() -> None:
    sink, scripted = await _sink()
    await asyncio.wait_for(sink.send_all([_record(b"a"), _record(b"b")]), 1)
    assert [each["value"] for each in scripted.produced] == [b"a", b"b"]
    assert all(each["on_delivery"] is None for each in scripted.produced)
    await sink.close()


async def test_a_commit_carries_the_offsets_with_their_metadata_and_opens_the_next() -> None:
    sink, scripted = await _sink()
    await sink.send_all([_record(b"a")])
    assert await _commit(sink, {("shop.orders", 3): CommitPoint(42, "ts1:abc")})
    name, (offsets, metadata) = scripted.calls[2]
    assert name == "offsets"
    assert metadata == "group-metadata"
    assert [(o.topic, o.partition, o.offset, o.metadata) for o in offsets] == [
        ("shop.orders", 3, 42, "ts1:abc")
    ]
    assert scripted.calls[3:] == [("commit", 1), ("begin", 1)]
    assert (sink.committed, sink.aborted) == (1, 0)
    await sink.close()


async def test_nothing_to_commit_makes_no_transaction() -> None:
    sink, scripted = await _sink()
    assert not await _commit(sink, {})
    assert scripted.calls == [("init", None), ("begin", 0)]
    await sink.close()


async def test_a_publish_during_a_commit_waits_for_it_and_goes_into_the_next_transaction() -> None:
    sink, scripted = await _sink()
    await sink.send_all([_record(b"before")])
    scripted.hold_commit = threading.Event()
    committing = asyncio.create_task(_commit(sink, {("shop.orders", 0): CommitPoint(1, "")}))
    await asyncio.sleep(0.02)
    publishing = asyncio.create_task(sink.send_all([_record(b"during")]))
    await asyncio.sleep(0.02)
    assert len(scripted.produced) == 1  # held back while the commit is under way
    scripted.hold_commit.set()
    await asyncio.wait_for(committing, 1)
    await asyncio.wait_for(publishing, 1)
    assert ("commit", 1) in scripted.calls  # the first transaction held only "before"
    assert scripted.calls[-1] == ("begin", 1)
    assert [each["value"] for each in scripted.produced] == [b"before", b"during"]
    await sink.close()


async def test_a_retriable_commit_error_is_retried() -> None:
    sink, scripted = await _sink()
    await sink.send_all([_record(b"a")])
    scripted.commit_errors = [KafkaError(KafkaError._TIMED_OUT, "slow", retriable=True)]
    assert await _commit(sink, {})
    assert ("commit", 1) in scripted.calls
    assert sink.failure is None
    await sink.close()


async def test_a_refused_record_aborts_the_transaction_and_fails_later_publishes() -> None:
    sink, scripted = await _sink()
    await sink.send_all([_record(b"a")])
    # What librdkafka's commit says when the broker refused a record of the transaction.
    scripted.commit_errors = [
        KafkaError(KafkaError._MSG_TIMED_OUT, "delivery failed", txn_requires_abort=True)
    ]
    with pytest.raises(TransactionAbortedError, match="delivery failed"):
        await _commit(sink, {("shop.orders", 0): CommitPoint(1, "")})
    assert scripted.calls[-1] == ("abort", 1)
    assert (sink.committed, sink.aborted) == (0, 1)
    with pytest.raises(TransactionAbortedError):
        await sink.send_all([_record(b"b")])
    assert len(scripted.produced) == 1
    await sink.close()
    assert scripted.calls[-1] == ("abort", 1)  # closing aborts nothing twice
