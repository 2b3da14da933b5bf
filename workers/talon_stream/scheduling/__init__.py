"""Pure scheduling logic, no I/O: the keyed scheduler (many customers in flight, one call per
customer, offset order per partition) and the committable offset of each partition."""

from talon_stream.scheduling._offsets import PartitionOffsets
from talon_stream.scheduling._scheduler import Item, KeyedScheduler

__all__ = ["Item", "KeyedScheduler", "PartitionOffsets"]
