"""A thin asyncio adapter over confluent-kafka's Consumer: the event loop never blocks on it.

:class:`AsyncConsumer` runs every consumer call on one dedicated thread (librdkafka's consumer
must not be used from two threads at once). Rebalance callbacks fire on that thread; they hand
the partitions to coroutines on the loop and wait for them, and commit what those return right
there (a commit from the loop would queue behind the callback and deadlock).

Records cross this boundary as :class:`~talon_stream.core.InputRecord`; ``confluent_kafka``
errors become :class:`~talon_stream.BrokerError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from talon_stream._exceptions import BrokerError
from talon_stream.core._records import InputRecord, PartitionKey
from talon_stream.scheduling._offsets import CommitPoint, decode_finished, decode_groups
from talon_stream.scheduling._replay import Resume

__all__ = ["AssignHandler", "AsyncConsumer", "CommitAnswer", "RevokeHandler", "input_record"]

log = logging.getLogger(__name__)

T = TypeVar("T")
#: Called on assignment with the partitions and, for each, the offsets its last owner finished
#: above the offset it committed (read from the commit's metadata).
AssignHandler = Callable[
    [list[PartitionKey], dict[PartitionKey, Resume]], Coroutine[Any, Any, None]
]
#: Called on revoke or loss with the partitions and the group metadata of the generation that
#: owns them (for a transactional commit); returns what to commit for them before they go.
RevokeHandler = Callable[
    [list[PartitionKey], Any], Coroutine[Any, Any, dict[PartitionKey, CommitPoint]]
]
#: Called on the event loop when the broker answered a commit sent with
#: :meth:`AsyncConsumer.commit_soon`: the points sent, and the partitions whose commit it took.
CommitAnswer = Callable[[dict[PartitionKey, CommitPoint], set[PartitionKey]], None]


def input_record(message: Message) -> InputRecord:
    """The consumed ``message`` as an :class:`InputRecord`, detached from librdkafka."""
    kind, timestamp = message.timestamp()
    # A consumed message's headers are always a list of (name, value) pairs.
    raw_headers: list[tuple[str, str | bytes | None]] = message.headers() or []  # type: ignore[assignment]
    headers = [(name, _as_bytes(value) or b"") for name, value in raw_headers]
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    # A consumed record without an error always has its coordinates.
    assert topic is not None
    assert partition is not None
    assert offset is not None
    return InputRecord(
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
        #: Commits sent without waiting, oldest first, until librdkafka reports their answer (in
        #: that order, from a poll on the consumer's thread: only that thread touches it).
        self._commits: deque[
            tuple[dict[PartitionKey, CommitPoint], asyncio.AbstractEventLoop, CommitAnswer]
        ] = deque()
        self._consumer = factory({**config, "on_commit": self._answered})
        self._closed = False
        #: Per assigned partition, the committed offset reading started from (when there was one).
        self._starts: dict[PartitionKey, int] = {}

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    async def subscribe(
        self,
        topics: Sequence[str],
        *,
        on_assign: AssignHandler,
        on_revoke: RevokeHandler,
        on_lost: RevokeHandler | None = None,
        committed_timeout_s: float = 10.0,
    ) -> None:
        """Join the group. ``on_lost`` (default: ``on_revoke``) is called for partitions taken
        away without a revoke (the session timed out): another member may own them already."""
        loop = asyncio.get_running_loop()

        def assigned(consumer: Any, partitions: list[TopicPartition]) -> None:
            keys = [(tp.topic, tp.partition) for tp in partitions]
            resumes = self._resumes(partitions, committed_timeout_s)
            asyncio.run_coroutine_threadsafe(on_assign(keys, resumes), loop).result()

        def handler(on_gone: RevokeHandler) -> Callable[[Any, list[TopicPartition]], None]:
            def gone(consumer: Any, partitions: list[TopicPartition]) -> None:
                keys = [(tp.topic, tp.partition) for tp in partitions]
                metadata = self._consumer.consumer_group_metadata()
                points = asyncio.run_coroutine_threadsafe(on_gone(keys, metadata), loop).result()
                if points:
                    self._commit_now(points)

            return gone

        await self._run(
            self._consumer.subscribe,
            list(topics),
            on_assign=assigned,
            on_revoke=handler(on_revoke),
            on_lost=handler(on_lost or on_revoke),
        )

    def _resumes(
        self, partitions: list[TopicPartition], timeout_s: float
    ) -> dict[PartitionKey, Resume]:
        """What each partition's commit says: its offset, and from its metadata the records
        finished above it and the coalesced calls not finished; with the log end at assignment.
        Partitions the group never committed are left out (as are all when the broker cannot
        say in time)."""
        if not partitions:
            return {}
        try:
            committed = self._consumer.committed(
                [TopicPartition(tp.topic, tp.partition) for tp in partitions], timeout=timeout_s
            )
        except KafkaException as exc:
            log.warning("committed offsets unreadable (%s): finished records will be rerun", exc)
            return {}
        found = {}
        for tp in committed:
            if tp.offset < 0:
                continue
            key = (tp.topic, tp.partition)
            self._starts[key] = tp.offset
            try:  # what an earlier owner may have run is in the log already
                _low, log_end = self._consumer.get_watermark_offsets(
                    TopicPartition(*key), timeout=timeout_s
                )
            except KafkaException as exc:
                log.warning("log end of %s[%d] unreadable (%s)", key[0], key[1], exc)
                log_end = -1
            found[key] = Resume(
                tp.offset,
                decode_finished(tp.offset, tp.metadata),
                decode_groups(tp.offset, tp.metadata),
                log_end if log_end >= 0 else None,
            )
        return found

    async def committed_metadata(
        self, partitions: Iterable[PartitionKey]
    ) -> dict[PartitionKey, str]:
        """The metadata of the partitions' committed offsets, as the broker keeps it."""
        return await self._run(self._committed_metadata, list(partitions))

    def _committed_metadata(self, partitions: list[PartitionKey]) -> dict[PartitionKey, str]:
        committed = self._consumer.committed(
            [TopicPartition(t, p) for t, p in partitions], timeout=10.0
        )
        return {(tp.topic, tp.partition): tp.metadata or "" for tp in committed}

    async def holding(self, action: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
        """Run ``action(group_metadata)`` on the event loop while the consumer's thread waits
        for it: no rebalance starts or ends meanwhile (they run on that thread), so the group
        metadata — which a transactional producer sends with the offsets it commits, and which
        fences a member the group has moved on from — stays current until ``action`` is done.
        """
        loop = asyncio.get_running_loop()

        def hold() -> T:
            metadata = self._consumer.consumer_group_metadata()
            return asyncio.run_coroutine_threadsafe(action(metadata), loop).result()

        return await self._run(hold)

    async def consume(self, max_records: int, timeout_s: float) -> list[InputRecord]:
        """Up to ``max_records`` records, waiting at most ``timeout_s`` for the first one and not
        at all for the rest (librdkafka's batch consume would wait to fill the batch)."""
        messages = await self._run(self._fetch, max_records, timeout_s)
        records: list[InputRecord] = []
        for message in messages:
            error = message.error()
            if error is None:
                records.append(input_record(message))
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

    async def behind(self, partitions: Iterable[PartitionKey]) -> set[PartitionKey]:
        """Those of ``partitions`` whose log holds records not yet handed to us, or that were not
        fetched yet (unknown counts as behind); no broker round-trip."""
        return await self._run(self._behind, list(partitions))

    def _behind(self, partitions: list[PartitionKey]) -> set[PartitionKey]:
        if not partitions:
            return set()
        found = set()
        positions = self._consumer.position([TopicPartition(t, p) for t, p in partitions])
        for position in positions:
            key = (position.topic, position.partition)
            try:
                low, high = self._consumer.get_watermark_offsets(TopicPartition(*key), cached=True)
            except KafkaException:
                found.add(key)
                continue
            # Nothing delivered since the assignment: reading starts at the committed offset,
            # else (a group without one, reading from the earliest) at the log's start.
            offset = position.offset if position.offset >= 0 else self._starts.get(key, low)
            if high < 0 or offset < 0 or offset < high:
                found.add(key)
        return found

    async def partition_counts(self, topics: Iterable[str], timeout_s: float) -> dict[str, int]:
        """How many partitions each topic has (topics missing from the cluster are left out).

        Raises:
            BrokerError: the metadata could not be fetched in time.
        """
        return await self._run(self._partition_counts, list(topics), timeout_s)

    def _partition_counts(self, topics: list[str], timeout_s: float) -> dict[str, int]:
        try:
            metadata = self._consumer.list_topics(timeout=timeout_s)
        except KafkaException as exc:
            raise BrokerError(f"could not read the input topics' metadata: {exc}") from exc
        return {
            topic: len(metadata.topics[topic].partitions)
            for topic in topics
            if topic in metadata.topics and metadata.topics[topic].error is None
        }

    async def commit(self, points: dict[PartitionKey, CommitPoint]) -> set[PartitionKey]:
        """Commit ``points`` (next offset to read and its metadata, per partition)
        synchronously; the partitions whose commit the broker took."""
        if not points:
            return set()
        return await self._run(self._commit_now, points)

    def _commit_now(self, points: dict[PartitionKey, CommitPoint]) -> set[PartitionKey]:
        try:
            answered = self._consumer.commit(offsets=_offsets(points), asynchronous=False)
        except KafkaException as exc:
            return _taken(points, exc, ())
        return _taken(points, None, answered)

    async def commit_soon(
        self, points: dict[PartitionKey, CommitPoint], answer: CommitAnswer
    ) -> bool:
        """Send the commit of ``points`` without waiting for the broker: the consumer goes on
        fetching meanwhile (a synchronous commit holds its thread for the round trip, and every
        record arriving then waits for it). ``answer(points, taken)`` runs on the event loop once
        the broker answered. False when librdkafka refused it on the spot (nothing was sent)."""
        if not points:
            return False
        return await self._run(self._commit_later, points, asyncio.get_running_loop(), answer)

    def _commit_later(
        self,
        points: dict[PartitionKey, CommitPoint],
        loop: asyncio.AbstractEventLoop,
        answer: CommitAnswer,
    ) -> bool:
        try:
            self._consumer.commit(offsets=_offsets(points), asynchronous=True)
        except KafkaException as exc:
            _taken(points, exc, ())
            return False
        self._commits.append((points, loop, answer))
        return True

    def _answered(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """librdkafka's answer to the oldest commit sent with :meth:`commit_soon` (it reports
        them in order, never a synchronous one), on the consumer's thread."""
        if not self._commits:
            return
        points, loop, answer = self._commits.popleft()
        taken = _taken(points, error, partitions)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits for it
            loop.call_soon_threadsafe(answer, points, taken)

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


def _offsets(points: dict[PartitionKey, CommitPoint]) -> list[TopicPartition]:
    return [
        TopicPartition(t, p, point.offset, metadata=point.metadata)
        for (t, p), point in points.items()
    ]


def _taken(
    points: dict[PartitionKey, CommitPoint],
    error: KafkaError | KafkaException | None,
    answered: Iterable[TopicPartition] | None,
) -> set[PartitionKey]:
    """The partitions of ``points`` whose commit the broker took, given the request's
    ``error`` and each partition's own (a request can succeed while some partitions fail)."""
    if error is not None:
        # A commit can lose a race with a rebalance; the records are then replayed by the
        # next owner (at-least-once), never skipped.
        log.warning("offset commit failed (%s); uncommitted records will be replayed", error)
        return set()
    taken = set(points)
    for tp in answered or ():
        if tp.error is not None:
            taken.discard((tp.topic, tp.partition))
            log.warning(
                "offset commit of %s[%d] failed (%s); its uncommitted records will be replayed",
                tp.topic,
                tp.partition,
                tp.error,
            )
    return taken
