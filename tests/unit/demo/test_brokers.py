"""Which broker the tests, the demo, chaos and bench use: external, Apache Kafka on loopback, a
container, or the embedded Tansu."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from talon_stream._exceptions import BrokerError
from talon_stream.demo._broker import ExternalBroker, choose_local_broker, open_broker
from talon_stream.demo._kafka import KafkaBroker
from talon_stream.demo._kafka_jars import KAFKA_VERSION
from tests.brokers import broker_description, broker_source, docker_reachable, open_test_broker


def yes() -> bool:
    return True


def no() -> bool:
    return False


def unexpected() -> bool:
    raise AssertionError("probed although the choice was already made")


def test_an_external_cluster_wins_over_everything() -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": "kafka:9092", "TALON_STREAM_TEST_BROKER": "kafka"}
    assert broker_source(env, unexpected, unexpected) == "external"
    broker = open_test_broker(env)
    assert isinstance(broker, ExternalBroker)
    assert broker.bootstrap_servers == "kafka:9092"
    assert broker.kind == "external"
    assert broker_description("external", env) == "external kafka:9092 (KAFKA_BOOTSTRAP_SERVERS)"


@pytest.mark.parametrize(
    ("env", "kafka_ok", "docker", "expected"),
    [
        ({}, yes, unexpected, "kafka"),
        ({}, no, yes, "container"),
        ({}, no, no, "embedded"),
        ({"TALON_STREAM_TEST_BROKER": "auto"}, yes, unexpected, "kafka"),
        ({"TALON_STREAM_TEST_BROKER": " AUTO "}, no, yes, "container"),
        ({"TALON_STREAM_TEST_BROKER": "kafka"}, no, no, "kafka"),
        ({"TALON_STREAM_TEST_BROKER": "embedded"}, yes, yes, "embedded"),
        ({"TALON_STREAM_TEST_BROKER": "container"}, no, no, "container"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "  "}, no, no, "embedded"),
    ],
)
def test_apache_kafka_then_docker_then_tansu_unless_told_otherwise(
    env: dict[str, str],
    kafka_ok: Callable[[], bool],
    docker: Callable[[], bool],
    expected: str,
) -> None:
    assert broker_source(env, docker, kafka_ok) == expected


def test_a_wrong_choice_is_refused_with_the_accepted_values() -> None:
    with pytest.raises(BrokerError, match="expected auto, kafka, container or embedded"):
        broker_source({"TALON_STREAM_TEST_BROKER": "kraft"}, no, no)


def test_the_report_header_names_the_broker_and_its_version() -> None:
    assert broker_description("kafka", {}) == f"apache-kafka {KAFKA_VERSION} (KRaft, loopback)"
    assert broker_description("container", {}).startswith("apache-kafka (")
    assert broker_description("embedded", {}).startswith("tansu ")
    assert KafkaBroker.kind == "apache-kafka"


@pytest.mark.parametrize(
    ("requested", "kafka_ok", "expected"),
    [
        ("auto", yes, "kafka"),
        ("auto", no, "embedded"),
        ("", yes, "kafka"),
        ("kafka", no, "kafka"),
        ("Embedded", yes, "embedded"),
    ],
)
def test_the_demo_chaos_and_bench_pick_apache_kafka_when_it_can_run(
    requested: str, kafka_ok: Callable[[], bool], expected: str
) -> None:
    assert choose_local_broker(requested, kafka_ok=kafka_ok) == expected


def test_the_demo_refuses_an_unknown_broker_and_says_what_it_accepts() -> None:
    with pytest.raises(BrokerError, match=r"TALON_STREAM_BROKER='tansu2': expected auto, kafka"):
        open_broker({"TALON_STREAM_BROKER": "tansu2"}, kafka_ok=unexpected)


def test_the_demo_uses_an_external_broker_whatever_else_is_asked() -> None:
    broker = open_broker(
        {"KAFKA_BOOTSTRAP_SERVERS": "k:9092", "TALON_STREAM_BROKER": "kafka"}, kafka_ok=unexpected
    )
    assert isinstance(broker, ExternalBroker)
    assert broker.bootstrap_servers == "k:9092"


def test_without_a_docker_engine_the_probe_says_so_quickly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    assert docker_reachable(timeout_s=1) is False
