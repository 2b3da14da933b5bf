"""Thin asyncio adapters over confluent-kafka's Consumer and Producer.

The event loop never blocks on Kafka:

* :class:`AsyncConsumer` runs every consumer call on one dedicated thread (librdkafka's consumer
  must not be used from two threads at once). Rebalance callbacks fire on that thread; they hand
  the partitions to coroutines on the loop and wait for them, and commit what those return
  right there (a commit from the loop would queue behind the callback and deadlock).
* :class:`AsyncProducer` keeps a background thread serving delivery reports and resolves one
  asyncio future per record when the broker acknowledges it.

Records cross this boundary as :class:`InputRecord`; ``confluent_kafka`` errors become
:class:`~workers.exceptions.BrokerError`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from workers.exceptions import BrokerError

__all__ = ["AsyncConsumer", "AsyncProducer", "Headers", "InputRecord", "PartitionKey"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Headers = list[tuple[str, bytes]]
PartitionKey = tuple[str, int]
#: A record to produce: topic, key, value, headers.
OutputRecord = tuple[str, bytes | None, bytes | None, "Headers | None"]
AssignHandler = Callable[[list[PartitionKey]], Coroutine[Any, Any, None]]
#: Called on revoke or loss; returns the offsets to commit for those partitions before they go.
RevokeHandler = Callable[[list[PartitionKey]], Coroutine[Any, Any, dict[PartitionKey, int]]]


@dataclass(frozen=True, slots=True)
class InputRecord:
    """One consumed record, detached from librdkafka."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp_ms: int | None

    @property
    def partition_key(self) -> PartitionKey:
        return (self.topic, self.partition)

    @classmethod
    def from_message(cls, message: Message) -> InputRecord:
        kind, timestamp = message.timestamp()
        # A consumed message's headers are always a list of (name, value) pairs.
        raw_headers: list[tuple[str, str | bytes | None]] = message.headers() or []  # type: ignore[assignment]
        headers = [(name, _as_bytes(value) or b"") for name, value in raw_headers]
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        # A consumed record without an error always has its coordinates.
        assert topic is not None
        assert partition is not None
        assert offset is not None
        return cls(
            topic=topic,
            partition=partition,
            offset=offset,
            key=_as_bytes(message.key()),
            value=_as_bytes(message.value()),
            headers=headers,
            timestamp_ms=timestamp if kind != 0 else None,  # 0 = TIMESTAMP_NOT_AVAILABLE
        )


def _as_bytes(value: str | bytes | None) -> bytes | None:
    if value is None:
        return None
    return value.encode() if isinstance(value, str) else value


class AsyncConsumer:
    """A consumer-group member whose calls run on one dedicated thread."""

    def __init__(
        self, config: dict[str, Any], *, factory: Callable[[dict[str, Any]], Any] = Consumer
    ) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kafka-consumer")
        self._consumer = factory(config)
        self._closed = False

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    async def subscribe(
        self, topics: Sequence[str], *, on_assign: AssignHandler, on_revoke: RevokeHandler
    ) -> None:
        loop = asyncio.get_running_loop()

        def assigned(consumer: Any, partitions: list[TopicPartition]) -> None:
            keys = [(tp.topic, tp.partition) for tp in partitions]
            asyncio.run_coroutine_threadsafe(on_assign(keys), loop).result()

        def revoked(consumer: Any, partitions: list[TopicPartition]) -> None:
            keys = [(tp.topic, tp.partition) for tp in partitions]
            offsets = asyncio.run_coroutine_threadsafe(on_revoke(keys), loop).result()
            if offsets:
                self._commit_now(offsets)

        await self._run(
            self._consumer.subscribe,
            list(topics),
            on_assign=assigned,
            on_revoke=revoked,
            on_lost=revoked,
        )

    async def consume(self, max_records: int, timeout_s: float) -> list[InputRecord]:
        """Up to ``max_records`` records, waiting at most ``timeout_s`` for the first one and not
        at all for the rest (librdkafka's batch consume would wait to fill the batch)."""
        messages = await self._run(self._fetch, max_records, timeout_s)
        records: list[InputRecord] = []
        for message in messages:
            error = message.error()
            if error is None:
                records.append(InputRecord.from_message(message))
            elif error.fatal():
                raise BrokerError(f"fatal consumer error: {error}")
            elif error.code() != KafkaError._PARTITION_EOF:
                log.warning("consumer error: %s", error)
        return records

    def _fetch(self, max_records: int, timeout_s: float) -> list[Message]:
        first = self._consumer.poll(timeout_s)
        if first is None:
            return []
        return [first, *self._consumer.consume(max_records - 1, 0)]

    async def high_watermarks(self, partitions: Iterable[PartitionKey]) -> dict[PartitionKey, int]:
        """The partitions' high watermarks as the last fetches reported them (no broker
        round-trip); partitions not fetched yet are left out."""
        return await self._run(self._cached_watermarks, list(partitions))

    def _cached_watermarks(self, partitions: list[PartitionKey]) -> dict[PartitionKey, int]:
        found = {}
        for topic, partition in partitions:
            try:
                _low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), cached=True
                )
            except KafkaException:
                continue
            if high >= 0:
                found[(topic, partition)] = int(high)
        return found

    async def commit(self, offsets: dict[PartitionKey, int]) -> None:
        """Commit ``offsets`` (next offset to read, per partition) synchronously."""
        if offsets:
            await self._run(self._commit_now, offsets)

    def _commit_now(self, offsets: dict[PartitionKey, int]) -> None:
        partitions = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            self._consumer.commit(offsets=partitions, asynchronous=False)
        except KafkaException as exc:
            # A commit can lose a race with a rebalance; the records are then replayed by the
            # next owner (at-least-once), never skipped.
            log.warning("offset commit failed (%s); uncommitted records will be replayed", exc)

    async def pause(self, partitions: Sequence[PartitionKey]) -> None:
        if partitions:
            await self._run(self._consumer.pause, [TopicPartition(t, p) for t, p in partitions])

    async def resume(self, partitions: Sequence[PartitionKey]) -> None:
        if partitions:
            await self._run(self._consumer.resume, [TopicPartition(t, p) for t, p in partitions])

    async def close(self) -> None:
        """Leave the group (fires the revoke callback) and release the thread."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._run(self._consumer.close)
        finally:
            self._executor.shutdown(wait=True)


class AsyncProducer:
    """Produces records and awaits the broker's acknowledgement of each.

    Delivery reports arrive on the poller thread; they are handed to the event loop in batches
    (one wake-up per poll, not one per record)."""

    def __init__(
        self, config: dict[str, Any], *, factory: Callable[[dict[str, Any]], Any] = Producer
    ) -> None:
        self._producer = factory(config)
        self._stopping = threading.Event()
        self._reports: deque[_Report] = deque()  # appended by librdkafka callbacks, any thread
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poller = threading.Thread(target=self._poll, name="kafka-producer", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stopping.is_set():
            self._producer.poll(0.05)
            self._hand_over()
        self._hand_over()

    def _hand_over(self) -> None:
        if not self._reports or self._loop is None:
            return
        batch = []
        while self._reports:
            batch.append(self._reports.popleft())
        self._loop.call_soon_threadsafe(_settle_all, batch)

    async def send(
        self,
        topic: str,
        *,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None = None,
        partition: int | None = None,
    ) -> None:
        """Produce one record and wait until the broker has acknowledged it. It goes to
        ``partition`` when given, else where the producer's partitioner puts its key.

        Raises:
            BrokerError: the record was rejected (too large, unknown topic or partition, timed
                out).
        """
        await (await self._produce(topic, key, value, headers, partition))

    async def send_all(self, records: Sequence[OutputRecord]) -> None:
        """Produce every record at once, then wait until the broker has acknowledged them all:
        one wait for the lot instead of one after another.

        Raises:
            BrokerError: a record was rejected.
        """
        acks = [await self._produce(*record, None) for record in records]
        for acked in acks:
            await acked  # mostly settled by the same batch of delivery reports as the first

    async def _produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None,
        partition: int | None,
    ) -> asyncio.Future[None]:
        loop = self._loop = asyncio.get_running_loop()
        acked: asyncio.Future[None] = loop.create_future()
        reports = self._reports

        def delivered(error: KafkaError | None, _message: Message) -> None:
            reports.append((acked, error, topic))

        # Not passed at all when None: librdkafka's partitioner then picks the partition.
        where = {} if partition is None else {"partition": partition}
        while True:
            try:
                self._producer.produce(
                    topic, value=value, key=key, headers=headers, on_delivery=delivered, **where
                )
            except BufferError:  # local queue full: let deliveries drain
                await asyncio.sleep(0.005)
            except KafkaException as exc:
                raise BrokerError(f"could not produce to {topic!r}: {exc}") from exc
            else:
                return acked

    async def flush(self, timeout_s: float = 10.0) -> int:
        """Wait for outstanding deliveries; returns how many are still queued."""
        loop = asyncio.get_running_loop()
        remaining: int = await loop.run_in_executor(None, self._producer.flush, timeout_s)
        return remaining

    async def close(self, timeout_s: float = 10.0) -> None:
        remaining = await self.flush(timeout_s)
        self._stopping.set()
        await asyncio.get_running_loop().run_in_executor(None, self._poller.join)
        if remaining:
            log.error("%d produced records were not acknowledged before close", remaining)


_Report = tuple["asyncio.Future[None]", KafkaError | None, str]


def _settle_all(reports: list[_Report]) -> None:
    for future, error, topic in reports:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(BrokerError(f"delivery to {topic!r} failed: {error}"))
