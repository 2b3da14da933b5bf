"""Where the tests' Kafka comes from: one fixture, three sources.

1. ``KAFKA_BOOTSTRAP_SERVERS`` set: that cluster (nothing is started; topics are created);
2. a Docker engine reachable: Apache Kafka in a container, through testcontainers;
3. otherwise: the embedded Tansu broker (``talon_stream.demo._broker.EmbeddedBroker``).

``TALON_STREAM_TEST_BROKER=embedded`` or ``=container`` forces the second choice either way
(``container`` fails loudly without a Docker engine rather than falling back).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from talon_stream._exceptions import BrokerError
from talon_stream.demo._broker import Broker, EmbeddedBroker, ExternalBroker, create_topics

__all__ = ["ContainerBroker", "broker_source", "docker_reachable", "open_test_broker"]

log = logging.getLogger(__name__)

KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.0"


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

    def __init__(self, image: str = KAFKA_IMAGE) -> None:
        from testcontainers.community.kafka import KafkaContainer

        self._container = KafkaContainer(image).with_kraft()
        self._container.start()

    @property
    def bootstrap_servers(self) -> str:
        return str(self._container.get_bootstrap_server())

    def create_topics(self, topics: Mapping[str, int]) -> None:
        create_topics(self.bootstrap_servers, topics)

    def stop(self) -> None:
        self._container.stop()


def broker_source(environ: Mapping[str, str], docker: Callable[[], bool] = docker_reachable) -> str:
    """``external``, ``container`` or ``embedded``: which broker the tests will use."""
    if environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip():
        return "external"
    forced = environ.get("TALON_STREAM_TEST_BROKER", "auto").strip().lower()
    if forced in ("embedded", "container"):
        return forced
    if forced not in ("", "auto"):
        raise BrokerError(
            f"TALON_STREAM_TEST_BROKER={forced!r}: expected auto, embedded or container"
        )
    return "container" if docker() else "embedded"


def open_test_broker(environ: Mapping[str, str] | None = None, **kwargs: Any) -> Broker:
    """Start (or point at) the broker :func:`broker_source` picks."""
    env = os.environ if environ is None else environ
    source = broker_source(env, **kwargs)
    log.info("test broker: %s", source)
    if source == "external":
        return ExternalBroker(env["KAFKA_BOOTSTRAP_SERVERS"].strip())
    if source == "container":
        return ContainerBroker()
    broker = EmbeddedBroker()
    broker.start()
    return broker
