"""The ids of the notifications already on the output topics, read back from their headers.

Every replica writes each notification's id into the ``talon-stream.notification.id`` header of
its record. :class:`PublishedIds` reads the output topics from ``window_s`` ago on (and what is
added after), on a thread of its own, and hands each id to ``on_ids`` on the event loop: so a
replica learns what the others published, and a restarted one what was published before it
started. :attr:`PublishedIds.caught_up` is set once every partition has been read to the end
it had at start-up: before that, a retry of a notification published elsewhere might not be
recognised, so the receiver is not ready.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import OFFSET_END, Consumer, KafkaError, KafkaException, TopicPartition

__all__ = ["ID_HEADER", "PublishedIds"]

log = logging.getLogger(__name__)

ID_HEADER = "talon-stream.notification.id"
#: How often the topics' partitions are listed again (a topic created later is read too).
_RESCAN_S = 5.0
_POLL_S = 0.1


class PublishedIds:
    """Reads ``topics`` from ``window_s`` ago, reporting the ids found in their headers."""

    def __init__(
        self,
        config: dict[str, Any],
        topics: Iterable[str],
        window_s: float,
        on_ids: Callable[[list[str]], None],
        *,
        factory: Callable[[dict[str, Any]], Any] = Consumer,
    ) -> None:
        self._config = {
            **config,
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            # Another replica's record is known here this long after it was acknowledged.
            "fetch.wait.max.ms": 50,
            "log.connection.close": False,
        }
        self._topics = tuple(dict.fromkeys(topics))
        self._window_ms = int(window_s * 1000)
        self._on_ids = on_ids
        self._factory = factory
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.caught_up = asyncio.Event()
        #: Ids read in all.
        self.read = 0

    def start(self) -> None:
        """Start reading (on the running loop's behalf)."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="notification-ids", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        """Stop reading and wait for the thread."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, thread.join, 10.0)
            self._thread = None

    def _report(self, ids: list[str]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._on_ids, ids)

    def _mark_caught_up(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.caught_up.set)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._read()
            except KafkaException as exc:
                log.warning("reading the notification topics failed, again in 1 s: %s", exc)
                self._stop.wait(1.0)

    def _read(self) -> None:
        consumer = self._factory(self._config)
        try:
            assigned: set[tuple[str, int]] = set()
            self._assign_new(consumer, assigned)
            pending = set(assigned)  # partitions not yet read to their end
            if not pending:
                self._mark_caught_up()
            rescan_at = time.monotonic() + _RESCAN_S
            while not self._stop.is_set():
                if time.monotonic() >= rescan_at:
                    self._assign_new(consumer, assigned)
                    rescan_at = time.monotonic() + _RESCAN_S
                ids: list[str] = []
                for message in consumer.consume(500, _POLL_S):
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF and pending:
                            pending.discard((message.topic(), message.partition()))
                            if not pending:
                                self._mark_caught_up()
                        continue
                    for name, value in message.headers() or ():
                        if name == ID_HEADER and value:
                            ids.append(value.decode("utf-8", "replace"))
                if ids:
                    self.read += len(ids)
                    self._report(ids)
        finally:
            consumer.close()

    def _assign_new(self, consumer: Any, assigned: set[tuple[str, int]]) -> None:
        """Assign the partitions not read yet, from ``window_s`` ago (a partition with nothing
        that recent: from its end)."""
        metadata = consumer.list_topics(timeout=10)
        since = int(time.time() * 1000) - self._window_ms
        new = [
            TopicPartition(topic, partition, since)
            for topic in self._topics
            if topic in metadata.topics and metadata.topics[topic].error is None
            for partition in metadata.topics[topic].partitions
            if (topic, partition) not in assigned
        ]
        if not new:
            return
        starts = consumer.offsets_for_times(new, timeout=10)
        for start in starts:
            if start.offset < 0:
                start.offset = OFFSET_END
        consumer.incremental_assign(starts)
        assigned.update((tp.topic, tp.partition) for tp in new)
