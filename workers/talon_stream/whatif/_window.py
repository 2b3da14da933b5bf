"""Reading a time window of topics: which offsets of each partition (:class:`PartitionRange`),
which records of a fetch are in it (:class:`RangeScan`, pure), and the consumer that reads them
(:class:`RangeReader`).

The window ``[since, until)`` of a partition starts at the offset Kafka's ``offsets_for_times``
gives for ``since`` — the first record stamped at or after it — and stops at the first record
stamped at or after ``until`` (the offset it gives for ``until``, and, should a broker answer
otherwise, the first such record read); with no such record, at the partition's end offset as
the run starts: the high watermark of the first fetch response of it (as the DLQ replay does:
some brokers under-report the ListOffsets "latest" answer). Records appended meanwhile are left
out, so a run always ends. A look-back reads from the offset for ``since - lookback``: those
records rebuild state and are not evaluated.

Partitions are *assigned*, never subscribed: no consumer group is joined and nothing is
committed, so the workers' group is untouched and a window can be read any number of times.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from talon_stream._exceptions import BrokerError
from talon_stream.core._records import InputRecord, PartitionKey
from talon_stream.kafka._consumer import input_record

__all__ = ["Fetched", "PartitionRange", "RangeReader", "RangeScan", "check_stalled", "epoch_ms"]

log = logging.getLogger(__name__)

T = TypeVar("T")
ClientFactory = Callable[[dict[str, Any]], Any]


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class PartitionRange:
    """What is read of one partition: from ``start`` (``None``: nothing) up to ``stop``
    (``None``: the end offset as the run starts), and from ``window_start`` on (``None``: no
    record is in the window) the records are evaluated; there, the first record stamped at or
    after ``until_ms`` ends the partition. ``since_ms`` and ``until_ms`` are the times the
    broker gave ``window_start`` and ``stop`` for (``None``: not asked)."""

    topic: str
    partition: int
    start: int | None
    window_start: int | None
    stop: int | None
    until_ms: int | None = None
    since_ms: int | None = None

    @property
    def key(self) -> PartitionKey:
        return (self.topic, self.partition)

    def in_window(self, offset: int) -> bool:
        return self.window_start is not None and offset >= self.window_start

    @property
    def empty(self) -> bool:
        return self.start is None or (self.stop is not None and self.start >= self.stop)


@dataclass(frozen=True, slots=True)
class Fetched:
    """One fetch: its records, the partitions that reached the end of their log (and at which
    offset), and each partition's high watermark from the fetch response."""

    records: list[InputRecord]
    eofs: list[tuple[PartitionKey, int]]
    highs: dict[PartitionKey, int]

    @property
    def empty(self) -> bool:
        return not self.records and not self.eofs


@dataclass(slots=True)
class _Cursor:
    range: PartitionRange
    end: int | None = None  # the high watermark the first fetch reported
    position: int | None = None
    done: bool = False
    paused: bool = False

    @property
    def limit(self) -> int | None:
        """The first offset not read, once known."""
        stop, end = self.range.stop, self.end
        if stop is None:
            return end
        return stop if end is None else min(stop, end)


class RangeScan:
    """Which records of each fetch are in the ranges, and which partitions are done."""

    def __init__(self, ranges: Iterable[PartitionRange]) -> None:
        self._cursors = {r.key: _Cursor(r, done=r.empty, paused=r.empty) for r in ranges}

    @property
    def finished(self) -> bool:
        return all(cursor.done for cursor in self._cursors.values())

    def done(self, key: PartitionKey) -> bool:
        cursor = self._cursors.get(key)
        return cursor is None or cursor.done

    def unfinished(self) -> list[PartitionKey]:
        return [key for key, cursor in self._cursors.items() if not cursor.done]

    def take(self, fetched: Fetched) -> list[tuple[InputRecord, bool]]:
        """The records of ``fetched`` in the ranges, in order, each with whether it is in the
        window (else: before it, the look-back); updates the cursors."""
        for key, high in fetched.highs.items():
            cursor = self._cursors.get(key)
            if cursor is not None and cursor.end is None and high >= 0:
                cursor.end = high
        taken = []
        for record in fetched.records:
            cursor = self._cursors.get(record.partition_key)
            if cursor is None:
                continue
            window = cursor.range
            _check_answer(window, record)  # the record at ``stop`` comes after it is done
            if cursor.done:
                continue
            limit = cursor.limit
            in_window = window.in_window(record.offset)
            if (limit is not None and record.offset >= limit) or (
                in_window
                and window.until_ms is not None
                and record.timestamp_ms is not None
                and record.timestamp_ms >= window.until_ms
            ):
                cursor.done = True
                continue
            taken.append((record, in_window))
            cursor.position = record.offset + 1
            if limit is not None and cursor.position >= limit:
                cursor.done = True
        for key, offset in fetched.eofs:
            cursor = self._cursors.get(key)
            if cursor is None or cursor.done:
                continue
            if cursor.end is None:
                cursor.end = offset
            limit = cursor.limit
            if limit is not None and offset >= limit:
                cursor.done = True
        return taken

    def newly_done(self) -> list[PartitionKey]:
        """Partitions done since the last call: to be paused (no more fetching)."""
        done = [key for key, c in self._cursors.items() if c.done and not c.paused]
        for key in done:
            self._cursors[key].paused = True
        return done

    def progress(self) -> tuple[int, int | None]:
        """Offsets read so far, and of how many (``None`` until every end is known)."""
        read = total = 0
        known = True
        for cursor in self._cursors.values():
            start = cursor.range.start
            if start is None or cursor.range.empty:
                continue
            limit = cursor.limit
            if limit is None:
                known = known and cursor.done
            else:
                total += max(0, limit - start)
            if cursor.done and limit is not None:
                read += max(0, limit - start)
            elif cursor.position is not None:
                read += cursor.position - start
        return read, (total if known else None)


def _check_answer(window: PartitionRange, record: InputRecord) -> None:
    """Kafka's ``offsets_for_times`` gives the first offset stamped at or after the time asked:
    the record at that offset is never older. A broker that answers otherwise (Tansu goes by
    when batches were written) would silently shift the window. Checked on the records that
    come by: the one at ``stop`` only when it comes in the same fetch as the records before it.

    Raises:
        BrokerError: the record at an offset the broker gave is older than the time asked.
    """
    stamp = record.timestamp_ms
    if stamp is None:
        return
    for offset, moment in ((window.window_start, window.since_ms), (window.stop, window.until_ms)):
        if record.offset == offset and moment is not None and stamp < moment:
            raise BrokerError(
                f"{record.topic}[{record.partition}]: the broker gave offset {offset} as the "
                f"first record stamped at or after {moment} ms, but it is stamped {stamp} ms: "
                "its offsets_for_times does not follow record timestamps, so the window cannot "
                "be found (use a broker that does, such as Apache Kafka)"
            )


def check_stalled(waited_s: float, timeout_s: float, what: str, scan: RangeScan) -> None:
    """Raise once the broker has sent nothing for ``timeout_s`` while ``scan`` is unfinished.

    Raises:
        BrokerError: naming the partitions not read to their end.
    """
    if waited_s >= timeout_s:
        shown = ", ".join(f"{topic}[{partition}]" for topic, partition in scan.unfinished())
        raise BrokerError(
            f"no record from the broker for {timeout_s:g}s while reading {what} "
            f"(partitions not read to their end: {shown})"
        )


class RangeReader:
    """A consumer reading partitions by assignment; every call runs on its one thread, as
    librdkafka's consumer must not be used from two at once. ``confluent_kafka`` errors become
    :class:`~talon_stream.BrokerError` here."""

    def __init__(self, config: dict[str, Any], factory: ClientFactory, bootstrap: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="what-if-reader")
        self._consumer = factory(config)
        self._bootstrap = bootstrap

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args))

    def partition_counts(self, topics: Iterable[str], timeout_s: float) -> dict[str, int | None]:
        """Each topic's partition count (``None``: it does not exist)."""
        try:
            metadata = self._consumer.list_topics(timeout=timeout_s)
        except KafkaException as exc:
            raise BrokerError(
                f"cannot reach the Kafka broker at {self._bootstrap} within {timeout_s:g}s: {exc}"
            ) from exc
        counts: dict[str, int | None] = {}
        for name in topics:
            found = metadata.topics.get(name)
            ok = found is not None and found.error is None and found.partitions
            counts[name] = len(found.partitions) if ok else None
        return counts

    def offsets_at(
        self, topic: str, partitions: int, moment: datetime, timeout_s: float
    ) -> dict[int, int | None]:
        """The first offset of each partition stamped at or after ``moment`` (``None``: none)."""
        wanted = [TopicPartition(topic, p, epoch_ms(moment)) for p in range(partitions)]
        try:
            found = self._consumer.offsets_for_times(wanted, timeout=timeout_s)
        except KafkaException as exc:
            raise BrokerError(f"offsets of {topic!r} at {moment.isoformat()}: {exc}") from exc
        offsets: dict[int, int | None] = {}
        for tp in found:
            if tp.error is not None:
                raise BrokerError(f"offsets of {topic!r}[{tp.partition}]: {tp.error}")
            offsets[tp.partition] = tp.offset if tp.offset >= 0 else None
        return offsets

    def window(
        self,
        topic: str,
        partitions: int,
        since: datetime,
        until: datetime,
        read_from: datetime,
        timeout_s: float,
    ) -> list[PartitionRange]:
        """The ranges of ``topic``'s partitions for ``[since, until)``, read from ``read_from``
        (``since`` less the look-back)."""
        starts = self.offsets_at(topic, partitions, since, timeout_s)
        stops = self.offsets_at(topic, partitions, until, timeout_s)
        early = (
            starts
            if read_from >= since
            else self.offsets_at(topic, partitions, read_from, timeout_s)
        )
        ranges = []
        for partition in range(partitions):
            window_start = starts[partition]
            # Nothing stamped at or after ``since``: only look-back records to read, to the end.
            start = early[partition] if early[partition] is not None else window_start
            ranges.append(
                PartitionRange(
                    topic,
                    partition,
                    start,
                    window_start,
                    stops[partition],
                    until_ms=epoch_ms(until),
                    since_ms=epoch_ms(since),
                )
            )
        return ranges

    def assign(self, ranges: Iterable[PartitionRange]) -> None:
        self._consumer.assign(
            [
                TopicPartition(r.topic, r.partition, r.start)
                for r in ranges
                if r.start is not None and not r.empty
            ]
        )

    def fetch(self, max_records: int, timeout_s: float) -> Fetched:
        messages = self._consumer.consume(max_records, timeout_s)
        records: list[InputRecord] = []
        eofs: list[tuple[PartitionKey, int]] = []
        for message in messages:
            error = message.error()
            if error is None:
                records.append(input_record(message))
            elif error.code() == KafkaError._PARTITION_EOF:
                eofs.append(((message.topic(), message.partition()), message.offset()))
            elif error.fatal():
                raise BrokerError(f"fatal consumer error: {error}")
            else:
                log.warning("consumer error: %s", error)
        highs: dict[PartitionKey, int] = {}
        for key in {r.partition_key for r in records}:
            _low, high = self._consumer.get_watermark_offsets(TopicPartition(*key), cached=True)
            highs[key] = high
        return Fetched(records, eofs, highs)

    def pause(self, keys: Iterable[PartitionKey]) -> None:
        partitions = [TopicPartition(*key) for key in keys]
        if partitions:
            self._consumer.pause(partitions)

    def resume(self, keys: Iterable[PartitionKey]) -> None:
        partitions = [TopicPartition(*key) for key in keys]
        if partitions:
            self._consumer.resume(partitions)

    async def close(self) -> None:
        try:
            await self.call(self._consumer.close)
        finally:
            self._executor.shutdown(wait=True)
