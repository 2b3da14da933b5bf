"""A thin asyncio adapter over confluent-kafka's Producer.

:class:`AsyncProducer` serves librdkafka's delivery reports on the event loop (a non-blocking poll
on a timer while records are unacknowledged) and resolves one asyncio future per batch of records
sent together when the broker has acknowledged them all. ``confluent_kafka`` errors become
:class:`~talon_stream.BrokerError`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from talon_stream._exceptions import BrokerError
from talon_stream.core._records import Headers, OutputRecord

__all__ = ["AsyncProducer", "OneBySend"]


class OneBySend:
    """``send`` (one record) in terms of ``send_all``, for the sinks of this package."""

    async def send_all(
        self, records: Sequence[OutputRecord], *, partition: int | None = None
    ) -> None:
        raise NotImplementedError

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


log = logging.getLogger(__name__)


class AsyncProducer(OneBySend):
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

    @property
    def client(self) -> Any:
        """The confluent-kafka ``Producer`` itself, for its transactional calls
        (:class:`~talon_stream.kafka.TransactionalSink`)."""
        return self._producer

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
            for record in records:
                if not self._produce(loop, record, partition, delivered):
                    await self._enqueue(loop, record, partition, delivered)
        except BaseException:
            acked.cancel()  # the records already queued report to nobody
            raise
        await acked

    async def enqueue_all(
        self, records: Sequence[OutputRecord], *, partition: int | None = None
    ) -> None:
        """Hand every record to librdkafka and return without waiting for acknowledgements:
        for a transactional producer, whose commit flushes them and fails when one was refused.
        Waits only while librdkafka's local queue is full.

        Raises:
            BrokerError: a record was refused on the spot (too large, unknown topic).
        """
        loop = asyncio.get_running_loop()
        for record in records:
            if not self._produce(loop, record, partition, None):
                await self._enqueue(loop, record, partition, None)

    def _produce(
        self,
        loop: asyncio.AbstractEventLoop,
        record: OutputRecord,
        partition: int | None,
        delivered: Callable[[KafkaError | None, Message], None] | None,
    ) -> bool:
        """Queue one record in librdkafka; False when its local queue is full (nothing queued).
        ``delivered`` gets its report (none when None)."""
        topic, key, value, headers = record
        try:
            if partition is None:  # librdkafka's partitioner picks the partition
                self._producer.produce(
                    topic, value=value, key=key, headers=headers, on_delivery=delivered
                )
            else:
                self._producer.produce(
                    topic,
                    value=value,
                    key=key,
                    headers=headers,
                    on_delivery=delivered,
                    partition=partition,
                )
        except BufferError:
            return False
        except KafkaException as exc:
            raise BrokerError(f"could not produce to {topic!r}: {exc}") from exc
        if delivered is not None:
            self._unacked += 1
            if self._timer is None:
                self._timer = loop.call_later(self._interval, self._serve, loop)
        return True

    async def _enqueue(
        self,
        loop: asyncio.AbstractEventLoop,
        record: OutputRecord,
        partition: int | None,
        delivered: Callable[[KafkaError | None, Message], None] | None,
    ) -> None:
        """Queue one record librdkafka's full local queue refused: let deliveries drain, try
        again."""
        while True:
            self._producer.poll(0)
            await asyncio.sleep(self._interval)
            if self._produce(loop, record, partition, delivered):
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
        rest: their senders get a :class:`~talon_stream.BrokerError` (the records'
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
