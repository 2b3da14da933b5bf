"""What every local broker shares: a child process used as a context manager
(:class:`ChildBroker`), topics created, and a readiness probe."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Mapping
from typing import Self

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from talon_stream._exceptions import BrokerError

__all__ = ["ChildBroker", "answers_metadata", "create_topics", "port_open"]


class ChildBroker:
    """A broker this package runs as a child process (``_process``): started by :meth:`start`,
    stopped by :meth:`stop`, usable as a context manager."""

    _process: subprocess.Popen[bytes] | None = None
    #: What the broker is called in messages.
    _title = "broker"

    def _address(self) -> str | None:
        """``host:port`` while the broker runs, else ``None``."""
        raise NotImplementedError

    @property
    def bootstrap_servers(self) -> str:
        address = self._address()
        if address is None:
            raise BrokerError(f"the {self._title} is not running")
        return address

    @property
    def pid(self) -> int | None:
        """The broker's process ID while it runs (benchmarks read its CPU time)."""
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def create_topics(
    bootstrap_servers: str,
    topics: Mapping[str, int],
    config: Mapping[str, str] | None = None,
    timeout_s: float = 15,
) -> None:
    """Create each topic with its partition count and the topic ``config`` (``max.message.bytes``
    and the like); topics that already exist are left alone.

    Raises:
        BrokerError: a topic could not be created.
    """
    if not topics:
        return
    admin = AdminClient({"bootstrap.servers": bootstrap_servers, "log.connection.close": False})
    futures = admin.create_topics(
        [
            NewTopic(name, num_partitions=count, replication_factor=1, config=dict(config or {}))
            for name, count in topics.items()
        ],
        operation_timeout=timeout_s,
        request_timeout=timeout_s,
    )
    for name, future in futures.items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            if exc.args and exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise BrokerError(f"could not create topic {name!r}: {exc}") from exc
    _wait_for_leaders(admin, topics, timeout_s)


def _wait_for_leaders(admin: AdminClient, topics: Mapping[str, int], timeout_s: float) -> None:
    """Apache Kafka answers CreateTopics before its metadata lists a leader for every new
    partition; a producer that starts at once gets retriable errors, and one that is not
    idempotent may then write a partition's records out of order."""
    deadline = time.monotonic() + timeout_s
    while True:
        listed = admin.list_topics(timeout=timeout_s).topics
        waiting = [
            name
            for name in topics
            if name not in listed
            or listed[name].error is not None
            or any(p.leader < 0 for p in listed[name].partitions.values())
        ]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise BrokerError(f"no leader for every partition of {waiting} within {timeout_s}s")
        time.sleep(0.05)


def port_open(port: int) -> bool:
    """Whether something accepts TCP connections on ``127.0.0.1:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def answers_metadata(bootstrap_servers: str, node_id: int | None = None) -> bool:
    """Whether the broker answers a metadata request (listing ``node_id`` among its brokers)."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers, "log.connection.close": False})
    try:
        metadata = admin.list_topics(timeout=2)
    except KafkaException:
        return False
    return node_id is None or node_id in metadata.brokers
