"""Apache Kafka on loopback, the parts that need no JVM: Java detection, the jar cache and the
broker's configuration."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from pathlib import Path

import pytest

from talon_stream._exceptions import BrokerError
from talon_stream.demo._kafka import new_cluster_id, render_properties, server_properties
from talon_stream.demo._kafka_jars import (
    KAFKA_VERSION,
    cache_root,
    java_major,
    kafka_libs,
    kafka_runnable,
)


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_402"\nJava(TM) SE Runtime Environment', 8),
        ('openjdk version "11.0.22" 2024-01-16', 11),
        ("bash: java: command not found", None),
    ],
)
def test_the_java_major_version_is_read_from_java_version(output: str, major: int | None) -> None:
    assert java_major(output) == major


def found(name: str) -> str | None:
    return f"/usr/bin/{name}"


def missing(name: str) -> str | None:
    return None


@pytest.mark.parametrize(
    ("java", "which", "cached", "runnable"),
    [
        (17, found, False, True),
        (21, found, False, True),
        (11, found, True, False),  # Kafka 4's broker needs Java 17
        (None, found, True, False),
        (17, missing, False, False),  # no Maven to fetch the jars
        (17, missing, True, True),  # ... unless they were fetched before
    ],
)
def test_kafka_runs_with_java_17_and_maven_or_cached_jars(
    java: int | None, which: object, cached: bool, runnable: bool
) -> None:
    assert (
        kafka_runnable(java=lambda: java, which=which, cached=lambda: cached)  # type: ignore[arg-type]
        is runnable
    )


def test_the_cache_follows_xdg_cache_home(tmp_path: Path) -> None:
    assert cache_root({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "talon-stream"
    assert cache_root({}) == Path.home() / ".cache" / "talon-stream"


def fake_maven(calls: list[Path], pause_s: float = 0.0):  # type: ignore[no-untyped-def]
    def fetch(pom: Path, into: Path) -> None:
        calls.append(pom)
        assert KAFKA_VERSION in pom.read_text()
        time.sleep(pause_s)
        into.mkdir(parents=True)
        (into / f"kafka_2.13-{KAFKA_VERSION}.jar").write_bytes(b"jar")
        (into / "log4j-core.jar").write_bytes(b"jar")

    return fetch


def test_the_jars_are_fetched_once_then_reused(tmp_path: Path) -> None:
    calls: list[Path] = []
    said: list[str] = []
    libs = kafka_libs(cache=tmp_path, fetch=fake_maven(calls), progress=said.append)
    assert libs == tmp_path / "libs"
    assert (libs / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file()
    assert "log4j-core.jar" in (tmp_path / "complete").read_text()
    assert kafka_libs(cache=tmp_path, fetch=fake_maven(calls), progress=said.append) == libs
    assert len(calls) == 1
    # The one fetch is announced before it starts and summed up after; the reuse is silent.
    assert said[0].startswith(f"fetching Apache Kafka {KAFKA_VERSION}'s jars with Maven into ")
    assert said[1].startswith("fetched 2 jars (0 MB) in ")
    assert len(said) == 2


def test_a_failed_fetch_leaves_no_marker_and_the_next_one_starts_afresh(tmp_path: Path) -> None:
    def broken(pom: Path, into: Path) -> None:
        into.mkdir()
        (into / "half.jar").write_bytes(b"")
        raise BrokerError("Maven could not fetch Apache Kafka: network down")

    with pytest.raises(BrokerError, match="network down"):
        kafka_libs(cache=tmp_path, fetch=broken)
    assert not (tmp_path / "complete").exists()
    calls: list[Path] = []
    libs = kafka_libs(cache=tmp_path, fetch=fake_maven(calls))
    assert sorted(p.name for p in libs.iterdir()) == [
        f"kafka_2.13-{KAFKA_VERSION}.jar",
        "log4j-core.jar",
    ]


def test_a_copy_without_the_kafka_jar_is_not_taken_for_complete(tmp_path: Path) -> None:
    def empty(pom: Path, into: Path) -> None:
        into.mkdir()

    with pytest.raises(BrokerError, match=f"no kafka_2.13-{KAFKA_VERSION}.jar"):
        kafka_libs(cache=tmp_path, fetch=empty)
    assert not (tmp_path / "complete").exists()


def test_two_processes_starting_together_fetch_once(tmp_path: Path) -> None:
    calls: list[Path] = []
    fetch = fake_maven(calls, pause_s=0.3)
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(kafka_libs(cache=tmp_path, fetch=fetch)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == [tmp_path / "libs"] * 3
    assert len(calls) == 1


def test_one_combined_node_on_loopback_with_replication_factor_one(tmp_path: Path) -> None:
    properties = server_properties(broker_port=19092, controller_port=19093, log_dir=tmp_path)
    assert properties["process.roles"] == "broker,controller"
    assert properties["node.id"] == "1"
    assert properties["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert properties["listeners"] == ("PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093")
    assert properties["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert properties["log.dirs"] == str(tmp_path)
    replication = [key for key in properties if key.endswith("replication.factor")]
    assert len(replication) == 3
    assert {properties[key] for key in replication} == {"1"}
    assert properties["num.partitions"] == "1"
    assert properties["group.initial.rebalance.delay.ms"] == "0"
    assert int(properties["log.cleaner.dedupe.buffer.size"]) == 2 * 1024 * 1024


def test_the_tests_short_group_sessions_are_accepted(tmp_path: Path) -> None:
    properties = server_properties(broker_port=1, controller_port=2, log_dir=tmp_path)
    # LOCAL_CONSUMER_SETTINGS and the test readers use 3 s classic sessions.
    assert int(properties["group.min.session.timeout.ms"]) <= 3000
    # KIP-848 groups: a heartbeat well inside the session, each at or above its floor.
    heartbeat = int(properties["group.consumer.heartbeat.interval.ms"])
    session = int(properties["group.consumer.session.timeout.ms"])
    assert int(properties["group.consumer.min.heartbeat.interval.ms"]) <= heartbeat < session
    assert int(properties["group.consumer.min.session.timeout.ms"]) <= session <= 10_000


def test_properties_are_written_one_per_line() -> None:
    text = render_properties({"node.id": "1", "listeners": "PLAINTEXT://127.0.0.1:1"})
    assert text == "node.id=1\nlisteners=PLAINTEXT://127.0.0.1:1\n"


def test_a_cluster_id_is_16_random_bytes_in_url_safe_base64() -> None:
    first, second = new_cluster_id(), new_cluster_id()
    assert first != second
    assert len(first) == 22
    assert "=" not in first
    assert "-" not in first
    assert len(base64.urlsafe_b64decode(first + "==")) == 16


def test_a_cluster_id_has_no_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """As Kafka's own IDs: the storage tool takes ``-t -abc…`` for an option."""
    first = uuid.UUID(bytes=base64.urlsafe_b64decode("-" + "A" * 21 + "=="))
    inside = uuid.UUID(bytes=base64.urlsafe_b64decode("A" * 10 + "-" + "A" * 11 + "=="))
    plain = uuid.UUID(int=1)
    drawn = iter([first, inside, plain])
    monkeypatch.setattr(uuid, "uuid4", lambda: next(drawn))
    assert new_cluster_id() == base64.urlsafe_b64encode(plain.bytes).decode().rstrip("=")
