"""Which broker the tests use: external, a container, or the embedded one."""

from __future__ import annotations

import pytest

from talon_stream._exceptions import BrokerError
from talon_stream.demo._broker import ExternalBroker
from tests.brokers import broker_source, docker_reachable, open_test_broker


def no_docker() -> bool:
    return False


def docker() -> bool:
    return True


def test_an_external_cluster_wins_over_everything() -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": "kafka:9092", "TALON_STREAM_TEST_BROKER": "container"}
    assert broker_source(env, docker) == "external"
    broker = open_test_broker(env)
    assert isinstance(broker, ExternalBroker)
    assert broker.bootstrap_servers == "kafka:9092"


@pytest.mark.parametrize(
    ("env", "engine", "expected"),
    [
        ({}, docker, "container"),
        ({}, no_docker, "embedded"),
        ({"TALON_STREAM_TEST_BROKER": "auto"}, docker, "container"),
        ({"TALON_STREAM_TEST_BROKER": "embedded"}, docker, "embedded"),
        ({"TALON_STREAM_TEST_BROKER": "container"}, no_docker, "container"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "  "}, no_docker, "embedded"),
    ],
)
def test_docker_is_used_when_reachable_unless_told_otherwise(
    env: dict[str, str], engine: object, expected: str
) -> None:
    assert broker_source(env, engine) == expected  # type: ignore[arg-type]


def test_a_wrong_choice_is_refused_with_the_accepted_values() -> None:
    with pytest.raises(BrokerError, match="expected auto, embedded or container"):
        broker_source({"TALON_STREAM_TEST_BROKER": "kraft"}, no_docker)


def test_without_a_docker_engine_the_probe_says_so_quickly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    assert docker_reachable(timeout_s=1) is False
