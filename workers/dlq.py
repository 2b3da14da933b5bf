"""Replaying the dead-letter topic (``talon-stream dlq replay``).

A DLQ record, written by :mod:`workers.processor` with :func:`workers.envelopes.dlq_headers`, is
the original record — key, value, headers — plus ``talon-stream.*`` headers saying why it failed
and where it came from. :func:`replay_dlq` reads the DLQ topic, keeps the records a
:class:`ReplayFilter` selects, and publishes each again to its source topic as it was: same key,
value and original headers, the ``talon-stream.*`` headers replaced by one,
``talon-stream.replay.of`` = ``dlqtopic/partition/offset``, so a replayed record can be traced.

**Reading.** The DLQ partitions are *assigned*, never subscribed: no consumer group is joined and
nothing is committed (the reader's ``group.id`` is a throwaway one librdkafka insists on), so the
workers' group is untouched and a DLQ can be replayed any number of times. Each partition is read
from its beginning — or, with ``since``, from the offset ``offsets_for_times`` gives for
``since`` minus :data:`SEEK_MARGIN` — up to its *end offset*: the high watermark the broker
reports in the first fetch response for that partition, taken as the run starts and never
moved. Records dead-lettered while the replay runs (replayed records that fail again among
them) are left for the next run, so a replay always ends. The ListOffsets "latest" answer is not
used for the end: some Kafka-compatible brokers (Tansu's memory engine) under-report it for
multi-record batches, which would silently leave records out.

**Order.** All DLQ records of one key are in one DLQ partition (the worker produces them keyed),
and each partition is read in offset order. A selected record is produced only after the broker
has acknowledged the previous selected record of the same key; records of different keys are in
flight together (at most ``max_in_flight``). So a key's records reach their topic in their
original order whatever the producer's retries and batching do; and when the broker refuses a
record, the key's later records are never sent: the run stops, names the record, and raises
:class:`ReplayDeliveryError` — nothing of that key is out of order, and a second run with the
same filters picks up from it (records already replayed are replayed again: replay is
at-least-once). A record going back to its source topic goes to the partition it came from
(``talon-stream.source.partition``), beside its key's other records whatever partitioner the
producing application uses; with ``to_topic`` it is partitioned by key.

**Time window.** ``since`` (inclusive) and ``until`` (exclusive) are compared with the time the
worker gave up on the record, its ``talon-stream.last.attempt.at`` header — or the DLQ record's
own timestamp when that header is missing or unreadable.

Errors (all :class:`~workers.exceptions.BrokerError`, so :class:`TalonStreamError`)::

    BrokerError                 the broker cannot be reached or stops answering (bounded wait)
    ├── DlqTopicNotFoundError   the DLQ topic does not exist; nothing was read or created
    └── ReplayDeliveryError     the broker refused a replayed record; carries the summary so far
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from workers.config import Settings
from workers.envelopes import DLQ_HEADER_PREFIX
from workers.exceptions import BrokerError
from workers.kafka_io import Headers, InputRecord

__all__ = [
    "LIBRDKAFKA_LOG",
    "REPLAY_OF_HEADER",
    "SEEK_MARGIN",
    "ConsoleObserver",
    "DeadLetter",
    "DlqTopicNotFoundError",
    "Replay",
    "ReplayDeliveryError",
    "ReplayFilter",
    "ReplayObserver",
    "ReplayOptions",
    "ReplaySummary",
    "parse_time",
    "replay_dlq",
]

log = logging.getLogger(__name__)
#: librdkafka's own log lines (one per failed connection attempt, say): routed here rather than
#: printed, so the command can keep them out of the way of the one error that matters.
LIBRDKAFKA_LOG = logging.getLogger(__name__ + ".librdkafka")

T = TypeVar("T")
ClientFactory = Callable[[dict[str, Any]], Any]

REPLAY_OF_HEADER = DLQ_HEADER_PREFIX + "replay.of"
#: How far before ``since`` the reader seeks: record timestamps may be a broker's append time,
#: and a broker's clock may lag the worker's that wrote ``last.attempt.at``.
SEEK_MARGIN = timedelta(minutes=5)
_FETCH_BATCH = 500
_POLL_S = 0.2


class DlqTopicNotFoundError(BrokerError):
    """The DLQ topic does not exist on the cluster."""

    def __init__(self, topic: str, bootstrap_servers: str) -> None:
        super().__init__(
            f"the DLQ topic {topic!r} does not exist on {bootstrap_servers} "
            "(check --dlq-topic / TALON_STREAM_DLQ_TOPIC)"
        )
        self.topic = topic
        self.bootstrap_servers = bootstrap_servers


class ReplayDeliveryError(BrokerError):
    """The broker refused a replayed record. ``record`` is the DLQ record that was not replayed;
    ``summary`` counts what happened before the run stopped."""

    def __init__(self, replay: Replay, cause: BrokerError, summary: ReplaySummary) -> None:
        super().__init__(
            f"could not replay {replay.letter.coordinates} to {replay.topic!r}: {cause}; "
            f"the run stopped after replaying {summary.replayed} of {summary.selected} selected "
            "records, and nothing after it of its key was sent"
        )
        self.replay = replay
        self.summary = summary


def parse_time(text: str) -> datetime:
    """An ISO 8601 time (``2026-11-22T10:00:00Z``, ``2026-11-22 10:00+01:00``, ``2026-11-22``);
    without a UTC offset it is taken as UTC.

    Raises:
        ValueError: not an ISO 8601 time.
    """
    moment = datetime.fromisoformat(text.strip())
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _header(headers: Headers, name: str) -> str | None:
    """The last value of header ``name`` (the DLQ headers are appended after the original
    ones), decoded; ``None`` when absent."""
    for key, value in reversed(headers):
        if key == name:
            return value.decode(errors="replace")
    return None


def _int_header(headers: Headers, name: str) -> int | None:
    text = _header(headers, DLQ_HEADER_PREFIX + name)
    return int(text) if text is not None and text.isdigit() else None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A DLQ record with its ``talon-stream.*`` headers read."""

    record: InputRecord
    error_class: str | None
    source_topic: str | None
    source_partition: int | None
    source_offset: int | None
    #: Set when the worker left the value out of the DLQ (too large): its size in bytes.
    value_omitted_bytes: int | None
    #: When the worker gave up: ``last.attempt.at``, or the DLQ record's timestamp.
    failed_at: datetime | None
    #: The record's own headers: everything but ``talon-stream.*``.
    original_headers: Headers

    @classmethod
    def parse(cls, record: InputRecord) -> DeadLetter:
        headers = record.headers
        failed_at: datetime | None = None
        last_attempt = _header(headers, DLQ_HEADER_PREFIX + "last.attempt.at")
        if last_attempt is not None:
            try:
                failed_at = parse_time(last_attempt)
            except ValueError:
                failed_at = None
        if failed_at is None and record.timestamp_ms is not None:
            failed_at = datetime.fromtimestamp(record.timestamp_ms / 1000, tz=UTC)
        return cls(
            record=record,
            error_class=_header(headers, DLQ_HEADER_PREFIX + "error.class"),
            source_topic=_header(headers, DLQ_HEADER_PREFIX + "source.topic") or None,
            source_partition=_int_header(headers, "source.partition"),
            source_offset=_int_header(headers, "source.offset"),
            value_omitted_bytes=_int_header(headers, "value.omitted.bytes"),
            failed_at=failed_at,
            original_headers=[(k, v) for k, v in headers if not k.startswith(DLQ_HEADER_PREFIX)],
        )

    @property
    def coordinates(self) -> str:
        """``dlqtopic/partition/offset``: the value of ``talon-stream.replay.of``."""
        return f"{self.record.topic}/{self.record.partition}/{self.record.offset}"

    def replay_headers(self) -> Headers:
        return [*self.original_headers, (REPLAY_OF_HEADER, self.coordinates.encode())]


@dataclass(frozen=True, slots=True)
class ReplayFilter:
    """Which DLQ records to replay; an empty set means "any"."""

    since: datetime | None = None
    until: datetime | None = None
    error_classes: frozenset[str] = frozenset()
    keys: frozenset[bytes] = frozenset()
    source_topics: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for moment in (self.since, self.until):
            if moment is not None and moment.tzinfo is None:
                raise ValueError("since and until must be timezone-aware (see parse_time)")
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError("since must be before until")

    def rejection(self, letter: DeadLetter) -> str | None:
        """The name of the first filter ``letter`` fails, or ``None`` when it is selected."""
        if self.since is not None or self.until is not None:
            moment = letter.failed_at
            if (
                moment is None
                or (self.since is not None and moment < self.since)
                or (self.until is not None and moment >= self.until)
            ):
                return "time"
        if self.error_classes and letter.error_class not in self.error_classes:
            return "error-class"
        if self.keys and letter.record.key not in self.keys:
            return "key"
        if self.source_topics and letter.source_topic not in self.source_topics:
            return "topic"
        return None


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    """What to replay, where to, and how long to wait for a broker that does not answer."""

    dlq_topic: str
    filter: ReplayFilter = field(default_factory=ReplayFilter)
    #: Publish every selected record here instead of its source topic.
    to_topic: str | None = None
    dry_run: bool = False
    timeout_s: float = 10.0
    max_in_flight: int = 256


@dataclass(frozen=True, slots=True)
class Replay:
    """A selected DLQ record and where it goes (``partition`` ``None``: by key)."""

    letter: DeadLetter
    topic: str
    partition: int | None


@dataclass(slots=True)
class ReplaySummary:
    """Counts of one run. ``scanned`` = ``selected`` + every ``skipped_*``."""

    dlq_topic: str
    dry_run: bool
    partitions: int = 0
    scanned: int = 0
    selected: int = 0
    replayed: int = 0
    #: By the filter that rejected them: ``time``, ``error-class``, ``key``, ``topic``.
    skipped_by_filter: Counter[str] = field(default_factory=Counter)
    #: Selected but without a ``talon-stream.source.topic`` header, and no ``to_topic``.
    skipped_no_source_topic: int = 0
    #: Selected but their value is not in the DLQ (``talon-stream.value.omitted.bytes``).
    skipped_value_omitted: int = 0
    #: Selected but their target topic does not exist, by topic.
    skipped_missing_topic: Counter[str] = field(default_factory=Counter)
    #: The selected records, by ``talon-stream.error.class`` and by source topic.
    by_error_class: Counter[str] = field(default_factory=Counter)
    by_source_topic: Counter[str] = field(default_factory=Counter)

    def lines(self) -> list[str]:
        """The summary as printed by the command."""

        def counts(counter: Counter[str]) -> str:
            return ", ".join(f"{name} {n}" for name, n in counter.most_common()) or "-"

        action = "would replay" if self.dry_run else "replayed"
        done = self.selected if self.dry_run else self.replayed
        lines = [
            f"DLQ {self.dlq_topic}: scanned {self.scanned} records in {self.partitions} "
            f"partitions, selected {self.selected}, {action} {done}"
            + (" (dry run: nothing produced)" if self.dry_run else ""),
            f"  skipped by filter: {self.skipped_by_filter.total()}"
            + (f" ({counts(self.skipped_by_filter)})" if self.skipped_by_filter else ""),
        ]
        if self.skipped_no_source_topic:
            lines.append(
                f"  skipped, no talon-stream.source.topic header: {self.skipped_no_source_topic}"
                " (give --to TOPIC to replay them)"
            )
        if self.skipped_value_omitted:
            lines.append(
                f"  skipped, value not kept in the DLQ (too large): {self.skipped_value_omitted}"
                " (the originals are still in their source topics)"
            )
        if self.skipped_missing_topic:
            lines.append(
                f"  skipped, target topic does not exist: {counts(self.skipped_missing_topic)}"
            )
        lines.append(f"  by error class: {counts(self.by_error_class)}")
        lines.append(f"  by source topic: {counts(self.by_source_topic)}")
        return lines


class ReplayObserver:
    """Hooks for a front end; each does nothing here."""

    def selected(self, replay: Replay) -> None:
        """A record passed the filters and will be (or, in a dry run, would be) replayed."""

    def skipped(self, letter: DeadLetter, reason: str) -> None:
        """A record passed the filters but cannot be replayed (``reason`` says why)."""

    def progress(self, done: int, total: int | None) -> None:
        """Offsets read so far, of ``total`` (``None`` until every partition's end is known)."""


async def replay_dlq(
    settings: Settings,
    options: ReplayOptions,
    *,
    observer: ReplayObserver | None = None,
    consumer_factory: ClientFactory = Consumer,
    producer_factory: ClientFactory = Producer,
) -> ReplaySummary:
    """Replay the DLQ records ``options`` selects (see the module docstring) and count them.

    Raises:
        DlqTopicNotFoundError: the DLQ topic does not exist.
        ReplayDeliveryError: a replayed record was refused; the run stopped there.
        BrokerError: the broker could not be reached, or stopped answering, within
            ``options.timeout_s``.
    """
    observer = observer or ReplayObserver()
    summary = ReplaySummary(options.dlq_topic, options.dry_run)
    reader = _DlqReader(_reader_config(settings), consumer_factory, settings.bootstrap_servers)
    publisher: _KeyOrderedPublisher | None = None
    try:
        topics = await reader.call(reader.topics, options.timeout_s)
        partitions = topics.get(options.dlq_topic)
        if partitions is None:
            raise DlqTopicNotFoundError(options.dlq_topic, settings.bootstrap_servers)
        summary.partitions = partitions
        starts = await reader.call(
            reader.start_offsets,
            options.dlq_topic,
            partitions,
            options.filter.since - SEEK_MARGIN if options.filter.since else None,
            options.timeout_s,
        )
        if not options.dry_run:
            producer = _ReplayProducer(_producer_config(settings), producer_factory)
            publisher = _KeyOrderedPublisher(producer, options.max_in_flight, summary)
        scan = _Scan(starts)
        await reader.call(reader.assign, options.dlq_topic, starts)
        idle_s = 0.0
        while not scan.finished and not (publisher and publisher.failed):
            batch = await reader.call(reader.fetch, options.dlq_topic, _FETCH_BATCH, _POLL_S)
            if batch.empty:
                idle_s += _POLL_S
                if idle_s >= options.timeout_s:
                    raise BrokerError(
                        f"no answer from {settings.bootstrap_servers} for {options.timeout_s:g}s "
                        f"while reading {options.dlq_topic!r} (partitions not read to their "
                        f"end: {scan.unfinished()})"
                    )
                continue
            idle_s = 0.0
            for record in scan.take(batch):
                summary.scanned += 1
                replay = await _route(record, options, topics, reader, summary, observer)
                if replay is not None and publisher is not None:
                    await publisher.submit(replay)
            await reader.call(reader.pause, options.dlq_topic, scan.newly_finished())
            observer.progress(*scan.progress())
        if publisher is not None:
            await publisher.drain()
    finally:
        if publisher is not None:
            await publisher.close()
        await reader.close()
    return summary


async def _route(
    record: InputRecord,
    options: ReplayOptions,
    topics: dict[str, int],
    reader: _DlqReader,
    summary: ReplaySummary,
    observer: ReplayObserver,
) -> Replay | None:
    """Where ``record`` goes, or ``None`` (counted) when it is skipped."""
    letter = DeadLetter.parse(record)
    rejected = options.filter.rejection(letter)
    if rejected is not None:
        summary.skipped_by_filter[rejected] += 1
        return None
    if letter.value_omitted_bytes is not None:
        # Publishing it would publish a null value — a tombstone — in place of the event.
        summary.skipped_value_omitted += 1
        where = f"{letter.source_topic}/{letter.source_partition}/{letter.source_offset}"
        observer.skipped(
            letter,
            f"its value ({letter.value_omitted_bytes} bytes) was not kept in the DLQ; "
            f"the original is at {where}",
        )
        return None
    topic = options.to_topic or letter.source_topic
    if topic is None:
        summary.skipped_no_source_topic += 1
        observer.skipped(letter, "no talon-stream.source.topic header (give --to TOPIC)")
        return None
    if topic not in topics:
        count = await reader.call(reader.partition_count, topic, options.timeout_s)
        if count is None:
            summary.skipped_missing_topic[topic] += 1
            observer.skipped(letter, f"the topic {topic!r} does not exist")
            return None
        topics[topic] = count
    partition = letter.source_partition if options.to_topic is None else None
    if partition is not None and partition >= topics[topic]:
        partition = None
    replay = Replay(letter, topic, partition)
    summary.selected += 1
    summary.by_error_class[letter.error_class or "unknown"] += 1
    summary.by_source_topic[letter.source_topic or "unknown"] += 1
    observer.selected(replay)
    return replay


def _reader_config(settings: Settings) -> dict[str, Any]:
    return {
        **settings.consumer_config(),
        # Never the workers' group: partitions are assigned, nothing is committed.
        "group.id": f"talon-stream-dlq-replay-{uuid.uuid4().hex[:12]}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
        # Looking up a missing topic must not create it.
        "allow.auto.create.topics": False,
        "logger": LIBRDKAFKA_LOG,
    }


def _producer_config(settings: Settings) -> dict[str, Any]:
    return {
        **settings.producer_config(),
        "enable.idempotence": True,
        "acks": "all",
        "allow.auto.create.topics": False,
        "logger": LIBRDKAFKA_LOG,
    }


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


class _Scan:
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


class _DlqReader:
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
                records.append(InputRecord.from_message(message))
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


class _ReplayProducer:
    """Produces to a chosen partition (or by key) and resolves one future per record when the
    broker acknowledges it. (:class:`workers.kafka_io.AsyncProducer` cannot choose a partition.)"""

    def __init__(self, config: dict[str, Any], factory: ClientFactory) -> None:
        self._producer = factory(config)
        self._stopping = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="dlq-replay-producer", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stopping.is_set():
            self._producer.poll(0.05)

    async def send(self, replay: Replay) -> None:
        """Produce ``replay`` and wait for the broker's acknowledgement.

        Raises:
            BrokerError: the record was refused or timed out.
        """
        loop = asyncio.get_running_loop()
        acked: asyncio.Future[None] = loop.create_future()

        def delivered(error: KafkaError | None, _message: Any) -> None:
            loop.call_soon_threadsafe(_settle, acked, error, replay.topic)

        record = replay.letter.record
        where = {} if replay.partition is None else {"partition": replay.partition}
        while True:
            try:
                self._producer.produce(
                    replay.topic,
                    key=record.key,
                    value=record.value,
                    headers=replay.letter.replay_headers(),
                    on_delivery=delivered,
                    **where,
                )
                break
            except BufferError:  # local queue full: let deliveries drain
                await asyncio.sleep(0.005)
            except KafkaException as exc:
                raise BrokerError(f"could not produce to {replay.topic!r}: {exc}") from exc
        await acked

    async def close(self, timeout_s: float = 30.0) -> None:
        loop = asyncio.get_running_loop()
        remaining = await loop.run_in_executor(None, self._producer.flush, timeout_s)
        self._stopping.set()
        await loop.run_in_executor(None, self._poller.join)
        if remaining:
            log.error("%d replayed records were not acknowledged before close", remaining)


def _settle(future: asyncio.Future[None], error: KafkaError | None, topic: str) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(BrokerError(f"delivery to {topic!r} failed: {error}"))


class _KeyOrderedPublisher:
    """At most one record in flight per key, many keys at once (see "Order" above)."""

    def __init__(self, producer: _ReplayProducer, max_in_flight: int, summary: ReplaySummary):
        self._producer = producer
        self._slots = asyncio.Semaphore(max_in_flight)
        self._summary = summary
        #: The latest task of each key with one in flight: the next one of that key waits on it.
        self._tails: dict[bytes | None, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._failure: tuple[Replay, BrokerError] | None = None

    @property
    def failed(self) -> bool:
        return self._failure is not None

    async def submit(self, replay: Replay) -> None:
        await self._slots.acquire()
        key = replay.letter.record.key
        task = asyncio.get_running_loop().create_task(self._publish(replay, self._tails.get(key)))
        self._tails[key] = task
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._finished(key, done))

    async def _publish(self, replay: Replay, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        if self._failure is not None:
            return  # stop: nothing more is sent once one record was refused
        try:
            await self._producer.send(replay)
        except BrokerError as exc:
            if self._failure is None:
                self._failure = (replay, exc)
            return
        self._summary.replayed += 1

    def _finished(self, key: bytes | None, task: asyncio.Task[None]) -> None:
        self._slots.release()
        self._tasks.discard(task)
        if self._tails.get(key) is task:
            del self._tails[key]

    async def drain(self) -> None:
        """Wait for every record in flight.

        Raises:
            ReplayDeliveryError: a record was refused.
        """
        while self._tasks:
            await asyncio.wait(list(self._tasks))
        if self._failure is not None:
            replay, cause = self._failure
            raise ReplayDeliveryError(replay, cause, self._summary)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        await self._producer.close()


class ConsoleObserver(ReplayObserver):
    """What ``talon-stream dlq replay`` shows: one line per selected record on stdout when
    ``list_selected`` (the dry run), a warning per skipped record on stderr, and a progress bar
    on stderr when it is a terminal. Use as a context manager."""

    def __init__(self, *, list_selected: bool, show_progress: bool | None = None) -> None:
        self._echo = click.echo
        console = Console(stderr=True)
        self._list = list_selected
        self._progress = (
            Progress(
                TextColumn("reading the DLQ"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("offsets"),
                console=console,
                transient=True,
            )
            if (console.is_terminal if show_progress is None else show_progress)
            else None
        )
        self._task: Any = None

    def __enter__(self) -> ConsoleObserver:
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task("replay", total=None)
        return self

    def __exit__(self, *_: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def selected(self, replay: Replay) -> None:
        if not self._list:
            return
        letter = replay.letter
        where = "by key" if replay.partition is None else f"partition {replay.partition}"
        failed_at = letter.failed_at.isoformat(timespec="milliseconds") if letter.failed_at else "-"
        self._echo(
            f"{letter.coordinates} -> {replay.topic} ({where}) key={_show_key(letter)} "
            f"{letter.error_class or 'unknown'} failed {failed_at}"
        )

    def skipped(self, letter: DeadLetter, reason: str) -> None:
        self._echo(f"skipped {letter.coordinates} key={_show_key(letter)}: {reason}", err=True)

    def progress(self, done: int, total: int | None) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=done, total=total)


def _show_key(letter: DeadLetter) -> str:
    key = letter.record.key
    return "-" if key is None else key.decode(errors="replace")
