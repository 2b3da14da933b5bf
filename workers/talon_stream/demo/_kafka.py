"""Apache Kafka on loopback: one KRaft node (broker and controller), run from Maven Central's jars.

:class:`KafkaBroker` fetches the pinned jars once (:mod:`talon_stream.demo._kafka_jars`), writes
``server.properties`` into a temporary folder, formats its log folder and starts
``java … kafka.Kafka`` as a child from :mod:`talon_stream.demo._subprocesses` (own process group,
killed with its parent). Unlike the embedded Tansu broker its data is on disk: after
:meth:`~KafkaBroker.kill` (SIGKILL), :meth:`~KafkaBroker.restart` brings it back on the same ports
with the same topics, records and committed offsets. :meth:`~KafkaBroker.freeze` and
:meth:`~KafkaBroker.thaw` stop and resume it (SIGSTOP, SIGCONT), a broker that hangs.

Measured on 2 vCPUs (Kafka 4.4.0, OpenJDK 17): ``start()`` takes 2.4 to 3.8 s (median 3.0 s,
~1.0 s of it formatting), ``kill()`` then ``restart()`` ~4.2 s, ``stop()`` 0.5 to 2.5 s; RSS is
190 to 220 MB idle, 245 to 270 MB after 200,000 records. Figures and settings: docs/brokers.md.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

from talon_stream._exceptions import BrokerError
from talon_stream.demo._admin import ChildBroker, answers_metadata, create_topics, port_open
from talon_stream.demo._kafka_jars import KAFKA_VERSION, kafka_libs, resource_text
from talon_stream.demo._subprocesses import free_port, spawn, terminate

__all__ = ["KafkaBroker", "new_cluster_id", "render_properties", "server_properties"]

_NODE_ID = 1
_LOG_TAIL_CHARS = 3000
_PORT_TAKEN = "Address already in use"


def server_properties(*, broker_port: int, controller_port: int, log_dir: Path) -> dict[str, str]:
    """The broker's configuration: one combined node on 127.0.0.1, replication factor 1, tuned to
    start and rebalance quickly in tests."""
    listeners = f"PLAINTEXT://127.0.0.1:{broker_port},CONTROLLER://127.0.0.1:{controller_port}"
    return {
        "process.roles": "broker,controller",
        "node.id": str(_NODE_ID),
        "controller.quorum.voters": f"{_NODE_ID}@127.0.0.1:{controller_port}",
        "listeners": listeners,
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{broker_port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(log_dir),
        # A producer writing to an unknown topic creates it, as on Tansu (with one partition).
        "auto.create.topics.enable": "true",
        "num.partitions": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "share.coordinator.state.topic.num.partitions": "1",
        "group.initial.rebalance.delay.ms": "0",
        # After a kill -9 the controller holds the dead incarnation's registration until its
        # lease ends (9 s by default) before the restarted broker may register again.
        "broker.session.timeout.ms": "2000",
        "broker.heartbeat.interval.ms": "500",
        # The tests' consumers use 3 s sessions (the broker's floor is 6 s by default).
        "group.min.session.timeout.ms": "1000",
        # KIP-848 groups (group.protocol=consumer): heartbeats and sessions in seconds, not 5/45 s.
        "group.consumer.heartbeat.interval.ms": "500",
        "group.consumer.min.heartbeat.interval.ms": "100",
        "group.consumer.session.timeout.ms": "6000",
        "group.consumer.min.session.timeout.ms": "1000",
        # The default 128 MiB dedupe buffer would dominate the heap; 1 MiB per cleaner thread
        # is the minimum.
        "log.cleaner.dedupe.buffer.size": "2097152",
    }


def render_properties(properties: Mapping[str, str]) -> str:
    """``properties`` in Java's ``.properties`` syntax (keys and values need no escaping here)."""
    return "".join(f"{key}={value}\n" for key, value in properties.items())


def new_cluster_id() -> str:
    """A random cluster ID as Kafka makes one: 16 bytes, URL-safe base64 without padding and
    without ``-`` (the storage tool reads an ID that starts with one as an option)."""
    while True:
        found = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if "-" not in found:
            return found


class KafkaBroker(ChildBroker):
    """Apache Kafka on ``127.0.0.1:<free port>``, data in a temporary folder removed by
    :meth:`stop`. Use as a context manager."""

    kind = "apache-kafka"
    description = f"apache-kafka {KAFKA_VERSION} (KRaft, loopback)"

    def __init__(
        self,
        *,
        libs: Path | None = None,
        java: str = "java",
        heap_mb: int = 512,
        start_timeout_s: float = 60.0,
        stop_grace_s: float = 10.0,
    ) -> None:
        self._libs = libs
        self._java = java
        self._heap_mb = heap_mb
        self._start_timeout_s = start_timeout_s
        self._stop_grace_s = stop_grace_s
        self._process: subprocess.Popen[bytes] | None = None
        self._folder: Path | None = None
        self._ports = (0, 0)
        self._frozen = False

    _title = "Kafka broker"

    def _address(self) -> str | None:
        return None if self._folder is None else f"127.0.0.1:{self._ports[0]}"

    @property
    def log_path(self) -> Path | None:
        """The broker's own log (its stdout and stderr), while its folder exists."""
        return None if self._folder is None else self._folder / "broker.log"

    def start(self) -> None:
        """Fetch the jars if needed, format a fresh log folder, start the broker and wait until
        it answers metadata requests.

        Raises:
            BrokerError: Maven or the broker failed, or it did not answer in time (the message
                has the end of the broker's log).
        """
        if self._folder is not None:
            raise BrokerError("the Kafka broker is already started")
        libs = self._libs or kafka_libs()
        self._libs = libs
        folder = Path(tempfile.mkdtemp(prefix="talon-stream-kafka-"))
        self._folder = folder
        (folder / "log4j2.properties").write_text(resource_text("log4j2.properties"), "utf-8")
        try:
            self._start_on_free_ports()
        except BaseException:
            self.stop()
            raise

    def stop(self, grace_s: float | None = None) -> None:
        """Stop the broker (SIGTERM, SIGKILL after ``grace_s``) and remove its data."""
        self._end(grace_s if grace_s is not None else self._stop_grace_s)
        folder, self._folder = self._folder, None
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would; its data stays for :meth:`restart`."""
        self._end(0)

    def restart(self) -> None:
        """Start the broker again on the same ports and log folder (stopping it first if it
        runs): the topics, records and committed offsets are still there.

        Raises:
            BrokerError: it did not come back (the message has the end of its log).
        """
        if self._folder is None:
            raise BrokerError("the Kafka broker was never started, or was stopped")
        self._end(self._stop_grace_s)
        try:
            self._launch()
        except _PortTakenError as exc:
            raise BrokerError(f"cannot restart the Kafka broker: {exc}") from exc

    def freeze(self) -> None:
        """SIGSTOP the broker: connections stay open and nothing answers until :meth:`thaw`."""
        self._signal(signal.SIGSTOP)
        self._frozen = True

    def thaw(self) -> None:
        """SIGCONT a frozen broker."""
        self._signal(signal.SIGCONT)
        self._frozen = False

    def create_topics(
        self, topics: Mapping[str, int], config: Mapping[str, str] | None = None
    ) -> None:
        create_topics(self.bootstrap_servers, topics, config)

    def _start_on_free_ports(self, attempts: int = 5) -> None:
        for attempt in range(attempts):  # a free port can be taken between probing and binding
            self._ports = (free_port(), free_port())
            self._write_properties()
            if attempt == 0:
                self._format()
            try:
                self._launch()
            except _PortTakenError:
                continue
            return
        raise BrokerError(f"the Kafka broker found no free port in {attempts} attempts")

    def _write_properties(self) -> None:
        assert self._folder is not None
        properties = server_properties(
            broker_port=self._ports[0], controller_port=self._ports[1], log_dir=self._data
        )
        (self._folder / "server.properties").write_text(render_properties(properties), "utf-8")

    @property
    def _data(self) -> Path:
        assert self._folder is not None
        return self._folder / "data"

    def _java_command(self, *args: str) -> list[str]:
        assert self._folder is not None
        assert self._libs is not None
        return [
            self._java,
            f"-Dlog4j2.configurationFile={self._folder / 'log4j2.properties'}",
            "-cp",
            f"{self._libs}{os.sep}*",
            *args,
        ]

    def _format(self) -> None:
        assert self._folder is not None
        command = self._java_command(
            "kafka.tools.StorageTool",
            "format",
            "-t",
            new_cluster_id(),
            "-c",
            str(self._folder / "server.properties"),
        )
        with (self._folder / "format.log").open("wb") as output:
            process = spawn(command, stdout=output.fileno(), stderr=subprocess.STDOUT)
            try:
                code = process.wait(timeout=self._start_timeout_s)
            except subprocess.TimeoutExpired:
                terminate(process)
                code = None
        if code != 0:
            tail = _tail(self._folder / "format.log")
            raise BrokerError(f"formatting the Kafka log folder failed ({code}): {tail}")

    def _launch(self) -> None:
        assert self._folder is not None
        command = self._java_command(
            f"-Xms{min(128, self._heap_mb)}m",
            f"-Xmx{self._heap_mb}m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-XX:-UsePerfData",
            "-Djava.awt.headless=true",
            "kafka.Kafka",
            str(self._folder / "server.properties"),
        )
        with (self._folder / "broker.log").open("ab") as log:
            written = log.tell()  # this run's lines start here (a restart appends)
            # SIGKILL when we die: a frozen broker would hold a SIGTERM forever.
            self._process = spawn(
                command, stdout=log.fileno(), stderr=subprocess.STDOUT, death_signal=signal.SIGKILL
            )
        self._frozen = False
        self._wait_ready(written)

    def _wait_ready(self, written: int) -> None:
        process, log = self._process, self.log_path
        assert process is not None
        assert log is not None
        deadline = time.monotonic() + self._start_timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = _tail(log, written)
                self._process = None
                if _PORT_TAKEN in tail:
                    raise _PortTakenError(f"port {self._ports} taken: {tail[-300:]}")
                raise BrokerError(
                    f"the Kafka broker exited with code {process.returncode}; its log ends:\n{tail}"
                )
            if port_open(self._ports[0]) and answers_metadata(self.bootstrap_servers, _NODE_ID):
                return
            time.sleep(0.05)
        self._end(0)
        raise BrokerError(
            f"the Kafka broker did not answer on port {self._ports[0]} within "
            f"{self._start_timeout_s:.0f}s; its log ends:\n{_tail(log)}"
        )

    def _end(self, grace_s: float) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if grace_s <= 0:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        else:
            if self._frozen:  # a stopped process holds SIGTERM until it runs again
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGCONT)
            terminate(process, grace_s)
        self._frozen = False

    def _signal(self, signum: signal.Signals) -> None:
        if self._process is None or self._process.poll() is not None:
            raise BrokerError("the Kafka broker is not running")
        os.killpg(self._process.pid, signum)


class _PortTakenError(BrokerError):
    """A port chosen for the broker was taken before it could bind it."""


def _tail(path: Path, start: int = 0) -> str:
    try:
        text = path.read_bytes()[start:][-_LOG_TAIL_CHARS:].decode(errors="replace")
    except OSError:
        return "(no log)"
    return text.strip() or "(empty log)"
