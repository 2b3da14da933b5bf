"""The embedded broker: a free loopback port, topics on request, no process left behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest
from confluent_kafka.admin import AdminClient

from talon_stream.demo._broker import Broker, EmbeddedBroker, ExternalBroker, open_broker
from tests.conftest import outlives_its_owner


def test_embedded_broker_creates_topics_and_stops() -> None:
    with EmbeddedBroker() as broker:
        assert broker.bootstrap_servers.startswith("127.0.0.1:")
        broker.create_topics({"orders": 12, "effects": 3})
        broker.create_topics({"orders": 12})  # existing topics are left alone
        metadata = AdminClient({"bootstrap.servers": broker.bootstrap_servers}).list_topics(
            timeout=10
        )
        assert len(metadata.topics["orders"].partitions) == 12
        assert len(metadata.topics["effects"].partitions) == 3
        process = broker._process
        assert process is not None
    assert process.poll() is not None, "the broker process is still running after stop()"


def test_no_orphan_when_the_owner_is_killed() -> None:
    script = textwrap.dedent(
        """
        import os, sys, time
        from talon_stream.demo._broker import EmbeddedBroker
        broker = EmbeddedBroker()
        broker.start()
        print(broker._process.pid, flush=True)
        time.sleep(60)
        """
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    broker_pid = int(owner.stdout.readline())
    assert not outlives_its_owner(owner, broker_pid, timeout_s=5), (
        "the embedded broker outlived the process that started it"
    )


def test_kafka_bootstrap_servers_selects_an_external_broker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka.example:9092")
    broker = open_broker()
    assert isinstance(broker, ExternalBroker)
    assert broker.bootstrap_servers == "kafka.example:9092"
    broker.stop()  # nothing to stop, and no error


def test_the_broker_command_starts_the_lanes_broker_with_its_topics(broker: Broker) -> None:
    """``talon-stream broker --kind …``: the first line names the broker, stdout has the
    address, the topics exist, and SIGTERM stops it cleanly. The kind is this test run's own
    (Apache Kafka on the main lane, Tansu on the embedded one)."""
    kind = "embedded" if broker.kind == "tansu" else "kafka"
    if broker.kind == "external":
        pytest.skip("an external broker says nothing about which local one can run here")
    command = [sys.executable, "-m", "talon_stream.cli", "broker", "--kind", kind]
    started = subprocess.Popen(
        [*command, "--topics", "shop.orders,talon.effects", "--partitions", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert started.stdout is not None
        assert started.stderr is not None
        assert started.stderr.readline().startswith(f"broker: {broker.kind} ")
        line = started.stdout.readline().strip()
        assert line.startswith("KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:"), line
        address = line.split("=", 1)[1]
        topics = AdminClient({"bootstrap.servers": address}).list_topics(timeout=10).topics
        assert len(topics["shop.orders"].partitions) == 3
        assert len(topics["talon.effects"].partitions) == 3
        started.send_signal(signal.SIGTERM)
        assert started.wait(60) == 0
    finally:
        started.kill()
        started.wait()
