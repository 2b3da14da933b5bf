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
    assert load_settings().producer_config()["linger.ms"] == 20
    serial = load_settings(cli={"dispatch": "partition"})
    assert serial.producer_config()["linger.ms"] == 0
    overridden = load_settings(cli={"kafka_config": '{"linger.ms": 2}'})
    assert overridden.producer_config()["linger.ms"] == 2
