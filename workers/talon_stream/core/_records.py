"""Kafka records as the pipeline sees them: what was consumed and what is to be produced."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Headers", "InputRecord", "OutputRecord", "PartitionKey", "RecordSink"]

Headers = list[tuple[str, bytes]]
PartitionKey = tuple[str, int]
#: A record to produce: topic, key, value, headers.
OutputRecord = tuple[str, bytes | None, bytes | None, "Headers | None"]


@dataclass(frozen=True, slots=True)
class InputRecord:
    """One consumed record, detached from librdkafka."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp_ms: int | None

    @property
    def partition_key(self) -> PartitionKey:
        return (self.topic, self.partition)


class RecordSink(Protocol):
    """Where outcome records go: the Kafka producer, or a test's list. Both calls return once
    the broker has acknowledged the records.

    Raises:
        BrokerError: a record was refused; nothing of the batch counts as acknowledged.
    """

    async def send(
        self, topic: str, *, key: bytes | None, value: bytes | None, headers: Headers | None = None
    ) -> None: ...

    async def send_all(self, records: Sequence[OutputRecord]) -> None: ...
