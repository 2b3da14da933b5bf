"""Shared fixtures: a real Kafka broker for the whole run — KAFKA_BOOTSTRAP_SERVERS, else Apache
Kafka on loopback when Java 17+ and Maven are here, else Kafka in a container when a Docker engine
is reachable, else the embedded Tansu (tests/brokers.py) — and helpers to produce and read
records."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence

import pytest
from confluent_kafka import Consumer, Producer

from talon_stream.demo._broker import Broker
from talon_stream.demo._generator import ShopSimulator
from tests.brokers import broker_description, broker_source, open_test_broker

#: The one variable the tests read on purpose: which broker to run against.
_KEPT = frozenset({"KAFKA_BOOTSTRAP_SERVERS"})
#: Proxy variables the settings read: a developer's proxy must not stand between the tests and
#: their loopback peers.
_PROXY_VARIABLES = frozenset({"HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"})


def pytest_report_header() -> str:
    """The first line that says which broker the run uses."""
    return f"broker: {broker_description(broker_source(os.environ), os.environ)}"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No TALON_STREAM_*, KAFKA_* or proxy variable of the developer's shell reaches a test (nor
    the workers it starts): each test sets what it needs."""
    for name in list(os.environ):
        ours = name.startswith(("TALON_STREAM_", "KAFKA_")) and name not in _KEPT
        if ours or name.upper() in _PROXY_VARIABLES:
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    started = open_test_broker()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def unique() -> str:
    """A suffix that keeps topics and groups of one test apart from every other test's."""
    return uuid.uuid4().hex[:10]


def produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes | None]]) -> None:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 1}
    )
    for key, value in records:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(10) == 0


def shop_records(
    count: int, *, seed: int, customers: int
) -> list[tuple[bytes | None, bytes | None]]:
    """At least ``count`` valid (key, value) records of whole shopper journeys, each customer's
    records in order (some shoppers are anonymous, keyed by their session)."""
    simulator = ShopSimulator(seed=seed, customers=customers, poison_rate=0.0)
    records: list[tuple[bytes | None, bytes | None]] = []
    while len(records) < count:
        records.extend((record.key, record.value) for record in simulator.journey())
    return records


def _reader(bootstrap: str, topic: str | Sequence[str]) -> Consumer:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 3000,
            "heartbeat.interval.ms": 300,
            "fetch.wait.max.ms": 50,
        }
    )
    consumer.subscribe([topic] if isinstance(topic, str) else list(topic))
    return consumer


def read_all(bootstrap: str, topic: str | Sequence[str], quiet_s: float = 3.0) -> list[bytes]:
    """Every record value on ``topic`` (or topics): read until nothing new arrives for
    ``quiet_s``."""
    consumer = _reader(bootstrap, topic)
    values: list[bytes] = []
    last_arrival = time.monotonic() + 10  # allow for the group join before the first record
    try:
        while time.monotonic() - last_arrival < quiet_s:
            messages = consumer.consume(1000, 0.3)
            if messages:
                last_arrival = time.monotonic()
                values.extend(m.value() for m in messages if m.error() is None)
    finally:
        consumer.close()
    return values


def read_topic(bootstrap: str, topic: str, count: int, timeout_s: float = 30.0) -> list[object]:
    """Read ``count`` records from the start of ``topic`` (all partitions), or fail."""
    consumer = _reader(bootstrap, topic)
    found: list[object] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(found) < count and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                found.append(message)
    finally:
        consumer.close()
    assert len(found) >= count, f"only {len(found)} of {count} records arrived on {topic}"
    return found


def outlives_its_owner(owner: subprocess.Popen[str], pid: int, timeout_s: float = 10.0) -> bool:
    """SIGKILL ``owner`` (no cleanup code runs in it) and tell whether its child ``pid`` is still
    alive ``timeout_s`` later. A zombie counts as gone: its (dead) parent's parent reaps it."""
    os.kill(pid, 0)  # alive before
    owner.kill()
    owner.wait()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        with open(f"/proc/{pid}/stat") as stat:
            if stat.read().split()[2] == "Z":
                return False
        time.sleep(0.05)
    return True
