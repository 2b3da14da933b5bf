"""Exactly-once output: the worker's records and its input offsets in one Kafka transaction.

:class:`TransactionalSink` is the :class:`~talon_stream.core.RecordSink` of a worker with
``processing_guarantee = "exactly-once"``. Records are handed to a transactional producer
without waiting for their acknowledgement — calls keep running, outcomes keep being published, a
customer's next call does not wait for the broker — and every transaction interval the worker
commits: :meth:`~TransactionalSink.quiet` holds new publishes back until those being handed over
are in librdkafka's queue (a record's outputs are all in a transaction or all out of it, and its
offset is finished as they are queued), then :meth:`~TransactionalSink.commit` sends the input
offsets with the consumer's group metadata and commits. The commit flushes the queue first and
fails if the broker refused any record, so readers with ``isolation.level=read_committed`` see
the outcome of a record if and only if its offset was committed with it.

A transaction that cannot be committed is aborted and the sink fails: its outcomes are gone, and
so is the worker's knowledge of which records had one, so the worker must stop and the records
be read again from the committed offsets (by this worker restarted, or by another member).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from talon_stream._exceptions import BrokerError
from talon_stream.core._records import OutputRecord, PartitionKey
from talon_stream.kafka._producer import AsyncProducer, OneBySend
from talon_stream.scheduling._offsets import CommitPoint

__all__ = ["TransactionAbortedError", "TransactionalSink"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class TransactionAbortedError(BrokerError):
    """The open transaction was aborted (or could not be committed): its outcomes are gone."""


class TransactionalSink(OneBySend):
    """Publishes through a transactional producer; commits input offsets with the outputs."""

    def __init__(self, producer: AsyncProducer, *, timeout_s: float = 30.0) -> None:
        self._producer = producer
        self._client = producer.client
        self._timeout_s = timeout_s
        # librdkafka's transactional calls block: they run on a thread of their own.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kafka-txn")
        self._open = asyncio.Event()  # publishes may start
        self._idle = asyncio.Event()  # no publish under way
        self._idle.set()
        self._publishing = 0
        self._produced = 0  # records produced in the open transaction
        self._lock = asyncio.Lock()
        #: Set once a transaction failed; nothing is published or committed after that.
        self.failure: BrokerError | None = None
        #: Transactions committed and aborted, and the time spent committing (seconds).
        self.committed = 0
        self.aborted = 0
        self.commit_seconds = 0.0

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    async def start(self) -> None:
        """Register the transactional id (fencing an earlier producer with the same id and
        aborting what it left open) and open the first transaction.

        Raises:
            BrokerError: the broker refused (no transaction support, or not in time).
        """
        try:
            await self._call(self._client.init_transactions, self._timeout_s)
            await self._call(self._client.begin_transaction)
        except KafkaException as exc:
            raise BrokerError(f"could not start Kafka transactions: {exc}") from exc
        self._open.set()

    async def send_all(
        self, records: Sequence[OutputRecord], *, partition: int | None = None
    ) -> None:
        """Queue ``records`` in the open transaction (the commit waits for their
        acknowledgement, not this); while a commit is being made, wait for it first.

        Raises:
            BrokerError: a record was refused on the spot, or the transactions failed.
        """
        while not self._open.is_set():
            if self.failure is not None:
                raise self.failure
            await self._open.wait()
        if self.failure is not None:
            raise self.failure
        self._publishing += 1
        self._idle.clear()
        try:
            self._produced += len(records)
            await self._producer.enqueue_all(records, partition=partition)
        finally:
            self._publishing -= 1
            if not self._publishing:
                self._idle.set()

    @contextlib.asynccontextmanager
    async def quiet(self) -> AsyncIterator[None]:
        """Hold new publishes back and wait until those under way are queued: inside, every
        record's outputs are in the open transaction in full or not at all."""
        async with self._lock:
            self._open.clear()
            try:
                await self._idle.wait()
                yield
            finally:
                self._open.set()  # after a failure, the publishes that waited raise it

    async def commit(self, points: Mapping[PartitionKey, CommitPoint], group_metadata: Any) -> bool:
        """Commit the open transaction with the input offsets ``points`` (call it inside
        :meth:`quiet`) and open the next one. Returns whether there was anything to commit.

        Raises:
            TransactionAbortedError: the transaction could not be committed and was aborted.
            BrokerError: the producer was fenced or failed fatally.
        """
        if self.failure is not None:
            raise self.failure
        if not points and not self._produced:
            return False
        offsets = [
            TopicPartition(topic, partition, point.offset, metadata=point.metadata)
            for (topic, partition), point in points.items()
        ]
        started = time.perf_counter()
        try:
            if offsets:
                await self._call(
                    self._client.send_offsets_to_transaction,
                    offsets,
                    group_metadata,
                    self._timeout_s,
                )
            await self._commit_transaction()
        except KafkaException as exc:
            await self._fail(exc)
        self.commit_seconds += time.perf_counter() - started
        self.committed += 1
        self._produced = 0
        await self._call(self._client.begin_transaction)
        return True

    async def _commit_transaction(self) -> None:
        """``commit_transaction``, retried while librdkafka says the error is retriable."""
        while True:
            try:
                await self._call(self._client.commit_transaction, self._timeout_s)
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if not error.retriable():
                    raise
                log.warning("transaction commit will be retried: %s", error)
            else:
                return

    async def _fail(self, exc: KafkaException) -> None:
        """Abort what can be aborted and remember the failure: the sink is done."""
        error: KafkaError = exc.args[0]
        if error.fatal():
            failure: BrokerError = BrokerError(f"the transactional producer failed: {error}")
        else:
            failure = TransactionAbortedError(f"the transaction was aborted: {error}")
            await self.abort()
        self.failure = failure
        raise failure from exc

    async def abort(self) -> None:
        """Abort the open transaction (its outcomes are discarded) and stop publishing."""
        self.failure = self.failure or TransactionAbortedError("the transaction was aborted")
        self._open.clear()
        try:
            await self._call(self._client.abort_transaction, self._timeout_s)
        except KafkaException as exc:
            log.error("aborting the transaction failed: %s", exc)  # noqa: TRY400
        else:
            self.aborted += 1
        self._open.set()  # publishes that waited now see the failure

    async def close(self) -> None:
        """Abort a transaction left open with records in it, and release the thread."""
        if self.failure is None and self._produced:
            await self.abort()
        self._executor.shutdown(wait=True)
