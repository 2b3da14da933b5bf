"""Reading a whole topic, and then what was added since: the worker's view of a compacted topic
written by every member of the group (the erasures topic).

:class:`TopicTail` assigns itself every partition of the topic (no group membership, nothing
committed) and, each time :meth:`TopicTail.catch_up` is awaited, reads on from where it stopped
up to the end the topic has at that moment. It reads only committed records, so an erasure
written in an aborted transaction never counts. A topic that does not exist yet reads as empty.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from talon_stream._exceptions import BrokerError

__all__ = ["TopicTail"]

#: How often a catch-up looks at the topic's partitions again (new ones are read from the start).
_POLL_S = 0.1


class TopicTail:
    """Reads ``topic`` on a thread of its own, handing each record's key and value to
    ``on_record`` on that thread (so ``on_record`` must only touch what nothing else does
    meanwhile: the worker waits for :meth:`catch_up`)."""

    def __init__(
        self,
        config: dict[str, Any],
        topic: str,
        on_record: Callable[[bytes | None, bytes | None], None],
        *,
        factory: Callable[[dict[str, Any]], Any] = Consumer,
    ) -> None:
        self.topic = topic
        # The end of a partition is known by its end-of-partition event: past the last record
        # there may be transaction markers, which are never handed over.
        self._config = {
            **config,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
        self._on_record = on_record
        self._factory = factory
        self._consumer: Any = None
        #: Per assigned partition, the offset reading has reached.
        self._at: dict[int, int] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kafka-tail")
        #: Records read in all.
        self.read = 0

    async def catch_up(self, timeout_s: float = 30.0) -> int:
        """Read every record added to the topic since the last call (all of it, the first
        time); return how many.

        Raises:
            BrokerError: the topic could not be read to its end within ``timeout_s``.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._catch_up, timeout_s)

    def _catch_up(self, timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        if self._consumer is None:
            self._consumer = self._factory(self._config)
        consumer = self._consumer
        try:
            ends = self._ends(consumer, timeout_s)
            before = self.read
            while True:
                if all(self._at[p] >= end for p, end in ends.items()):
                    return self.read - before
                if time.monotonic() > deadline:
                    raise BrokerError(
                        f"could not read topic {self.topic!r} to its end in {timeout_s:.0f} s"
                    )
                for message in consumer.consume(500, _POLL_S):
                    error = message.error()
                    if error is None:
                        self._on_record(message.key(), message.value())
                        self.read += 1
                        self._at[message.partition()] = message.offset() + 1
                    elif error.code() == KafkaError._PARTITION_EOF:
                        partition = message.partition()
                        self._at[partition] = max(self._at[partition], message.offset())
                    elif error.fatal():
                        raise BrokerError(f"reading {self.topic!r}: {error}")
        except KafkaException as exc:
            raise BrokerError(f"reading {self.topic!r}: {exc}") from exc

    def _ends(self, consumer: Any, timeout_s: float) -> dict[int, int]:
        """The topic's partitions (assigned from the start when new) and each one's end now."""
        metadata = consumer.list_topics(self.topic, timeout=timeout_s)
        found = metadata.topics.get(self.topic)
        if found is None or found.error is not None:
            if found is not None and found.error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise BrokerError(f"topic {self.topic!r}: {found.error}")
            return {}
        new = sorted(set(found.partitions) - set(self._at))
        if new:
            consumer.incremental_assign(
                [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in new]
            )
            self._at.update(dict.fromkeys(new, 0))
        ends = {}
        for partition in self._at:
            _low, high = consumer.get_watermark_offsets(
                TopicPartition(self.topic, partition), timeout=timeout_s
            )
            ends[partition] = high
        return ends

    def close(self) -> None:
        """Close the consumer (never joined a group: nothing to leave)."""
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        self._executor.shutdown(wait=False)
