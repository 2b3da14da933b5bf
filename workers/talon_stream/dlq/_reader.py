"""Reading the DLQ topic: :class:`DlqReader`, the consumer, and :class:`Scan`, which records of
it are in a run.

The DLQ partitions are *assigned*, never subscribed: no consumer group is joined and nothing is
committed (the reader's ``group.id`` is a throwaway one librdkafka insists on), so the workers'
group is untouched and a DLQ can be replayed any number of times. Each partition is read from its
beginning — or, with ``since``, from the offset ``offsets_for_times`` gives for ``since`` minus
:data:`SEEK_MARGIN` — up to its *end offset*: the high watermark the broker reports in the first
fetch response for that partition, taken as the run starts and never moved. Records
dead-lettered while the replay runs (replayed records that fail again among them) are left for
the next run, so a replay always ends. The ListOffsets "latest" answer is not used for the end:
some Kafka-compatible brokers (Tansu's memory engine) under-report it for multi-record batches,
which would silently leave records out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

from talon_stream._exceptions import BrokerError
from talon_stream.core._records import InputRecord
from talon_stream.kafka._consumer import input_record

__all__ = ["SEEK_MARGIN", "ClientFactory", "DlqReader", "Scan"]

log = logging.getLogger(__name__)

T = TypeVar("T")
ClientFactory = Callable[[dict[str, Any]], Any]

#: How far before ``since`` the reader seeks: record timestamps may be a broker's append time,
#: and a broker's clock may lag the worker's that wrote ``last.attempt.at``.
SEEK_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class _Batch:
    records: list[InputRecord]
    #: Partitions that reached the end of their log, and at which offset.
    eofs: list[tuple[int, int]]
    #: The high watermark of each partition in this batch, from the last fetch response.
    highs: dict[int, int]

    @property
    def empty(self) -> bool:
        return not self.records and not self.eofs


@dataclass(slots=True)
class _Cursor:
    start: int  # OFFSET_BEGINNING or an offset
    first: int | None = None  # the first offset seen (record or end of log)
    end: int | None = None
    position: int | None = None
    finished: bool = False
    paused: bool = False


class Scan:
    """Which records of the DLQ are in this run: each partition's end offset is fixed the first
    time a fetch for it reports a high watermark (or reaches the end of the log)."""

    def __init__(self, starts: dict[int, int | None]) -> None:
        # A start of None: nothing at or after ``since`` in that partition.
        self._cursors = {
            # A partition not assigned is never paused either.
            partition: _Cursor(start or 0, finished=start is None, paused=start is None)
            for partition, start in starts.items()
        }

    @property
    def finished(self) -> bool:
        return all(cursor.finished for cursor in self._cursors.values())

    def unfinished(self) -> list[int]:
        return [p for p, cursor in self._cursors.items() if not cursor.finished]

    def take(self, batch: _Batch) -> list[InputRecord]:
        """The records of ``batch`` that are in the run, in order; updates the cursors."""
        for partition, high in batch.highs.items():
            cursor = self._cursors[partition]
            if cursor.end is None and high >= 0:
                cursor.end = high
        taken = []
        for record in batch.records:
            cursor = self._cursors[record.partition]
            if cursor.first is None:
                cursor.first = record.offset
            if cursor.finished or (cursor.end is not None and record.offset >= cursor.end):
                cursor.finished = True
                continue
            taken.append(record)
            cursor.position = record.offset + 1
            if cursor.end is not None and cursor.position >= cursor.end:
                cursor.finished = True
        for partition, offset in batch.eofs:
            cursor = self._cursors[partition]
            if cursor.first is None:
                cursor.first = offset
            if cursor.end is None:
                cursor.end = offset
            if offset >= cursor.end:
                cursor.position = cursor.end
                cursor.finished = True
        return taken

    def newly_finished(self) -> list[int]:
        """Partitions finished since the last call: to be paused (no more fetching)."""
        done = [p for p, c in self._cursors.items() if c.finished and not c.paused]
        for partition in done:
            self._cursors[partition].paused = True
        return done

    def progress(self) -> tuple[int, int | None]:
        done = total = 0
        known = True
        for cursor in self._cursors.values():
            if cursor.first is None or cursor.end is None:
                known = known and cursor.finished
                continue
            total += cursor.end - cursor.first
            done += (cursor.position or cursor.first) - cursor.first
        return done, (total if known else None)


class DlqReader:
    """The DLQ consumer (partitions assigned directly); every call runs on one thread, as
    librdkafka's consumer must not be used from two at once."""

    def __init__(self, config: dict[str, Any], factory: ClientFactory, bootstrap: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dlq-reader")
        self._consumer = factory(config)
        self._bootstrap = bootstrap

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args))

    def topics(self, timeout_s: float) -> dict[str, int]:
        """Every topic's partition count (a metadata request for all topics creates none)."""
        try:
            metadata = self._consumer.list_topics(timeout=timeout_s)
        except KafkaException as exc:
            raise BrokerError(
                f"cannot reach the Kafka broker at {self._bootstrap} within {timeout_s:g}s: {exc}"
            ) from exc
        return {
            name: len(topic.partitions)
            for name, topic in metadata.topics.items()
            if topic.error is None
        }

    def partition_count(self, topic: str, timeout_s: float) -> int | None:
        try:
            metadata = self._consumer.list_topics(topic=topic, timeout=timeout_s)
        except KafkaException as exc:
            raise BrokerError(f"metadata of topic {topic!r}: {exc}") from exc
        found = metadata.topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            return None
        return len(found.partitions)

    def start_offsets(
        self, topic: str, partitions: int, since: datetime | None, timeout_s: float
    ) -> dict[int, int | None]:
        if since is None:
            return dict.fromkeys(range(partitions), OFFSET_BEGINNING)
        ms = int(since.timestamp() * 1000)
        try:
            found = self._consumer.offsets_for_times(
                [TopicPartition(topic, p, ms) for p in range(partitions)], timeout=timeout_s
            )
        except KafkaException as exc:
            raise BrokerError(f"offsets of {topic!r} at {since.isoformat()}: {exc}") from exc
        starts: dict[int, int | None] = {}
        for tp in found:
            if tp.error is not None:
                raise BrokerError(f"offsets of {topic!r}[{tp.partition}]: {tp.error}")
            # -1: no record at or after that time.
            starts[tp.partition] = tp.offset if tp.offset >= 0 else None
        return starts

    def assign(self, topic: str, starts: dict[int, int | None]) -> None:
        self._consumer.assign(
            [TopicPartition(topic, p, offset) for p, offset in starts.items() if offset is not None]
        )

    def fetch(self, topic: str, max_records: int, timeout_s: float) -> _Batch:
        messages = self._consumer.consume(max_records, timeout_s)
        records: list[InputRecord] = []
        eofs: list[tuple[int, int]] = []
        for message in messages:
            error = message.error()
            if error is None:
                records.append(input_record(message))
            elif error.code() == KafkaError._PARTITION_EOF:
                eofs.append((message.partition(), message.offset()))
            elif error.fatal():
                raise BrokerError(f"fatal consumer error reading {topic!r}: {error}")
            else:
                log.warning("consumer error reading %r: %s", topic, error)
        highs: dict[int, int] = {}
        for partition in {r.partition for r in records}:
            _low, high = self._consumer.get_watermark_offsets(
                TopicPartition(topic, partition), cached=True
            )
            highs[partition] = high
        return _Batch(records, eofs, highs)

    def pause(self, topic: str, partitions: list[int]) -> None:
        if partitions:
            self._consumer.pause([TopicPartition(topic, p) for p in partitions])

    async def close(self) -> None:
        try:
            await self.call(self._consumer.close)
        finally:
            self._executor.shutdown(wait=True)
