"""Where the tests' Kafka comes from: one fixture, four sources.

1. ``KAFKA_BOOTSTRAP_SERVERS`` set: that cluster (nothing is started; topics are created);
2. Java 17+ and Maven (or the jars already cached): Apache Kafka on loopback
   (``talon_stream.demo._kafka.KafkaBroker``);
3. a Docker engine reachable: Apache Kafka in a container, through testcontainers;
4. otherwise: the embedded Tansu broker (``talon_stream.demo._broker.EmbeddedBroker``).

``TALON_STREAM_TEST_BROKER=kafka``, ``=container`` or ``=embedded`` forces a choice (a forced one
fails loudly rather than falling back); ``auto``, the default, takes the first that can run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any, Literal

from talon_stream._exceptions import BrokerError
from talon_stream.demo._broker import (
    Broker,
    EmbeddedBroker,
    ExternalBroker,
    create_topics,
    tansu_description,
)
from talon_stream.demo._kafka import KafkaBroker
from talon_stream.demo._kafka_jars import kafka_runnable

__all__ = [
    "ContainerBroker",
    "broker_description",
    "broker_source",
    "docker_reachable",
    "open_test_broker",
]

log = logging.getLogger(__name__)

KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.0"
VARIABLE = "TALON_STREAM_TEST_BROKER"

Source = Literal["external", "kafka", "container", "embedded"]


def docker_reachable(timeout_s: float = 2.0) -> bool:
    """Whether a Docker engine answers a ping (``DOCKER_HOST`` or the default socket)."""
    try:
        import docker  # a dependency of testcontainers
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=int(max(1, timeout_s)))
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


class ContainerBroker:
    """Apache Kafka (KRaft) in a container started by testcontainers."""

    kind = "apache-kafka"
    description = f"apache-kafka ({KAFKA_IMAGE}, container)"

    def __init__(self, image: str = KAFKA_IMAGE) -> None:
        from testcontainers.community.kafka import KafkaContainer

        self._container = KafkaContainer(image).with_kraft()
        self._container.start()

    def start(self) -> None:
        """Started on creation."""

    @property
    def bootstrap_servers(self) -> str:
        return str(self._container.get_bootstrap_server())

    def create_topics(
        self, topics: Mapping[str, int], config: Mapping[str, str] | None = None
    ) -> None:
        create_topics(self.bootstrap_servers, topics, config)

    def stop(self) -> None:
        self._container.stop()


def broker_source(
    environ: Mapping[str, str],
    docker: Callable[[], bool] = docker_reachable,
    kafka_ok: Callable[[], bool] = kafka_runnable,
) -> Source:
    """``external``, ``kafka``, ``container`` or ``embedded``: which broker the tests will use."""
    if environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip():
        return "external"
    forced = environ.get(VARIABLE, "auto").strip().lower()
    if forced == "kafka":
        return "kafka"
    if forced == "container":
        return "container"
    if forced == "embedded":
        return "embedded"
    if forced not in ("", "auto"):
        raise BrokerError(f"{VARIABLE}={forced!r}: expected auto, kafka, container or embedded")
    if kafka_ok():
        return "kafka"
    return "container" if docker() else "embedded"


def broker_description(source: Source, environ: Mapping[str, str]) -> str:
    """The line the test report's header shows for ``source``, before anything is started."""
    if source == "external":
        return ExternalBroker(environ["KAFKA_BOOTSTRAP_SERVERS"].strip()).description
    if source == "kafka":
        return KafkaBroker.description
    if source == "container":
        return ContainerBroker.description
    return tansu_description()


def open_test_broker(environ: Mapping[str, str] | None = None, **kwargs: Any) -> Broker:
    """Start (or point at) the broker :func:`broker_source` picks."""
    env = os.environ if environ is None else environ
    source = broker_source(env, **kwargs)
    log.info("test broker: %s", source)
    if source == "external":
        return ExternalBroker(env["KAFKA_BOOTSTRAP_SERVERS"].strip())
    if source == "container":
        return ContainerBroker()
    broker: KafkaBroker | EmbeddedBroker = KafkaBroker() if source == "kafka" else EmbeddedBroker()
    broker.start()
    return broker
