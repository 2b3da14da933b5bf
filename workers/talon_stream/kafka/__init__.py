"""Thin asyncio adapters over confluent-kafka: the consumer-group member, the producer, and the
transactional sink of exactly-once processing. The event loop never blocks on Kafka;
``confluent_kafka`` errors become :class:`~talon_stream.BrokerError` here and nowhere else."""

from talon_stream.kafka._consumer import AsyncConsumer, input_record
from talon_stream.kafka._producer import AsyncProducer
from talon_stream.kafka._transactions import TransactionAbortedError, TransactionalSink

__all__ = [
    "AsyncConsumer",
    "AsyncProducer",
    "TransactionAbortedError",
    "TransactionalSink",
    "input_record",
]
