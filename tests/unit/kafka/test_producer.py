"""AsyncProducer over a scripted librdkafka producer: a batch is acknowledged only when every
record of it is, the first rejection is raised with its topic, a full local queue is waited out,
and records queued before a failure never surface as unhandled errors later."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from talon_stream._exceptions import BrokerError
from talon_stream.kafka._producer import AsyncProducer


class _Message:
    def __init__(self, topic: str) -> None:
        self._topic = topic

    def topic(self) -> str:
        return self._topic


class ScriptedProducer:
    """Queues what is produced; a test decides when and how each record is reported."""

    def __init__(self) -> None:
        self.produced: list[dict[str, Any]] = []
        self._reports: list[tuple[Any, KafkaError | None, _Message]] = []
        self.full_for = 0  # produce() calls that still find the local queue full
        self.refuse: str | None = None  # a topic whose produce() raises
        self._reported: set[int] = set()

    def produce(self, topic: str, **kwargs: Any) -> None:
        if self.full_for:
            self.full_for -= 1
            raise BufferError("Local: Queue full")
        if topic == self.refuse:
            raise KafkaException(KafkaError(KafkaError._UNKNOWN_TOPIC))
        self.produced.append({"topic": topic, **kwargs})

    def report(self, index: int, error: KafkaError | None = None) -> None:
        """The broker's answer to the ``index``-th record, served at the next poll."""
        record = self.produced[index]
        self._reports.append((record["on_delivery"], error, _Message(record["topic"])))
        self._reported.add(index)

    def poll(self, _timeout: float) -> int:
        reports, self._reports = self._reports, []
        for callback, error, message in reports:
            callback(error, message)
        return len(reports)

    def flush(self, _timeout: float) -> int:
        self.poll(0)
        return len(self.produced) - len(self._reported)

    def purge(self) -> None:
        """Drop what is still queued: each record is reported as purged at the next poll."""
        for index in range(len(self.produced)):
            if index not in self._reported:
                self.report(index, KafkaError(KafkaError._PURGE_QUEUE))


def _producer() -> tuple[AsyncProducer, ScriptedProducer]:
    scripted = ScriptedProducer()
    return AsyncProducer({}, factory=lambda _config: scripted, poll_interval_s=0.001), scripted


async def _sending_three() -> tuple[AsyncProducer, ScriptedProducer, asyncio.Task[None]]:
    """A producer with an event's three records queued and their sender waiting."""
    producer, scripted = _producer()
    sending = asyncio.create_task(producer.send_all(_three()))
    await asyncio.sleep(0)
    return producer, scripted, sending


def _three() -> list[tuple[str, bytes, bytes, None]]:
    return [
        ("effects", b"k", b"whole", None),
        ("pricing", b"k", b"discounts", None),
        ("notifications", b"k", b"coupons", None),
    ]


def _watch_unhandled() -> list[dict[str, Any]]:
    """What the loop reports as unhandled (a future's exception nobody retrieved, say)."""
    unhandled: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, c: unhandled.append(c))
    return unhandled


async def _collected(scripted: ScriptedProducer) -> None:
    """Drop every reference the producer held, as librdkafka does once it has reported, and
    collect: a future whose exception nobody retrieved is reported when it is collected."""
    scripted.produced.clear()
    gc.collect()
    await asyncio.sleep(0)


async def _settles(task: asyncio.Task[None]) -> bool:
    await asyncio.sleep(0.01)  # several polls
    return task.done()


async def test_a_batch_is_acknowledged_only_when_every_record_is() -> None:
    _, scripted, sending = await _sending_three()
    assert [each["topic"] for each in scripted.produced] == ["effects", "pricing", "notifications"]
    scripted.report(2)
    scripted.report(0)
    assert not await _settles(sending)
    scripted.report(1)
    assert await _settles(sending)
    await sending  # no exception


async def test_a_rejected_record_fails_the_batch_with_its_topic() -> None:
    unhandled = _watch_unhandled()
    producer, scripted, sending = await _sending_three()
    scripted.report(0)
    scripted.report(1, KafkaError(KafkaError._MSG_TIMED_OUT))
    with pytest.raises(BrokerError, match="delivery to 'pricing' failed"):
        await sending
    scripted.report(2, KafkaError(KafkaError._MSG_TIMED_OUT))  # a second failure, after
    assert await producer.flush(1) == 0
    await _collected(scripted)
    assert unhandled == []


async def test_records_queued_before_a_refusal_never_surface_as_unhandled_errors() -> None:
    unhandled = _watch_unhandled()
    producer, scripted = _producer()
    scripted.refuse = "notifications"
    with pytest.raises(BrokerError, match="could not produce to 'notifications'"):
        await producer.send_all(_three())
    scripted.report(0, KafkaError(KafkaError._MSG_TIMED_OUT))
    scripted.report(1)
    assert await producer.flush(1) == 0
    await _collected(scripted)
    assert unhandled == []


async def test_a_full_local_queue_is_waited_out() -> None:
    producer, scripted = _producer()
    scripted.full_for = 3
    sending = asyncio.create_task(producer.send("effects", key=b"k", value=b"v", partition=4))
    await asyncio.sleep(0.02)
    assert len(scripted.produced) == 1
    assert scripted.produced[0]["partition"] == 4
    scripted.report(0)
    await asyncio.wait_for(sending, 1)


async def test_without_a_partition_the_partitioner_chooses() -> None:
    producer, scripted = _producer()
    sending = asyncio.create_task(producer.send("effects", key=b"k", value=b"v"))
    await asyncio.sleep(0)
    assert "partition" not in scripted.produced[0]
    scripted.report(0)
    await asyncio.wait_for(sending, 1)


async def test_close_gives_up_on_what_the_broker_never_acknowledged() -> None:
    unhandled = _watch_unhandled()
    producer, scripted, sending = await _sending_three()
    scripted.report(0)
    await producer.close(timeout_s=0.02)
    # The sender learns its records were dropped; nothing is left for librdkafka to call back.
    with pytest.raises(BrokerError, match="delivery to 'pricing' failed"):
        await asyncio.wait_for(sending, 1)
    assert scripted.flush(0) == 0
    await _collected(scripted)
    assert unhandled == []
