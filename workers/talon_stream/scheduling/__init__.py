"""Pure scheduling logic, no I/O: the event-time merge of co-partitioned topics, the keyed
scheduler (many customers in flight, one call per customer, offset order per partition) and what
to commit for each partition: the committable offset and the finished offsets above it."""

from talon_stream.scheduling._merge import EventTimeMerge, co_partitioned_groups
from talon_stream.scheduling._offsets import (
    MAX_SPAN,
    CommitPoint,
    PartitionOffsets,
    decode_finished,
    encode_finished,
)
from talon_stream.scheduling._scheduler import Item, KeyedScheduler

__all__ = [
    "MAX_SPAN",
    "CommitPoint",
    "EventTimeMerge",
    "Item",
    "KeyedScheduler",
    "PartitionOffsets",
    "co_partitioned_groups",
    "decode_finished",
    "encode_finished",
]
