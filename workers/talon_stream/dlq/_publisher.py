"""Publishing the selected records: :class:`KeyOrderedPublisher`, over
:class:`~talon_stream.kafka.AsyncProducer`.

All DLQ records of one key are in one DLQ partition (the worker produces them keyed), and each
partition is read in offset order. A selected record is produced only after the broker has
acknowledged the previous selected record of the same key; records of different keys are in
flight together (at most ``max_in_flight``). So a key's records reach their topic in their
original order whatever the producer's retries and batching do; and when the broker refuses a
record, the key's later records are never sent: the run stops, names the record, and raises
:class:`~talon_stream.dlq.ReplayDeliveryError` — nothing of that key is out of order, and a
second run with the same filters picks up from it (records already replayed are replayed again:
replay is at-least-once). A record going back to its source topic goes to the partition it came
from (``talon-stream.source.partition``), beside its key's other records whatever partitioner the
producing application uses; with ``to_topic`` it is partitioned by key.
"""

from __future__ import annotations

import asyncio

from talon_stream._exceptions import BrokerError
from talon_stream.dlq._model import Replay, ReplayDeliveryError, ReplaySummary
from talon_stream.kafka._producer import AsyncProducer

__all__ = ["KeyOrderedPublisher"]

#: How long closing waits for the broker to acknowledge what is still queued.
_CLOSE_TIMEOUT_S = 30.0


class KeyOrderedPublisher:
    """At most one record in flight per key, many keys at once (see the module docstring)."""

    def __init__(self, producer: AsyncProducer, max_in_flight: int, summary: ReplaySummary):
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
        record = replay.letter.record
        try:
            await self._producer.send(
                replay.topic,
                key=record.key,
                value=record.value,
                headers=replay.letter.replay_headers(),
                partition=replay.partition,
            )
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
        await self._producer.close(_CLOSE_TIMEOUT_S)
