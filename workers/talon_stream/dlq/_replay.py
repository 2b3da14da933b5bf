"""The run itself: :func:`replay_dlq` reads the DLQ with
:class:`~talon_stream.dlq._reader.DlqReader`
up to the end offsets, selects records with the :class:`~talon_stream.dlq.ReplayFilter`, routes
each to its topic and partition, and hands it to the
:class:`~talon_stream.dlq._publisher.KeyOrderedPublisher`. The Kafka client configurations are built
here from :class:`~talon_stream.config.Settings`.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from confluent_kafka import Consumer, Producer

from talon_stream._exceptions import BrokerError, DecodeError
from talon_stream.config._settings import Settings
from talon_stream.core._records import InputRecord
from talon_stream.dlq._model import (
    DeadLetter,
    DlqTopicNotFoundError,
    Replay,
    ReplayObserver,
    ReplayOptions,
    ReplaySummary,
)
from talon_stream.dlq._publisher import KeyOrderedPublisher
from talon_stream.dlq._reader import SEEK_MARGIN, ClientFactory, DlqReader, Scan
from talon_stream.kafka._producer import AsyncProducer

if TYPE_CHECKING:  # the Schema Registry client is imported only for an Avro DLQ topic
    from talon_stream.formats.avro.formats import DlqUnwrapper

__all__ = ["LIBRDKAFKA_LOG", "replay_dlq"]

#: librdkafka's own log lines (one per failed connection attempt, say): routed here rather than
#: printed, so the command can keep them out of the way of the one error that matters. Its name
#: is the package's, as before the package was split into modules.
LIBRDKAFKA_LOG = logging.getLogger("talon_stream.dlq.librdkafka")

_FETCH_BATCH = 500
_POLL_S = 0.2


async def replay_dlq(
    settings: Settings,
    options: ReplayOptions,
    *,
    observer: ReplayObserver | None = None,
    consumer_factory: ClientFactory = Consumer,
    producer_factory: ClientFactory = Producer,
) -> ReplaySummary:
    """Replay the DLQ records ``options`` selects (see :mod:`talon_stream.dlq`) and count them.

    Raises:
        DlqTopicNotFoundError: the DLQ topic does not exist.
        ReplayDeliveryError: a replayed record was refused; the run stopped there.
        BrokerError: the broker could not be reached, or stopped answering, within
            ``options.timeout_s``.
    """
    observer = observer or ReplayObserver()
    summary = ReplaySummary(options.dlq_topic, options.dry_run)
    unwrapper = _unwrapper(settings, options.dlq_topic)
    reader = DlqReader(_reader_config(settings), consumer_factory, settings.bootstrap_servers)
    publisher: KeyOrderedPublisher | None = None
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
            producer = AsyncProducer(_producer_config(settings), factory=producer_factory)
            publisher = KeyOrderedPublisher(producer, options.max_in_flight, summary)
        scan = Scan(starts)
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
            records = scan.take(batch)
            if unwrapper is not None:
                await unwrapper.prefetch(records)
            for taken in records:
                summary.scanned += 1
                record = taken
                if unwrapper is not None:
                    try:
                        record = unwrapper.unwrap(taken)
                    except DecodeError as exc:
                        summary.skipped_not_envelope += 1
                        observer.skipped(DeadLetter.parse(taken), f"not a DLQ envelope: {exc}")
                        continue
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
        if unwrapper is not None:
            unwrapper.close()
    return summary


def _unwrapper(settings: Settings, dlq_topic: str) -> DlqUnwrapper | None:
    """On an Avro DLQ topic, what turns each DLQ envelope back into the original key and value
    (``None``: a JSON DLQ topic, whose records are the originals)."""
    if settings.topic_formats.get(dlq_topic) != "avro":
        return None
    from talon_stream.formats.avro.formats import dlq_unwrapper

    return dlq_unwrapper(settings, dlq_topic)


async def _route(
    record: InputRecord,
    options: ReplayOptions,
    topics: dict[str, int],
    reader: DlqReader,
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
