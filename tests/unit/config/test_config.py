"""Configuration: environment variables, defaults, and errors that say what to fix."""

from __future__ import annotations

import pytest

from talon_stream._exceptions import ConfigurationError
from talon_stream.config._settings import DEFAULT_INPUT_TOPICS, load_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    settings = load_settings()
    assert settings.input_topics == DEFAULT_INPUT_TOPICS
    assert settings.effects_topic == "talon.effects"
    assert settings.dlq_topic == "talon-stream.dlq"
    assert settings.profile_run_rule_engine is True
    consumer = settings.consumer_config()
    assert consumer["enable.auto.commit"] is False
    assert consumer["auto.offset.reset"] == "earliest"
    assert settings.producer_config()["acks"] == "all"


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALON_STREAM_INPUT_TOPICS", "a, b,c")
    monkeypatch.setenv("TALON_STREAM_RESPONSE_CONTENT", "customerSession,loyalty")
    monkeypatch.setenv("TALON_STREAM_TALON_BASE_URL", "https://mycompany.europe-west1.talon.one/")
    monkeypatch.setenv("TALON_STREAM_TALON_API_KEY", "k-123")
    monkeypatch.setenv("TALON_STREAM_KAFKA_CONFIG", '{"security.protocol": "SASL_SSL"}')
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092")
    settings = load_settings()
    assert settings.input_topics == ("a", "b", "c")
    assert settings.response_content == ("customerSession", "loyalty")
    assert settings.talon_base_url == "https://mycompany.europe-west1.talon.one"
    assert settings.require_api_key() == "k-123"
    assert settings.bootstrap_servers == "kafka-1:9092"
    assert settings.consumer_config()["security.protocol"] == "SASL_SSL"
    assert "k-123" not in repr(settings)
    assert "k-123" not in str(settings.model_dump())


def test_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALON_STREAM_TALON_BASE_URL", "mycompany.talon.one")
    monkeypatch.setenv("TALON_STREAM_RESPONSE_CONTENT", "customerSession,everything")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    text = str(caught.value)
    assert "TALON_STREAM_TALON_BASE_URL: must start with http:// or https://" in text
    assert "TALON_STREAM_RESPONSE_CONTENT" in text


def test_a_missing_api_key_says_how_to_set_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TALON_STREAM_TALON_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="TALON_STREAM_TALON_API_KEY"):
        load_settings().require_api_key()


def test_the_producer_batches_longer_when_the_slots_do_not_wait_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    assert load_settings().producer_config()["linger.ms"] == 5
    serial = load_settings(cli={"dispatch": "partition"})
    assert serial.producer_config()["linger.ms"] == 0
    overridden = load_settings(cli={"kafka_config": '{"linger.ms": 2}'})
    assert overridden.producer_config()["linger.ms"] == 2


def test_the_consumer_group_protocol_leaves_the_classic_settings_to_the_broker() -> None:
    consumer = load_settings(cli={"group_protocol": "consumer"}).consumer_config()
    assert consumer["group.protocol"] == "consumer"
    # librdkafka refuses these with KIP-848's protocol: the broker owns them.
    for name in ("session.timeout.ms", "heartbeat.interval.ms", "partition.assignment.strategy"):
        assert name not in consumer
    # The broker's range assignor keeps co-partitioned topics together (merged by default).
    assert consumer["group.remote.assignor"] == "range"
    alone = load_settings(cli={"group_protocol": "consumer", "max_idle_ms": "-1"})
    assert "group.remote.assignor" not in alone.consumer_config()
    classic = load_settings(cli={"input_topics": "shop.orders"}).consumer_config()
    assert "group.protocol" not in classic
    assert classic["partition.assignment.strategy"] == "cooperative-sticky"


def test_several_input_topics_are_merged_with_the_range_assignor_by_default() -> None:
    merged = load_settings()
    assert len(merged.input_topics) > 1
    assert merged.merges_topics
    assert merged.max_idle_ms == 1000
    assert merged.consumer_config()["partition.assignment.strategy"] == "range"
    alone = load_settings(cli={"max_idle_ms": "-1"})
    assert not alone.merges_topics
    assert alone.consumer_config()["partition.assignment.strategy"] == "cooperative-sticky"
    assert not load_settings(cli={"input_topics": "shop.orders"}).merges_topics


def test_merging_with_an_assignor_that_splits_partition_numbers_is_refused_with_the_fix() -> None:
    for strategy in ("cooperative-sticky", "roundrobin"):
        with pytest.raises(ConfigurationError, match="MAX_IDLE_MS=-1 to read each topic"):
            load_settings(cli={"partition_assignment_strategy": strategy})
        load_settings(cli={"partition_assignment_strategy": strategy, "max_idle_ms": "-1"})
        load_settings(cli={"partition_assignment_strategy": strategy, "input_topics": "a"})


def test_exactly_once_makes_a_transactional_producer_and_an_eager_assignor() -> None:
    settings = load_settings(cli={"processing_guarantee": "exactly-once", "group_id": "shop"})
    producer = settings.producer_config()
    assert producer["transactional.id"].startswith("shop-")
    assert producer["message.timeout.ms"] <= producer["transaction.timeout.ms"]
    consumer = settings.consumer_config()
    assert consumer["partition.assignment.strategy"] == "range"
    assert consumer["isolation.level"] == "read_committed"
    assert "transactional.id" not in load_settings().producer_config()


def test_exactly_once_with_cooperative_sticky_is_refused_with_the_fix() -> None:
    with pytest.raises(ConfigurationError, match="PARTITION_ASSIGNMENT_STRATEGY to range"):
        load_settings(
            cli={
                "processing_guarantee": "exactly-once",
                "partition_assignment_strategy": "cooperative-sticky",
                "input_topics": "shop.orders",
            }
        )
    # The consumer protocol has no client-side assignor: nothing to refuse.
    load_settings(
        cli={
            "processing_guarantee": "exactly-once",
            "partition_assignment_strategy": "cooperative-sticky",
            "group_protocol": "consumer",
        }
    )


def test_the_late_cart_memory_and_the_buffer_bound_size_the_workers_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = load_settings()
    assert (settings.session_memory, settings.max_buffered_per_partition) == (50_000, 500)
    monkeypatch.setenv("TALON_STREAM_SESSION_MEMORY", "200000")
    assert load_settings().session_memory == 200_000
    monkeypatch.setenv("TALON_STREAM_SESSION_MEMORY", "0")
    with pytest.raises(ConfigurationError, match="SESSION_MEMORY"):
        load_settings()
