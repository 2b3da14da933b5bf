"""Thin asyncio adapters over confluent-kafka's Consumer and Producer.

The event loop never blocks on Kafka:

* :class:`AsyncConsumer` runs every consumer call on one dedicated thread (librdkafka's consumer
  must not be used from two threads at once). Rebalance callbacks fire on that thread; they hand
  the partitions to coroutines on the loop and wait for them, and commit what those return
  right there (a commit from the loop would queue behind the callback and deadlock).
* :class:`AsyncProducer` serves librdkafka's delivery reports on the event loop (a non-blocking
  poll on a timer while records are unacknowledged) and resolves one asyncio future per batch
  of records sent together when the broker has acknowledged them all.

Records cross this boundary as :class:`InputRecord`; ``confluent_kafka`` errors become
:class:`~workers.exceptions.BrokerError`.
"""

from __future__ import annotations

import asyncio
import logging
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

    Delivery reports are served on the event loop's own thread: while records wait for their
    acknowledgement, a timer polls librdkafka without blocking every ``poll_interval_s``, and each
    report counts towards the future of the records sent with it, settled there and then — no
    thread of our own, no hand-over between threads, no contention for the GIL. Idle, it costs
    nothing."""

    def __init__(
        self,
        config: dict[str, Any],
        *,
        factory: Callable[[dict[str, Any]], Any] = Producer,
        poll_interval_s: float = 0.002,
    ) -> None:
        self._producer = factory(config)
        self._interval = poll_interval_s
        self._unacked = 0  # records produced whose delivery report has not been served
        self._timer: asyncio.TimerHandle | None = None

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
        await self.send_all(((topic, key, value, headers),), partition=partition)

    async def send_all(
        self, records: Sequence[OutputRecord], *, partition: int | None = None
    ) -> None:
        """Produce every record at once, then wait until the broker has acknowledged them all:
        one wait, and one future, for the lot.

        Raises:
            BrokerError: a record was rejected; the first rejection is the one raised.
        """
        if not records:
            return
        loop = asyncio.get_running_loop()
        acked: asyncio.Future[None] = loop.create_future()
        waiting = len(records)

        def delivered(error: KafkaError | None, message: Message) -> None:
            nonlocal waiting
            self._unacked -= 1
            waiting -= 1
            if acked.done():  # an earlier record failed, or the sender was cancelled
                return
            if error is not None:
                acked.set_exception(BrokerError(f"delivery to {message.topic()!r} failed: {error}"))
            elif waiting == 0:
                acked.set_result(None)

        try:
            for topic, key, value, headers in records:
                await self._enqueue(loop, topic, key, value, headers, partition, delivered)
        except BaseException:
            acked.cancel()  # the records already queued report to nobody
            raise
        await acked

    async def _enqueue(
        self,
        loop: asyncio.AbstractEventLoop,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None,
        partition: int | None,
        delivered: Callable[[KafkaError | None, Message], None],
    ) -> None:
        """Queue one record in librdkafka, waiting while its local queue is full."""
        # Not passed at all when None: librdkafka's partitioner then picks the partition.
        where = {} if partition is None else {"partition": partition}
        while True:
            try:
                self._producer.produce(
                    topic, value=value, key=key, headers=headers, on_delivery=delivered, **where
                )
            except BufferError:  # local queue full: let deliveries drain
                self._producer.poll(0)
                await asyncio.sleep(self._interval)
            except KafkaException as exc:
                raise BrokerError(f"could not produce to {topic!r}: {exc}") from exc
            else:
                self._unacked += 1
                if self._timer is None:
                    self._timer = loop.call_later(self._interval, self._serve, loop)
                return

    def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        """Serve the delivery reports that arrived; come back while records are unacknowledged."""
        self._timer = None
        self._producer.poll(0)
        if self._unacked > 0:
            self._timer = loop.call_later(self._interval, self._serve, loop)

    async def flush(self, timeout_s: float = 10.0) -> int:
        """Wait (at most ``timeout_s``) until every produced record is delivered or failed, its
        future settled; returns how many are still queued."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            remaining: int = self._producer.flush(0)  # sends lingering batches, serves reports
            if remaining == 0 or loop.time() >= deadline:
                return remaining
            await asyncio.sleep(self._interval)

    async def close(self, timeout_s: float = 10.0) -> None:
        """Wait (at most ``timeout_s``) for every record to be acknowledged, then give up on the
        rest: their senders get a :class:`~workers.exceptions.BrokerError` (the records'
        offsets are not committed, so they are replayed), and librdkafka lets go of their
        delivery callbacks — which would otherwise keep this producer, its threads and its
        connections alive for as long as the process runs."""
        remaining = await self.flush(timeout_s)
        if remaining:
            log.error("%d produced records were not acknowledged before close", remaining)
            self._producer.purge()
            self._producer.poll(0)  # serves the purged records' reports
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
