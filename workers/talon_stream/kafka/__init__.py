"""Thin asyncio adapters over confluent-kafka: the consumer-group member and the producer. The
event loop never blocks on Kafka; ``confluent_kafka`` errors become
:class:`~talon_stream.BrokerError` here and nowhere else."""

from talon_stream.kafka._consumer import AsyncConsumer, input_record
from talon_stream.kafka._producer import AsyncProducer

__all__ = ["AsyncConsumer", "AsyncProducer", "input_record"]
