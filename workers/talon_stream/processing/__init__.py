"""One worker, record to outcome: the record processor, the dispatchers that run records (keyed
or partition-serial) and the :class:`Worker` that ties consumer, dispatcher and producer
together."""

from talon_stream.processing._dispatch import (
    Dispatcher,
    KeyedDispatcher,
    PartitionSerialDispatcher,
)
from talon_stream.processing._prepared import Prepared
from talon_stream.processing._processor import RecordProcessor
from talon_stream.processing._publisher import OutcomePublisher
from talon_stream.processing._worker import Worker

__all__ = [
    "Dispatcher",
    "KeyedDispatcher",
    "OutcomePublisher",
    "PartitionSerialDispatcher",
    "Prepared",
    "RecordProcessor",
    "Worker",
]
